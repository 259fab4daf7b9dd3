"""Progress of a run, seen from the launching process whatever the runner.

Worker processes (multi_processing, Dataflow) do not log to the launching console, so each
DoFn instance that finishes files keeps its counts in a small file under
OUTPUT/.revivacolor/progress/, rewritten every few seconds; a thread of the launching
process adds them up and logs `n/N done, images/s, time left`.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from pipeline.background import repeated_every
from pipeline.records import STATUS_OK, bookkeeping_location

logger = logging.getLogger("revivacolor")

WRITE_SECONDS = 2.0  # how often a worker rewrites its counts
REPORT_SECONDS = 5.0  # how often the launching process logs a progress line
RATE_WINDOW_SECONDS = 60.0  # images/s and time left are over the last minute
SELECTED, SKIPPED, COLORIZED, DONE_BEFORE, FAILED = "selected", "skipped", "colorized", "done_before", "failed"


def _progress_pattern(output: str) -> str:
    return bookkeeping_location(output, "progress", "*.json")


class ProgressFile:
    """The counts of one DoFn instance, written to its own file at most every WRITE_SECONDS (and on flush)."""

    def __init__(self, output: str):
        self._location = bookkeeping_location(output, "progress", f"{uuid.uuid4().hex}.json")
        self._counts: collections.Counter[str] = collections.Counter()
        self._written = time.monotonic()

    def add(self, name: str, count: int = 1) -> None:
        self._counts[name] += count
        if time.monotonic() - self._written >= WRITE_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write the counts; a failure only costs the progress line (the disk may be full, say)."""
        if not self._counts:
            return
        self._written = time.monotonic()
        try:
            with FileSystems.create(self._location) as handle:
                handle.write(json.dumps(self._counts).encode())
        except Exception as error:  # noqa: BLE001 - progress is a courtesy, never a file's failure
            logger.debug("progress not written to %s: %s", self._location, error)


class _CountRowsFn(beam.DoFn):
    """Pass rows through, counting each as `ok_name` or failed in this instance's progress file."""

    def __init__(self, output: str, ok_name: str):
        self._output, self._ok_name = output, ok_name

    def setup(self) -> None:
        self._progress = ProgressFile(self._output)

    def process(self, row: dict):
        self._progress.add(self._ok_name if row["status"] == STATUS_OK else FAILED)
        yield row

    def finish_bundle(self) -> None:
        self._progress.flush()


class CountRows(beam.PTransform):
    """Count the rows of one collection for the progress line (ok rows as `ok_name`); returns the same rows.

    Applied to each collection of rows where it is made, it runs fused with the step that made them,
    so the counts grow while files are done.
    """

    def __init__(self, output: str, ok_name: str):
        super().__init__()
        self._output, self._ok_name = output, ok_name

    def expand(self, rows):
        return rows | beam.ParDo(_CountRowsFn(self._output, self._ok_name))


def _read_counts(output: str, known: dict[str, dict]) -> collections.Counter[str]:
    """The sum of every progress file; a file being rewritten keeps its last counts read."""
    for metadata in FileSystems.match([_progress_pattern(output)])[0].metadata_list:
        try:
            with FileSystems.open(metadata.path) as handle:
                known[metadata.path] = json.loads(handle.read())
        except Exception:  # noqa: BLE001 - half-written right now: its last counts stand
            continue
    total: collections.Counter[str] = collections.Counter()
    for counts in known.values():
        total.update(counts)
    return total


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def progress_line(counts: collections.Counter[str], rate: float | None) -> str:
    """`n/N done, images/s, time left` for the counts so far; N grows while the files are still being listed."""
    done = counts[COLORIZED] + counts[DONE_BEFORE] + counts[FAILED]
    line = f"{done}/{counts[SELECTED]} done"
    if rate:
        line += f", {rate:.2f} images/s"
        if done < counts[SELECTED]:
            line += f", about {_duration((counts[SELECTED] - done) / rate)} left"
    return line


def remove_progress_files(output: str) -> None:
    """Delete the progress files (a killed run's, before a run; this run's, after it)."""
    paths = [metadata.path for metadata in FileSystems.match([_progress_pattern(output)])[0].metadata_list]
    if paths:
        FileSystems.delete(paths)


class _Reporter:
    """Reads the progress files and logs a line: done, of how many, and the rate over the last minute."""

    def __init__(self, output: str):
        self._output = output
        self._known: dict[str, dict] = {}
        self._history: collections.deque[tuple[float, int]] = collections.deque()

    def report(self) -> None:
        try:
            counts = _read_counts(self._output, self._known)
        except Exception as error:  # noqa: BLE001 - a listing that failed; the next one may not
            logger.debug("progress not read: %s", error)
            return
        if not counts[SELECTED]:
            return
        now, worked = time.monotonic(), counts[COLORIZED] + counts[FAILED]
        self._history.append((now, worked))
        while now - self._history[0][0] > RATE_WINDOW_SECONDS:
            self._history.popleft()
        elapsed, progress = now - self._history[0][0], worked - self._history[0][1]
        logger.info("%s", progress_line(counts, progress / elapsed if elapsed and progress else None))


@contextlib.contextmanager
def reported_progress(output: str) -> Iterator[None]:
    """Log a progress line every REPORT_SECONDS while the block runs, and the final counts at its end."""
    remove_progress_files(output)
    reporter = _Reporter(output)
    try:
        with repeated_every(REPORT_SECONDS, reporter.report, "revivacolor-progress"):
            yield
    finally:
        reporter.report()
        try:
            remove_progress_files(output)
        except Exception as error:  # noqa: BLE001 - a few small files left behind are no failure of the run
            logger.debug("progress files not removed: %s", error)
