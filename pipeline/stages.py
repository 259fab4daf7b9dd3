"""The named steps of the colorization pipeline, each a small PTransform."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import apache_beam as beam
import cv2
import numpy as np
from apache_beam.io import fileio
from apache_beam.io.filesystems import CompressionTypes, FileSystems
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import PredictionResult, RunInference
from apache_beam.options.value_provider import StaticValueProvider

from models.registry import ModelSpec
from pipeline.archival import Colorization
from pipeline.content_credentials import load_credentials, sign
from pipeline.failures import DiskFullGuard
from pipeline.inference import ColorizerModelHandler
from pipeline.progress import COLORIZED, DONE_BEFORE, FAILED, SELECTED, SKIPPED, ProgressFile
from pipeline.records import (
    METADATA_SCHEMA,
    STATUS_ERROR,
    STATUS_OK,
    MetadataSink,
    bookkeeping_location,
    describe_error,
    earlier_claims,
    metadata_row,
    read_receipt,
    write_atomically,
    write_receipt,
)
from pipeline.scans import (
    FinishedScan,
    Scan,
    chosen_format,
    colliding_names,
    finish_scan,
    ground_truth_location,
    is_scan_file,
    output_name,
    prepare_scan,
    printable_path,
    read_hints_file,
    relative_path,
)
from pipeline.storage import skip_credentials_for_emulator
from transforms.codec import decode_scan
from transforms.metrics import fidelity_metrics

logger = logging.getLogger("revivacolor")
FINISHED = "finished"  # error rows that need no inference
COUNTERS = {name: Metrics.counter("revivacolor", name) for name in (COLORIZED, FAILED, DONE_BEFORE, SKIPPED)}
EARLIER, THIS_RUN = 0, 1  # the table keeps a source's row from this run over the one its receipt kept


def _model_columns(spec: ModelSpec) -> dict:
    return {"model": spec.name, "model_version": spec.version, "inference_size": spec.input_size}


def file_options(options: dict, hints_sha256: str | None) -> dict:
    """The options one file's output depends on: the run's, and its own hints file (by content)."""
    return dict(options, hints_sha256=hints_sha256)


@dataclass(frozen=True)
class ScanReading:
    """How the input files are read, and what makes one done before: ReadScans' settings, shared with its steps."""

    base: str  # the folder relative paths are taken from
    output: str
    spec: ModelSpec
    keep_truth: bool  # keep the decoded input to score against (--evaluate)
    max_pixels: int
    options: dict  # the recorded options a receipt must match
    overwrite: bool
    include_all_files: bool = False
    hints: str | None = None  # the --hints folder


