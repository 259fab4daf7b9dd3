"""The named steps of the colorization pipeline, each a small PTransform."""

from __future__ import annotations

import hashlib
import json
import logging
import time

import apache_beam as beam
import cv2
import numpy as np
from apache_beam.io import fileio
from apache_beam.io.filesystems import CompressionTypes, FileSystems
from apache_beam.ml.inference.base import PredictionResult, RunInference

from models.registry import ModelSpec
from pipeline.inference import ColorizerModelHandler
from pipeline.records import (
    METADATA_SCHEMA,
    STATUS_ERROR,
    STATUS_OK,
    describe_error,
    metadata_row,
    read_receipt,
    receipt_location,
    write_atomically,
)
from pipeline.scans import (
    Scan,
    chosen_format,
    ground_truth_location,
    output_location,
    prepare_scan,
    relative_path,
)
from pipeline.storage import skip_credentials_for_emulator
from transforms.color import (
    decode_scan,
    encode_pixels,
    output_bit_depth,
    quantize,
    recombine_luminance,
    restore_ab,
)
from transforms.metrics import colorfulness, fidelity_metrics

logger = logging.getLogger("revivacolor")
FINISHED = "finished"  # rows that need no inference: errors, and files done by an earlier run


def _model_columns(spec: ModelSpec) -> dict:
    return {"model": spec.name, "model_version": spec.version, "inference_size": spec.input_size}


class _PrepareScanFn(beam.DoFn):
    """Read, hash and decode one file; a file that cannot be read becomes an error row."""

    def __init__(self, base: str, spec: ModelSpec, keep_truth: bool, max_pixels: int, resume_from: str | None):
        self._base, self._spec, self._keep_truth, self._max_pixels = base, spec, keep_truth, max_pixels
        self._resume_from = resume_from

    def setup(self) -> None:
        skip_credentials_for_emulator()

    def process(self, readable: fileio.ReadableFile):
        path = readable.metadata.path
        sha256 = None
        try:
            with readable.open(compression_type=CompressionTypes.UNCOMPRESSED) as handle:  # a .gz is no image
                data = handle.read()
            sha256 = hashlib.sha256(data).hexdigest()
            relative = relative_path(path, self._base)
            done = self._already_done(relative, sha256)
            if done is None:
                scan = prepare_scan(
                    path, relative, data, sha256, self._spec.input_size, self._keep_truth, self._max_pixels
                )
        except Exception as error:  # noqa: BLE001 - any failure is this file's, never the night's
            logger.warning("[error] %s: %s", path, describe_error(error))
            row = metadata_row(
                source_path=path,
                source_sha256=sha256,
                status=STATUS_ERROR,
                error=describe_error(error),
                **_model_columns(self._spec),
            )
            yield beam.pvalue.TaggedOutput(FINISHED, row)
            return
        if done is not None:
            logger.info("[done before] %s", path)
            yield beam.pvalue.TaggedOutput(FINISHED, done)
            return
        yield scan  # outside the try: failures of later steps are not this step's

    def _already_done(self, relative: str, sha256: str) -> dict | None:
        """The row of an earlier run of this file: same source bytes, same model, output still there."""
        if self._resume_from is None:
            return None
        row = read_receipt(self._resume_from, relative)
        if (
            row
            and row.get("source_sha256") == sha256
            and (row.get("model"), row.get("model_version")) == (self._spec.name, self._spec.version)
            and row.get("output_path")
            and FileSystems.exists(row["output_path"])
        ):
            return metadata_row(**{k: v for k, v in row.items() if k in METADATA_SCHEMA.names})
        return None


class _SkipFolderFn(beam.DoFn):
    """Drop the files under a folder (--output inside --input must not be read back as scans).

    Its setup also readies Cloud Storage access for the match it is fused with: a
    worker runs every setup of a stage before the stage's first element.
    """

    def __init__(self, folder: str):
        self._folder = folder

    def setup(self) -> None:
        skip_credentials_for_emulator()

    def process(self, metadata):
        if not metadata.path.startswith(self._folder):
            yield metadata


class ReadScans(beam.PTransform):
    """Every file under the input pattern (except those under --output), decoded into Scans.

    With `resume`, a file whose colorized copy an earlier run finished (same source
    sha256, output present) is not processed again: its earlier row is passed on.
    Returns a tuple of PCollections: Scans, and finished rows (errors and files done before).
    """

    def __init__(
        self, pattern: str, base: str, output: str, spec: ModelSpec, keep_truth: bool, max_pixels: int, resume: bool
    ):
        super().__init__()
        self._pattern, self._base, self._output = pattern, base, output.rstrip("/") + "/"
        self._spec, self._keep_truth, self._max_pixels, self._resume = spec, keep_truth, max_pixels, resume

    def expand(self, pipeline):
        results = (
            pipeline
            | "MatchFiles" >> fileio.MatchFiles(self._pattern)
            | "SkipOutputFolder" >> beam.ParDo(_SkipFolderFn(self._output))
            # Without it every file would stay fused to the one element that started the match, so
            # a runner could not spread the files over its workers (Dataflow, --direct_num_workers).
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadMatches" >> fileio.ReadMatches()
            | "Decode"
            >> beam.ParDo(
                _PrepareScanFn(
                    self._base, self._spec, self._keep_truth, self._max_pixels, self._output if self._resume else None
                )
            ).with_outputs(FINISHED, main="scans")
        )
        return results.scans, results[FINISHED]


