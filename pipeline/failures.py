"""Failures that stop the whole run instead of giving one file an error row: every later file would fail too."""

from __future__ import annotations

import errno

DISK_FULL_IN_A_ROW = 3  # writes failing for want of space, one after the other, before the run stops
_NO_SPACE = "No space left on device"


class RunAborted(RuntimeError):
    """Raised in a worker to end the run; the launching process shows its message as one line.

    Runners pass a worker's exception on wrapped in their own (with the traceback as text), so the
    message is found again by its marker.
    """

    MARKER = "revivacolor stopped the run: "

    def __init__(self, message: str):
        super().__init__(self.MARKER + message)


def is_disk_full(error: BaseException) -> bool:
    """ENOSPC, also when a library wrapped it into an error of its own (Beam's BeamIOError)."""
    return (isinstance(error, OSError) and error.errno == errno.ENOSPC) or _NO_SPACE in str(error)


class DiskFullGuard:
    """Stops the run (RunAborted) at the DISK_FULL_IN_A_ROW-th write in a row that failed for want of space.

    One such failure may pass (another program freed space); a full disk would otherwise turn every
    remaining file of the archive into an error row, and the table's own write would fail at the end.
    """

    def __init__(self) -> None:
        self._in_a_row = 0

    def failed(self, error: BaseException, path: str) -> None:
        if not is_disk_full(error):
            return
        self._in_a_row += 1
        if self._in_a_row >= DISK_FULL_IN_A_ROW:
            raise RunAborted(disk_full_message(f"{self._in_a_row} writes in a row failed, the last {path}"))

    def succeeded(self) -> None:
        self._in_a_row = 0


def disk_full_message(detail: str) -> str:
    return (
        f"the disk of --output is full ({_NO_SPACE}; {detail}). Free some space and run the same command "
        "again: the files finished so far are kept and not redone"
    )


def run_failure_message(error: BaseException) -> str | None:
    """The one line to show for a pipeline that failed for a reason of the whole run; None for anything else."""
    text = str(error)
    if RunAborted.MARKER in text:
        # the first line, without what runners add after it ("[while running 'Step']", a closing quote)
        return text.rsplit(RunAborted.MARKER, 1)[1].splitlines()[0].split(" [while running", 1)[0].rstrip("'\")")
    if is_disk_full(error):
        return disk_full_message("writing the metadata table")
    return None