class _PrepareScanFn(beam.DoFn):
    """Read, hash and decode one file; a file that cannot be read, or whose output place is taken, is an error row.

    Without --overwrite, a file an earlier run finished (same source bytes, same options and hints
    file, its output still there) is not done again: its receipt's row is passed on.
    """

    def __init__(self, reading: ScanReading):
        self._reading = reading

    def setup(self) -> None:
        skip_credentials_for_emulator()

    def process(self, readable: fileio.ReadableFile, renamed: dict[str, str]):
        path = printable_path(readable.metadata.path)
        relative = relative_path(path, self._reading.base)
        destination = FileSystems.join(
            self._reading.output, renamed.get(relative) or output_name(relative, self._reading.options["output_format"])
        )
        sha256 = None
        try:
            with readable.open(compression_type=CompressionTypes.UNCOMPRESSED) as handle:  # a .gz is no image
                data = handle.read()
            sha256 = hashlib.sha256(data).hexdigest()
            hints_file = read_hints_file(self._reading.hints, relative)
            options = file_options(self._reading.options, hints_file.sha256 if hints_file else None)
            receipt = read_receipt(self._reading.output, path)
            done = None if self._reading.overwrite else self._finished_row(receipt, sha256, destination, options)
            if done is None:
                self._check_destination_is_ours(destination, receipt)
                scan = prepare_scan(
                    path,
                    relative,
                    destination,
                    data,
                    sha256,
                    self._reading.spec.input_size,
                    self._reading.keep_truth,
                    self._reading.max_pixels,
                    hints_file,
                )
                scan = dataclasses.replace(scan, earlier_claims=tuple(receipt["claims"]) if receipt else ())
        except Exception as error:  # noqa: BLE001 - any failure is this file's, never the night's
            logger.warning("[error] %s: %s", path, describe_error(error))
            row = metadata_row(
                source_path=path,
                source_sha256=sha256,
                status=STATUS_ERROR,
                error=describe_error(error),
                **_model_columns(self._reading.spec),
            )
            yield beam.pvalue.TaggedOutput(FINISHED, row)
            return
        if done is not None:
            logger.info("[done before] %s", path)
            COUNTERS[DONE_BEFORE].inc()
            yield beam.pvalue.TaggedOutput(DONE_BEFORE, done)
            return
        yield scan  # outside the try: failures of later steps are not this step's

    def _finished_row(self, receipt: dict | None, sha256: str, destination: str, options: dict) -> dict | None:
        """The row of an earlier run of this file: same source bytes, same options, same output, still there."""
        if receipt is None:
            return None
        row = receipt["row"]
        if (
            row.get("status") == STATUS_OK
            and row.get("source_sha256") == sha256
            and receipt.get("options") == options
            and row.get("output_path") == destination
            and FileSystems.exists(destination)
        ):
            return metadata_row(**{k: v for k, v in row.items() if k in METADATA_SCHEMA.names})
        return None

    def _check_destination_is_ours(self, destination: str, receipt: dict | None) -> None:
        """A file at the output path that this tool did not write for this source is not replaced."""
        if self._reading.overwrite or (receipt and destination in receipt["claims"]):
            return
        if FileSystems.exists(destination):
            raise ValueError(
                f"{destination} already exists and was not written by revivacolor for this file: "
                "not replaced (--overwrite replaces it)"
            )


class _SelectScansFn(beam.DoFn):
    """Keep the scans among the matched files (`is_scan_file`, or all with --include_all_files), counting the rest.

    Files under --output are dropped uncounted (--output inside --input must not be read back as
    scans). Its setup also readies Cloud Storage access for the match it is fused with: a worker
    runs every setup of a stage before the stage's first element.
    """

    def __init__(self, base: str, output: str, include_all_files: bool):
        self._base, self._output, self._include_all_files = base, output, include_all_files

    def setup(self) -> None:
        skip_credentials_for_emulator()
        self._progress = ProgressFile(self._output)

    def process(self, metadata):
        if metadata.path.startswith(self._output):
            return
        if self._include_all_files or is_scan_file(relative_path(printable_path(metadata.path), self._base)):
            self._progress.add(SELECTED)
            yield metadata
        else:
            COUNTERS[SKIPPED].inc()
            self._progress.add(SKIPPED)

    def finish_bundle(self) -> None:
        self._progress.flush()


class ReadScans(beam.PTransform):
    """Every file under the input pattern (except those under --output), decoded into Scans.

    Each file's output name is chosen over the whole list of files, so that two inputs never
    share one (see `colliding_names`). Without `reading.overwrite`, a file an earlier run finished
    with the same `reading.options` is not processed again: its earlier row is passed on.
    Returns a tuple of PCollections: Scans, error rows, and the rows of files done before.
    """

    def __init__(self, pattern: str, reading: ScanReading):
        super().__init__()
        self._pattern = pattern
        self._reading = dataclasses.replace(
            reading, base=printable_path(reading.base), output=reading.output.rstrip("/") + "/"
        )

    def expand(self, pipeline):
        reading = self._reading
        matched = (
            pipeline
            | "MatchFiles" >> fileio.MatchFiles(self._pattern)
            | "SelectScans" >> beam.ParDo(_SelectScansFn(reading.base, reading.output, reading.include_all_files))
        )
        # Over the whole list, as a side input: the same names on every worker, whatever the order.
        renamed = (
            matched
            | "RelativePaths"
            >> beam.Map(lambda metadata, base: relative_path(printable_path(metadata.path), base), reading.base)
            | "AllRelativePaths" >> beam.combiners.ToList()
            | "CollidingNames" >> beam.Map(colliding_names, reading.options["output_format"])
        )
        results = (
            matched
            # Without it every file would stay fused to the one element that started the match, so
            # a runner could not spread the files over its workers (Dataflow, --direct_num_workers).
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadMatches" >> fileio.ReadMatches()
            | "Decode"
            >> beam.ParDo(
                _PrepareScanFn(reading),
                renamed=beam.pvalue.AsSingleton(renamed),
            ).with_outputs(FINISHED, DONE_BEFORE, main="scans")
        )
        return results.scans, results[FINISHED], results[DONE_BEFORE]


