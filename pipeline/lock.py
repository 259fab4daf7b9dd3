"""One run at a time per --output: a lock file that names its holder and is broken when stale.

Two runs writing one folder would delete each other's table and temporary files. The lock
lives in OUTPUT/.revivacolor/lock and says which host and process holds it and since when;
its holder refreshes it while it runs, so a lock whose process died on this host, or whose
refresh stopped long ago (a crashed machine), is broken by the next run instead of blocking
the folder for ever.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Iterator

from apache_beam.io.filesystems import FileSystems

from pipeline.background import repeated_every
from pipeline.records import BOOKKEEPING, write_atomically

logger = logging.getLogger("revivacolor")

LOCK_FILE = f"{BOOKKEEPING}/lock"
REFRESH_SECONDS = 300
STALE_SECONDS = 3600  # a holder that has not refreshed its lock for an hour is gone


class OutputInUse(RuntimeError):
    """Another run holds --output."""


def _lock_location(output: str) -> str:
    return FileSystems.join(output.rstrip("/"), LOCK_FILE)


def _holder() -> dict:
    now = time.time()
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": now, "refreshed": now}


def _describe(holder: dict) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"host {holder.get('host')}, pid {holder.get('pid')}, started {started}"


def _is_stale(holder: dict) -> bool:
    """Its process is gone (same host), or it stopped refreshing the lock long ago (any host)."""
    if time.time() - holder.get("refreshed", 0) > STALE_SECONDS:
        return True
    if holder.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, KeyError, ValueError, TypeError):
        return False  # alive under another user, or a record we cannot judge: not ours to break
    return False


def _create_exclusively(location: str, data: bytes) -> bool:
    """Create the lock unless it exists; False if it does (another run was first)."""
    if FileSystems.get_scheme(location) == "gs":
        from apache_beam.io.gcp import gcsio
        from google.api_core.exceptions import PreconditionFailed

        if FileSystems.exists(location):  # and the precondition below, which the test emulator ignores
            return False
        bucket, name = location[len("gs://") :].split("/", 1)
        try:  # atomic on Cloud Storage: the upload fails if the object exists
            gcsio.GcsIO().client.bucket(bucket).blob(name).upload_from_string(data, if_generation_match=0)
        except PreconditionFailed:
            return False
        return True
    os.makedirs(os.path.dirname(location), exist_ok=True)
    try:
        descriptor = os.open(location, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    return True


def _read_holder(location: str) -> dict | None:
    try:
        with FileSystems.open(location) as handle:
            return json.loads(handle.read())
    except Exception:  # noqa: BLE001 - gone meanwhile, or not ours to parse: judged as no holder
        return None


@contextlib.contextmanager
def output_lock(output: str) -> Iterator[None]:
    """Hold --output for this run; raises OutputInUse, naming the holder, if another live run has it."""
    location = _lock_location(output)
    holder = _holder()
    while not _create_exclusively(location, json.dumps(holder).encode()):
        other = _read_holder(location)
        if other is not None and not _is_stale(other):
            raise OutputInUse(
                f"--output {output} is in use by another run ({_describe(other)}); wait for it to finish, "
                f"or delete {location} if that run is gone"
            )
        logger.warning("breaking the stale lock of %s", _describe(other) if other else "an unreadable lock")
        with contextlib.suppress(Exception):  # another run may have broken it first
            FileSystems.delete([location])

    def refresh() -> None:
        try:
            write_atomically(location, json.dumps(dict(holder, refreshed=time.time())).encode())
        except Exception as error:  # noqa: BLE001 - the run goes on; the lock may look stale later
            logger.warning("could not refresh the lock %s: %s", location, error)

    try:
        with repeated_every(REFRESH_SECONDS, refresh, "revivacolor-lock"):
            yield
    finally:
        FileSystems.delete([location])
