"""Colorize an archive of monochrome scans with Apache Beam.

    python -m pipeline --input scans/ --output colorized/ [--model default] [--evaluate]

The graph: ReadScans -> ColorizeScans (RunInference) -> WriteColorized, and every
row, ok or error, -> WriteMetadata. It runs on any Beam runner; locally the
DirectRunner is the default.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions, TestOptions
from apache_beam.runners.runner import PipelineResult

from models.registry import resolve_model
from pipeline.dataflow import dataflow_job_description
from pipeline.options import ColorizeOptions
from pipeline.records import STATUS_OK
from pipeline.report import write_report
from pipeline.scans import input_base, input_pattern
from pipeline.stages import ColorizeScans, ReadScans, WriteColorized, WriteMetadata
from pipeline.storage import skip_credentials_for_emulator

logger = logging.getLogger("revivacolor")

EXIT_OK = 0
EXIT_FAILED_TO_RUN = 1
EXIT_SOME_FILES_FAILED = 3


def _absolute(location: str) -> str:
    return os.path.abspath(location) if FileSystems.get_scheme(location) in (None, "file") else location


def metadata_pattern(output: str) -> str:
    return FileSystems.join(output.rstrip("/"), "metadata", "*.parquet")


def _prepare_output(output: str, overwrite: bool) -> None:
    """Remove what an earlier run leaves that this one replaces.

    The table is written anew (with the rows of files done before); temporary files of a
    killed run are deleted; with --overwrite the receipts of finished files go too.
    """
    patterns = [metadata_pattern(output), FileSystems.join(output, "**.tmp")]
    if overwrite:
        patterns.append(FileSystems.join(output, "metadata", "done", "*.json"))
    old = [m.path for result in FileSystems.match(patterns) for m in result.metadata_list]
    if old:
        FileSystems.delete(old)


def is_dataflow_dry_run(pipeline_options: PipelineOptions) -> bool:
    """Dataflow's --dry_run builds and checks the job but submits nothing (other runners ignore the flag)."""
    runner = str(pipeline_options.view_as(StandardOptions).runner or "")
    return bool(pipeline_options.view_as(TestOptions).dry_run) and "dataflow" in runner.lower()


def run(argv: list[str] | None = None, save_main_session: bool = False) -> PipelineResult:
    """Build and run the pipeline; returns Beam's PipelineResult once it has finished.

    A Dataflow dry run only builds the job (`result.job`): it reads, clears and writes nothing, so it
    can check a launch offline.
    """
    skip_credentials_for_emulator()
    pipeline_options = PipelineOptions(argv)
    pipeline_options.view_as(SetupOptions).save_main_session = save_main_session
    options = pipeline_options.view_as(ColorizeOptions)
    dry_run = is_dataflow_dry_run(pipeline_options)
    source, output = _absolute(options.input), _absolute(options.output)
    ground_truth = _absolute(options.ground_truth) if options.ground_truth else None
    spec = resolve_model(options.model)
    if not dry_run:
        if not FileSystems.match([input_pattern(source)], limits=[1])[0].metadata_list:
            raise FileNotFoundError(f"no files found at --input {options.input}")
        _prepare_output(output, options.overwrite)

    pipeline = beam.Pipeline(options=pipeline_options)
    scans, finished_rows = pipeline | "ReadScans" >> ReadScans(
        input_pattern(source),
        input_base(source),
        output,
        spec,
        options.evaluate,
        options.max_pixels,
        not options.overwrite,
    )
    predictions, inference_errors = scans | "ColorizeScans" >> ColorizeScans(
        spec, options.batch_size, options.inference_threads
    )
    rows = predictions | "WriteColorized" >> WriteColorized(output, options.output_format, ground_truth, spec)
    (rows, finished_rows, inference_errors) | "WriteMetadata" >> WriteMetadata(output)

    result = pipeline.run()
    if dry_run:
        return result
    result.wait_until_finish()
    write_report([output], FileSystems.join(output, "report.html"))
    return result


def read_parquet(path: str) -> pa.Table:
    """One Parquet file (local or gs://), read entirely in the calling thread.

    Not pq.read_table: it scans through Arrow's dataset API, whose I/O threads may still hold
    the Python file object after it returns. When the interpreter exits meanwhile (the last
    thing `python -m pipeline` does is read its table), such a thread, dropping the object,
    waits for a GIL that is gone and the process aborts with "terminate called without an
    active exception" (apache/arrow#34314; a core dump of this project showed exactly that).
    """
    with FileSystems.open(path) as handle, pq.ParquetFile(handle) as parquet:
        return parquet.read()


def read_metadata(output: str) -> pa.Table:
    """The metadata table of an output folder as one pyarrow Table."""
    paths = sorted(m.path for m in FileSystems.match([metadata_pattern(output)])[0].metadata_list)
    tables = [read_parquet(path) for path in paths]
    if not tables:
        raise FileNotFoundError(f"no metadata table under {metadata_pattern(output)}")
    return pa.concat_tables(tables)


def _configure_logging() -> None:
    """Progress lines on the current stderr; a repeated main() replaces its handler, never adds one."""
    for old in list(logger.handlers):
        logger.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logging.getLogger().setLevel(logging.WARNING)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv: list[str] | None = None) -> int:
    """The command line: run, then print a summary. Exit 0 all ok, 3 some files failed, 1 no run."""
    _configure_logging()
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Colorize an archive of monochrome scans. Any Apache Beam pipeline option "
        "(--runner, --direct_num_workers, ...) is passed through to Beam.",
    )
    ColorizeOptions._add_argparse_args(parser)
    parser.parse_known_args(argv)  # --help, and a clear message for a missing --input or --output
    started = time.perf_counter()
    try:
        result = run(argv)
    except (ValueError, FileNotFoundError) as error:
        print(f"revivacolor: error: {error}", file=sys.stderr)
        return EXIT_FAILED_TO_RUN
    elapsed = time.perf_counter() - started
    pipeline_options = PipelineOptions(argv)
    if is_dataflow_dry_run(pipeline_options):
        print(json.dumps(dataflow_job_description(result.job), indent=2))
        print(f"revivacolor: dry run: Dataflow job {result.job.proto.name} built, not submitted", file=sys.stderr)
        return EXIT_OK
    output = _absolute(pipeline_options.view_as(ColorizeOptions).output)
    table = read_metadata(output).to_pydict()
    ok = sum(status == STATUS_OK for status in table["status"])
    failed = len(table["status"]) - ok
    print(
        f"revivacolor: {ok} colorized, {failed} failed, {len(table['status'])} files in {elapsed:.1f} s "
        f"({len(table['status']) / elapsed:.2f} images/s); metadata in {metadata_pattern(output)}, "
        f"report in {FileSystems.join(output, 'report.html')}"
    )
    for path, status, error in zip(table["source_path"], table["status"], table["error"], strict=True):
        if status != STATUS_OK:
            print(f"  failed: {path}: {error}")
    return EXIT_OK if failed == 0 else EXIT_SOME_FILES_FAILED