def _failed_batch_rows(failure, spec: ModelSpec):
    batch, error = failure
    for scan in batch:
        logger.warning("[error] %s: inference failed: %s", scan.source_path, describe_error(error))
        yield _scan_row(scan, spec, status=STATUS_ERROR, error=f"inference failed: {describe_error(error)}")


class ColorizeScans(beam.PTransform):
    """RunInference with the chosen model's handler; a batch the model fails on becomes error rows.

    Returns a tuple of PCollections: PredictionResults and error rows.
    """

    def __init__(self, handler: ColorizerModelHandler):
        super().__init__()
        self._handler = handler

    def expand(self, scans):
        predictions, failures = scans | "RunInference" >> RunInference(self._handler).with_exception_handling()
        errors = failures.failed_inferences | "FailedBatchRows" >> beam.FlatMap(_failed_batch_rows, self._handler.spec)
        return predictions, errors


def _scan_row(scan: Scan, spec: ModelSpec, **values) -> dict:
    values.setdefault("seconds", scan.seconds)
    values.setdefault("warnings", _warnings_column(scan.warnings))
    return metadata_row(
        source_path=scan.source_path,
        source_sha256=scan.source_sha256,
        width=scan.width,
        height=scan.height,
        bit_depth=scan.bit_depth,
        input_channels=scan.input_channels,
        hints=len(scan.hints),
        hints_path=scan.hints_path,
        icc_profile=scan.icc_description,
        **_model_columns(spec),
        **values,
    )


def _warnings_column(warnings: Iterable[str]) -> str | None:
    """The row's warnings, one sentence each, or null."""
    return "; ".join(warnings) or None


