"""The metadata table: one row per input file, written as Parquet under OUTPUT/metadata/."""

from __future__ import annotations

import hashlib
import json
import uuid

import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from transforms.metrics import METRIC_NAMES

METADATA_SCHEMA = pa.schema(
    [
        ("source_path", pa.string()),
        ("output_path", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("source_sha256", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("bit_depth", pa.int32()),
        ("input_channels", pa.int32()),
        ("model", pa.string()),
        ("model_version", pa.string()),
        ("inference_size", pa.int32()),
        ("seconds", pa.float64()),
        ("ground_truth_path", pa.string()),
    ]
    + [(name, pa.float64()) for name in METRIC_NAMES]
    + [("faces", pa.int32()), ("colorfulness", pa.float64())]
)

STATUS_OK = "ok"
STATUS_ERROR = "error"


def metadata_row(**values) -> dict:
    """A complete row: every schema column present, unknown ones null."""
    unknown = set(values) - set(METADATA_SCHEMA.names)
    if unknown:
        raise KeyError(f"not metadata columns: {sorted(unknown)}")
    return {name: values.get(name) for name in METADATA_SCHEMA.names}


def describe_error(error: BaseException) -> str:
    """A one-line message for the error column: our own messages as they are, others with their type."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, ValueError) and message:
        return message
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def receipt_location(output: str, relative: str) -> str:
    """Where the row of one finished file is kept, so that a rerun after a crash can skip it."""
    name = hashlib.sha1(relative.encode("utf-8")).hexdigest() + ".json"
    return FileSystems.join(output.rstrip("/"), "metadata", "done", name)


def read_receipt(output: str, relative: str) -> dict | None:
    """The row an earlier run kept for this file, or None."""
    location = receipt_location(output, relative)
    if not FileSystems.exists(location):
        return None
    with FileSystems.open(location) as handle:
        return json.loads(handle.read())


def write_atomically(path: str, data: bytes) -> None:
    """Write so that a killed run never leaves a truncated file under its final name.

    Locally: under a temporary name, then renamed. On Cloud Storage an object appears only
    once its upload is complete, so it is written in place (a rename there is a copy and a delete).
    """
    if FileSystems.get_scheme(path) == "gs":
        with FileSystems.create(path) as handle:
            handle.write(data)
        return
    temporary = f"{path}.{uuid.uuid4().hex}.tmp"
    with FileSystems.create(temporary) as handle:
        handle.write(data)
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([temporary], [path])