def _failed_batch_rows(failure, spec: ModelSpec):
    batch, error = failure
    for scan in batch:
        logger.warning("[error] %s: inference failed: %s", scan.source_path, describe_error(error))
        yield _scan_row(scan, spec, status=STATUS_ERROR, error=f"inference failed: {describe_error(error)}")


class ColorizeScans(beam.PTransform):
    """RunInference with the chosen model; a batch the model fails on becomes error rows.

    Returns a tuple of PCollections: PredictionResults and error rows.
    """

    def __init__(self, spec: ModelSpec, batch_size: int, cpu_threads: int = 0):
        super().__init__()
        self._spec, self._batch_size, self._cpu_threads = spec, batch_size, cpu_threads

    def expand(self, scans):
        predictions, failures = (
            scans
            | "RunInference"
            >> RunInference(
                ColorizerModelHandler(self._spec, self._batch_size, self._cpu_threads)
            ).with_exception_handling()
        )
        spec = self._spec
        errors = failures.failed_inferences | "FailedBatchRows" >> beam.FlatMap(_failed_batch_rows, spec)
        return predictions, errors


def _scan_row(scan: Scan, spec: ModelSpec, **values) -> dict:
    return metadata_row(
        source_path=scan.source_path,
        source_sha256=scan.source_sha256,
        width=scan.width,
        height=scan.height,
        bit_depth=scan.bit_depth,
        input_channels=scan.input_channels,
        seconds=scan.seconds,
        **_model_columns(spec),
        **values,
    )


class _WriteColorizedFn(beam.DoFn):
    """Recombine the prediction with the full-resolution L, write the image, score it, emit its row."""

    def __init__(self, output: str, output_format: str | None, ground_truth: str | None, spec: ModelSpec):
        self._output, self._format, self._ground_truth, self._spec = output, output_format, ground_truth, spec

    def setup(self) -> None:
        skip_credentials_for_emulator()

    def process(self, result: PredictionResult):
        scan: Scan = result.example
        started = time.perf_counter()
        try:
            ab = restore_ab(np.asarray(result.inference), scan.letterbox, scan.height, scan.width)
            colorized = recombine_luminance(scan.lightness, ab)
            image_format = chosen_format(scan.relative_path, self._format)
            destination = output_location(self._output, scan.relative_path, image_format)
            pixels = quantize(colorized, output_bit_depth(image_format, scan.bit_depth))
            write_atomically(destination, encode_pixels(pixels, image_format))
            truth_path, truth = self._ground_truth_for(scan)
            metrics = fidelity_metrics(colorized, truth) if truth is not None else {}
            metrics["colorfulness"] = colorfulness(pixels if pixels.dtype == np.uint8 else quantize(colorized, 8))
        except Exception as error:  # noqa: BLE001 - any failure is this file's, never the night's
            logger.warning("[error] %s: %s", scan.source_path, describe_error(error))
            yield _scan_row(scan, self._spec, status=STATUS_ERROR, error=describe_error(error))
            return
        scan.seconds += time.perf_counter() - started
        row = _scan_row(
            scan, self._spec, status=STATUS_OK, output_path=destination, ground_truth_path=truth_path, **metrics
        )
        try:
            write_atomically(receipt_location(self._output, scan.relative_path), json.dumps(row).encode())
        except Exception as error:  # noqa: BLE001 - the image is written; only a rerun's shortcut is lost
            logger.warning("no receipt for %s, a rerun will redo it: %s", scan.source_path, describe_error(error))
        logger.info("[ok] %s -> %s (%.2f s)", scan.source_path, destination, scan.seconds)
        yield row

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

    def __init__(self, output: str, output_format: str | None, ground_truth: str | None, spec: ModelSpec):
        super().__init__()
        self._fn = _WriteColorizedFn(output, output_format, ground_truth, spec)

    def expand(self, predictions):
        return predictions | "RecombineAndWrite" >> beam.ParDo(self._fn)


class WriteMetadata(beam.PTransform):
    """All rows, ok and error, as the Parquet table OUTPUT/metadata/*.parquet."""

    def __init__(self, output: str):
        super().__init__()
        self._prefix = FileSystems.join(output.rstrip("/"), "metadata", "part")

    def expand(self, row_collections):
        return (
            row_collections
            | "AllRows" >> beam.Flatten()
            | "WriteParquet" >> beam.io.WriteToParquet(self._prefix, METADATA_SCHEMA, file_name_suffix=".parquet")
        )
