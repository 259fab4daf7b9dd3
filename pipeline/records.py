"""The metadata table: one row per input file, written as Parquet under OUTPUT/metadata/ and read back; receipts."""

from __future__ import annotations

import hashlib
import json
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io import fileio
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
    + [("hints", pa.int32()), ("hints_path", pa.string()), ("hint_delta_e2000", pa.float64())]
    + [("icc_profile", pa.string()), ("metadata_kept", pa.string()), ("c2pa", pa.string()), ("warnings", pa.string())]
)

STATUS_OK = "ok"
STATUS_ERROR = "error"
BOOKKEEPING = ".revivacolor"  # OUTPUT/.revivacolor/: receipts, the lock, temporary files of the table
TEMPORARY_PREFIX = ".revivacolor-"  # temporary files are named .revivacolor-<uuid>.tmp


class MetadataSink(fileio.FileSink):
    """For fileio.WriteToFiles: rows as one Parquet file of the table's schema, in row groups.

    A column of nulls keeps its type.
    """

    ROW_GROUP = 10_000

    def open(self, fh) -> None:
        self._writer, self._rows = pq.ParquetWriter(fh, METADATA_SCHEMA), []

    def write(self, record: dict) -> None:
        self._rows.append(record)
        if len(self._rows) >= self.ROW_GROUP:
            self._write_rows()

    def flush(self) -> None:
        self._write_rows()
        self._writer.close()

    def _write_rows(self) -> None:
        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=METADATA_SCHEMA))
            self._rows = []


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


def bookkeeping_location(output: str, *parts: str) -> str:
    """OUTPUT/.revivacolor/...: the tool's own files (receipts, lock, temporary files), apart from the table."""
    return FileSystems.join(output.rstrip("/"), BOOKKEEPING, *parts)


def receipt_location(output: str, source_path: str) -> str:
    """Where the latest row of one source is kept: the table is written from these, a rerun skips by them."""
    name = hashlib.sha1(source_path.encode("utf-8")).hexdigest() + ".json"
    return bookkeeping_location(output, "receipts", name)


def read_receipt(output: str, source_path: str) -> dict | None:
    """The receipt an earlier run kept for this source ({"row", "options", "claims"}), or None."""
    location = receipt_location(output, source_path)
    if not FileSystems.exists(location):
        return None
    with FileSystems.open(location) as handle:
        return json.loads(handle.read())


def earlier_claims(output: str, source_path: str) -> list[str]:
    """The output files written for this source by earlier runs (a rerun with other options may come back to one)."""
    receipt = read_receipt(output, source_path)
    return receipt["claims"] if receipt else []


def write_receipt(output: str, row: dict, options: dict, claims: list[str]) -> None:
    """Keep a source's row, the options it was made with, and the output files it owns (`claims`).

    Claiming is what lets a later run replace a file there: one this tool did not write is never
    replaced (without --overwrite), so a file is claimed before it is written, not only after.
    """
    receipt = {"row": row, "options": options, "claims": claims}
    write_atomically(receipt_location(output, row["source_path"]), json.dumps(receipt).encode())


def temporary_location(path: str) -> str:
    """A hidden name beside `path` that only this tool uses, so cleaning up never touches a user's file."""
    folder, name = FileSystems.split(path)
    return FileSystems.join(folder, f"{TEMPORARY_PREFIX}{uuid.uuid4().hex}.tmp")


def write_atomically(path: str, data: bytes) -> None:
    """Write so that a killed run never leaves a truncated file under its final name.

    Locally: under a temporary name, then renamed over the old file in one step. On Cloud Storage
    an object appears only once its upload is complete, so it is written in place (a rename there
    is a copy and a delete).
    """
    if FileSystems.get_scheme(path) == "gs":
        with FileSystems.create(path) as handle:
            handle.write(data)
        return
    temporary = temporary_location(path)
    with FileSystems.create(temporary) as handle:
        handle.write(data)
    FileSystems.rename([temporary], [path])


def metadata_pattern(output: str) -> str:
    return FileSystems.join(output.rstrip("/"), "metadata", "part-*.parquet")


def read_parquet(path: str) -> pa.Table:
    """One Parquet file (local or gs://), read through a copy of its bytes in Arrow's own memory.

    Arrow never holds the Python file object (nor any Python object): an Arrow thread that
    dropped one while the interpreter exits (the last thing `python -m pipeline` does is read
    its table) would wait for a GIL that is gone, and the process would abort with "terminate
    called without an active exception" (apache/arrow#34314). The file is closed, and released,
    before Arrow reads anything.
    """
    with FileSystems.open(path) as handle:
        data = handle.read()
    copy = pa.BufferOutputStream()
    copy.write(data)
    with pq.ParquetFile(pa.BufferReader(copy.getvalue())) as parquet:
        return parquet.read()


def read_metadata(output: str) -> pa.Table:
    """The metadata table of an output folder as one pyarrow Table."""
    paths = sorted(m.path for m in FileSystems.match([metadata_pattern(output)])[0].metadata_list)
    tables = [read_parquet(path) for path in paths]
    if not tables:
        raise FileNotFoundError(f"no metadata table under {metadata_pattern(output)}")
    return pa.concat_tables(tables)