class _WriteColorizedFn(beam.DoFn):
    """Recombine the prediction with the full-resolution L, write the image with its metadata, score it, emit its row.

    With `signing` (the --c2pa_cert and --c2pa_key locations, read by each worker, so the key is never
    part of the pipeline's graph) each output also gets a signed C2PA manifest.
    """

    def __init__(
        self,
        output: str,
        output_format: str | None,
        ground_truth: str | None,
        spec: ModelSpec,
        options: dict,
        signing: tuple[str, str] | None = None,
    ):
        self._output, self._format, self._ground_truth, self._spec = output, output_format, ground_truth, spec
        self._options, self._signing = options, signing

    def setup(self) -> None:
        skip_credentials_for_emulator()
        self._disk = DiskFullGuard()
        self._credentials = load_credentials(*self._signing) if self._signing else None

    def process(self, result: PredictionResult):
        scan: Scan = result.example
        started = time.perf_counter()
        try:
            image_format = chosen_format(scan.relative_path, self._format)
            destination = scan.output_path
            truth_path, truth = self._ground_truth_for(scan)
            prediction = np.asarray(result.inference) * self._options["vividness"]
            colorization = self._colorization(scan)
            keep_float = truth is not None
            finished = finish_scan(scan, prediction, image_format, keep_float, colorization)
            encoded, manifest, warnings = self._signed(scan, finished, image_format, colorization)
            claims = self._claim(scan)
            write_atomically(destination, encoded)
            self._disk.succeeded()
            metrics = fidelity_metrics(finished.colorized, truth) if truth is not None else {}
            metrics["colorfulness"] = finished.colorfulness
            metrics["hint_delta_e2000"] = finished.hint_delta_e2000
        except Exception as error:  # noqa: BLE001 - any failure is this file's, never the night's
            self._disk.failed(error, scan.output_path)
            logger.warning("[error] %s: %s", scan.source_path, describe_error(error))
            yield _scan_row(scan, self._spec, status=STATUS_ERROR, error=describe_error(error))
            return
        seconds = scan.seconds + time.perf_counter() - started  # the scan itself is Beam's: not changed
        row = _scan_row(
            scan,
            self._spec,
            status=STATUS_OK,
            output_path=destination,
            ground_truth_path=truth_path,
            seconds=seconds,
            metadata_kept=",".join(finished.metadata_kept),
            c2pa=manifest,
            warnings=_warnings_column(warnings),
            **metrics,
        )
        try:
            write_receipt(self._output, row, file_options(self._options, scan.hints_sha256), claims)
        except Exception as error:  # noqa: BLE001 - the image is written; only a rerun's shortcut is lost
            logger.warning("no receipt for %s, a rerun will redo it: %s", scan.source_path, describe_error(error))
        logger.info("[ok] %s -> %s (%.2f s)", scan.source_path, destination, seconds)
        yield row

    def _signed(
        self, scan: Scan, finished: FinishedScan, image_format: str, colorization: Colorization
    ) -> tuple[bytes, str | None, tuple[str, ...]]:
        """The file with its C2PA manifest and the manifest's label, when signing; and the row's warnings.

        A file that cannot be signed (BMP, a scan C2PA cannot take as ingredient) is written unsigned,
        and its row says why: the colorized scan is not lost for want of a manifest.
        """
        if self._credentials is None:
            return finished.encoded, None, finished.warnings
        with FileSystems.open(scan.source_path) as handle:
            source = handle.read()
        try:
            if hashlib.sha256(source).hexdigest() != scan.source_sha256:
                raise ValueError("C2PA: not signed, the scan changed while it was colorized")
            encoded, label = sign(finished.encoded, image_format, source, colorization, self._credentials)
        except ValueError as error:
            return finished.encoded, None, (*finished.warnings, str(error))
        return encoded, label, finished.warnings

    def _colorization(self, scan: Scan) -> Colorization:
        """What its label says was done: this model, these options, that source, now."""
        return Colorization(
            source_name=scan.relative_path,
            source_sha256=scan.source_sha256,
            model=self._spec.name,
            model_version=self._spec.version,
            model_sha256=self._spec.sha256,
            known_colors=len(scan.hints),
            vividness=self._options["vividness"],
            output_profile=self._options["output_profile"],
            when=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )

    def _claim(self, scan: Scan) -> list[str]:
        """Record that the output file is this source's before writing it, so a run killed in between can redo it.

        Its row says so until the finished row replaces it. Returns every file the source now claims.
        """
        interrupted = f"interrupted while {scan.output_path} was written; a rerun does it again"
        row = _scan_row(scan, self._spec, status=STATUS_ERROR, error=interrupted)
        try:
            claims = sorted({*scan.earlier_claims, scan.output_path})
            write_receipt(self._output, row, file_options(self._options, scan.hints_sha256), claims)
        except Exception as error:  # noqa: BLE001 - without it, only a killed run's rerun would refuse this file
            logger.warning("could not record %s as being written: %s", scan.output_path, describe_error(error))
            return [scan.output_path]
        return claims

    def _ground_truth_for(self, scan: Scan) -> tuple[str | None, np.ndarray | None]:
        """The color original to score against: the scan itself (--evaluate) or its pair in --ground_truth.

        A missing, gray or unreadable original only means no metrics for this scan.
        """
        if self._ground_truth is None:
            return (scan.source_path, scan.truth_pixels) if scan.truth_pixels is not None else (None, None)
        path = ground_truth_location(self._ground_truth, scan.relative_path)
        if path is None:
            return None, None
        try:
            with FileSystems.open(path) as handle:
                truth = decode_scan(handle.read()).pixels
        except Exception as error:  # noqa: BLE001
            logger.warning("ground truth %s unusable, no metrics for %s: %s", path, scan.source_path, error)
            return None, None
        if truth.ndim == 2:
            return None, None  # a gray "original" says nothing about color
        if truth.shape[:2] != (scan.height, scan.width):
            truth = cv2.resize(truth, (scan.width, scan.height), interpolation=cv2.INTER_AREA)
        return path, truth


class WriteColorized(beam.PTransform):
    """Write every colorized image under --output and turn each prediction into a metadata row."""

    def __init__(
        self,
        output: str,
        output_format: str | None,
        ground_truth: str | None,
        spec: ModelSpec,
        options: dict,
        signing: tuple[str, str] | None = None,
    ):
        super().__init__()
        self._fn = _WriteColorizedFn(output, output_format, ground_truth, spec, options, signing)

    def expand(self, predictions):
        return predictions | "RecombineAndWrite" >> beam.ParDo(self._fn)


class _RecordErrorFn(beam.DoFn):
    """Keep a receipt of each error row too (ok rows got theirs when their image was written), and count rows.

    An error row keeps the output file its source claimed before, so a later run may still replace it.
    """

    def __init__(self, output: str, options: dict):
        self._output, self._options = output, options

    def setup(self) -> None:
        skip_credentials_for_emulator()

    def process(self, row: dict):
        if row["status"] == STATUS_OK:
            COUNTERS[COLORIZED].inc()
            yield row
            return
        COUNTERS[FAILED].inc()
        try:
            write_receipt(self._output, row, self._options, earlier_claims(self._output, row["source_path"]))
        except Exception as error:  # noqa: BLE001 - the row is still in this run's table
            logger.warning("no receipt for %s: %s", row["source_path"], describe_error(error))
        yield row


class _EarlierRowFn(beam.DoFn):
    """The row of one receipt, keyed by source, ranked below this run's rows."""

    def setup(self) -> None:
        skip_credentials_for_emulator()

    def process(self, metadata):
        try:
            with FileSystems.open(metadata.path) as handle:
                row = json.loads(handle.read())["row"]
        except Exception as error:  # noqa: BLE001 - one unreadable receipt must not cost the table
            logger.warning("receipt %s left out of the table: %s", metadata.path, describe_error(error))
            return
        yield row["source_path"], (EARLIER, metadata_row(**row))


def _latest(candidates: Iterable[tuple[int, dict]]) -> tuple[int, dict]:
    return max(candidates, key=lambda candidate: candidate[0])


class WriteMetadata(beam.PTransform):
    """The table OUTPUT/metadata/part-RUN-*.parquet: one row per source ever processed into --output.

    This run's rows (new ones and those done before) and, for every other source, the row its
    receipt keeps. Beam's temporary files go to OUTPUT/.revivacolor/tmp, not beside the table;
    the caller removes the tables of earlier runs once this one is complete.
    """

    def __init__(self, output: str, options: dict, run_id: str):
        super().__init__()
        self._output, self._options, self._run_id = output, options, run_id

    def expand(self, row_collections):
        new_rows, done_rows = row_collections
        this_run = (
            (new_rows | "RecordErrors" >> beam.ParDo(_RecordErrorFn(self._output, self._options)), done_rows)
            | "ThisRun" >> beam.Flatten()
            | "KeyThisRun" >> beam.Map(lambda row: (row["source_path"], (THIS_RUN, row)))
        )
        receipts = bookkeeping_location(self._output, "receipts", "*.json")
        earlier = (
            new_rows.pipeline
            | "MatchReceipts" >> fileio.MatchFiles(receipts, fileio.EmptyMatchTreatment.ALLOW)
            | "EarlierRows" >> beam.ParDo(_EarlierRowFn())
        )
        return (
            (this_run, earlier)
            | "AllRows" >> beam.Flatten()
            | "LatestPerSource" >> beam.CombinePerKey(_latest)
            | "Rows" >> beam.Map(lambda keyed: keyed[1][1])
            | "WriteParquet"
            >> fileio.WriteToFiles(
                FileSystems.join(self._output.rstrip("/"), "metadata"),
                file_naming=fileio.default_file_naming(f"part-{self._run_id}", ".parquet"),
                temp_directory=StaticValueProvider(str, bookkeeping_location(self._output, "tmp")),
                sink=MetadataSink,
            )
        )
