"""Colorize an archive of monochrome scans with Apache Beam.

    python -m pipeline --input scans/ --output colorized/ [--model default] [--evaluate]

The graph: ReadScans -> ColorizeScans (RunInference) -> WriteColorized, and every
row, ok or error, -> WriteMetadata. It runs on any Beam runner; locally the
DirectRunner is the default.
"""

from __future__ import annotations

import argparse
import difflib
import json
import logging
import os
import sys
import time
import traceback
import uuid

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions, TestOptions
from apache_beam.runners.runner import PipelineResult

from models.registry import ModelSpec, resolve_model
from pipeline.archival import ARCHIVAL_VERSION
from pipeline.content_credentials import SigningCredentials, load_credentials
from pipeline.dataflow import dataflow_job_description
from pipeline.failures import run_failure_message
from pipeline.inference import MODEL_COPIES, VERBOSE_VARIABLE, ColorizerModelHandler, load_checked_model
from pipeline.lock import OutputInUse, output_lock
from pipeline.options import ColorizeOptions
from pipeline.progress import COLORIZED, DONE_BEFORE, FAILED, SKIPPED, CountRows, reported_progress
from pipeline.records import (
    STATUS_OK,
    TEMPORARY_PREFIX,
    bookkeeping_location,
    describe_error,
    metadata_pattern,
    read_metadata,
    write_atomically,
)
from pipeline.report import write_report
from pipeline.scans import input_base, input_pattern
from pipeline.stages import COUNTERS, ColorizeScans, ReadScans, ScanReading, WriteColorized, WriteMetadata
from pipeline.storage import skip_credentials_for_emulator

logger = logging.getLogger("revivacolor")

EXIT_OK = 0
EXIT_FAILED_TO_RUN = 1
EXIT_BAD_COMMAND_LINE = 2
EXIT_SOME_FILES_FAILED = 3


def _absolute(location: str) -> str:
    return os.path.abspath(location) if FileSystems.get_scheme(location) in (None, "file") else location


class OutputHoldsInput(ValueError):
    """--output is the input's folder or one above it."""


def _refuse_output_holding_input(source: str, output: str) -> None:
    """Colorized copies written among the scans would replace them, and cleaning up would touch the user's files."""
    base, folder = input_base(source).rstrip("/"), output.rstrip("/")
    if FileSystems.get_scheme(output) in (None, "file"):
        base, folder = os.path.realpath(base), os.path.realpath(folder)
    if base == folder or base.startswith(folder.rstrip("/") + "/"):
        raise OutputHoldsInput(
            f"--output {output} is the folder of --input {source} or holds it: the colorized copies would be "
            "written among the scans. Choose an --output outside the input's folder (one inside it is fine)."
        )


def _remove_temporary_files(output: str) -> None:
    """Delete what a killed run left: only files by this tool's own temporary names, and its own tmp folder."""
    patterns = [FileSystems.join(output, f"**{TEMPORARY_PREFIX}*.tmp"), bookkeeping_location(output, "tmp", "**")]
    paths = [metadata.path for result in FileSystems.match(patterns) for metadata in result.metadata_list]
    tmp_folder = bookkeeping_location(output, "tmp")
    ours = [
        path for path in paths if path.startswith(tmp_folder) or FileSystems.split(path)[1].startswith(TEMPORARY_PREFIX)
    ]
    if ours:
        FileSystems.delete(ours)


def _remove_earlier_tables(output: str, run_id: str) -> None:
    """This run's table has every row of the earlier ones (from their receipts): theirs can go."""
    ours = FileSystems.join(output.rstrip("/"), "metadata", f"part-{run_id}")
    tables = FileSystems.match([metadata_pattern(output)])[0].metadata_list
    earlier = [metadata.path for metadata in tables if not metadata.path.startswith(ours)]
    if earlier:
        FileSystems.delete(earlier)


def _write_report(output: str, overwrite: bool) -> None:
    """OUTPUT/report.html, unless a report.html is there that this tool did not write (no claim of ours)."""
    report, claim = FileSystems.join(output, "report.html"), bookkeeping_location(output, "report.html.claimed")
    if not overwrite and FileSystems.exists(report) and not FileSystems.exists(claim):
        logger.warning("%s was not written by revivacolor: not replaced, no report (--overwrite replaces it)", report)
        return
    write_atomically(claim, b"")
    write_report([output], report)


def recorded_options(
    options: ColorizeOptions, ground_truth: str | None, spec: ModelSpec, c2pa_fingerprint: str | None = None
) -> dict:
    """The options that shape a file's output: a receipt made with others does not make the file done.

    `archival` is the version of what an output carries besides its pixels (pipeline/archival.py):
    outputs made before it (no metadata, no label) are made again.
    """
    return {
        "archival": ARCHIVAL_VERSION,
        "output_profile": options.output_profile,
        "c2pa_certificate_sha256": c2pa_fingerprint,
        "output_format": options.output_format,
        "evaluate": options.evaluate,
        "ground_truth": ground_truth,
        "max_pixels": options.max_pixels,
        "vividness": options.vividness,
        "mirror_average": options.mirror_average,
        "model": spec.name,
        "model_version": spec.version,
        "model_sha256": spec.sha256,
    }


def _check_output_folder(output: str) -> None:
    """Stop at once, in one line, where every file would fail: --output is a file, read-only, or out of reach."""
    if FileSystems.get_scheme(output) in (None, "file") and os.path.exists(output) and not os.path.isdir(output):
        raise NotADirectoryError(f"--output {output} is a file, not a folder")
    probe = bookkeeping_location(output, f"{TEMPORARY_PREFIX}{uuid.uuid4().hex}.tmp")
    try:
        with FileSystems.create(probe) as handle:
            handle.write(b"revivacolor checks that --output can be written")
        FileSystems.delete([probe])
    except Exception as error:  # noqa: BLE001 - whatever the file system says, the run cannot write there
        raise PermissionError(f"--output {output} cannot be written: {describe_error(error)}") from error


def signing_credentials(options: ColorizeOptions) -> SigningCredentials | None:
    """The C2PA certificate chain and key of --c2pa_cert and --c2pa_key, checked; None without them."""
    if options.c2pa_cert is None and options.c2pa_key is None:
        return None
    if options.c2pa_cert is None or options.c2pa_key is None:
        raise ValueError("--c2pa_cert and --c2pa_key go together: give both to sign the outputs, or neither")
    return load_credentials(options.c2pa_cert, options.c2pa_key)


def is_dataflow_dry_run(pipeline_options: PipelineOptions) -> bool:
    """Dataflow's --dry_run builds and checks the job but submits nothing (other runners ignore the flag)."""
    runner = str(pipeline_options.view_as(StandardOptions).runner or "")
    return bool(pipeline_options.view_as(TestOptions).dry_run) and "dataflow" in runner.lower()


def run(argv: list[str] | None = None, save_main_session: bool = False) -> PipelineResult:
    """Build and run the pipeline; returns Beam's PipelineResult once it has finished.

    A Dataflow dry run only builds the job (`result.job`): it reads, clears and writes nothing, so it
    can check a launch offline. Otherwise --output is locked for the run (OutputInUse if another run
    holds it) and refused if it is, or holds, the input's folder (OutputHoldsInput).
    """
    skip_credentials_for_emulator()
    pipeline_options = PipelineOptions(argv)
    pipeline_options.view_as(SetupOptions).save_main_session = save_main_session
    options = pipeline_options.view_as(ColorizeOptions)
    source, output = _absolute(options.input), _absolute(options.output)
    spec = resolve_model(options.model)
    run_id = uuid.uuid4().hex[:12]
    if is_dataflow_dry_run(pipeline_options):
        return _build_pipeline(pipeline_options, source, output, spec, run_id).run()
    _refuse_output_holding_input(source, output)
    if not FileSystems.match([input_pattern(source)], limits=[1])[0].metadata_list:
        raise FileNotFoundError(f"no files found at --input {options.input}")
    load_checked_model(spec)  # here once: a model that cannot be used stops the run before any file is read
    signing_credentials(options)  # and certificates that cannot sign
    if options.output_profile != "srgb" and (options.evaluate or options.ground_truth):
        raise ValueError(f"--output_profile {options.output_profile}: results are scored in sRGB; score without it")
    if options.hints and not spec.takes_hints:
        raise ValueError(f"--hints needs a model that takes known colors (the default does); {spec.name} does not")
    _check_output_folder(output)
    with output_lock(output):
        _remove_temporary_files(output)
        try:
            with reported_progress(output):
                result = _build_pipeline(pipeline_options, source, output, spec, run_id).run()
                result.wait_until_finish()
        finally:
            _remove_temporary_files(output)  # also after a failed run (a full disk, say): no partial files
        _remove_earlier_tables(output, run_id)
        _write_report(output, options.overwrite)
    return result


def _build_pipeline(
    pipeline_options: PipelineOptions, source: str, output: str, spec: ModelSpec, run_id: str
) -> beam.Pipeline:
    options = pipeline_options.view_as(ColorizeOptions)
    ground_truth = _absolute(options.ground_truth) if options.ground_truth else None
    credentials = signing_credentials(options)
    recorded = recorded_options(options, ground_truth, spec, credentials.fingerprint if credentials else None)
    pipeline = beam.Pipeline(options=pipeline_options)
    reading = ScanReading(
        base=input_base(source),
        output=output,
        spec=spec,
        keep_truth=options.evaluate,
        max_pixels=options.max_pixels,
        options=recorded,
        overwrite=options.overwrite,
        include_all_files=options.include_all_files,
        hints=_absolute(options.hints) if options.hints else None,
    )
    scans, errors, done_before = pipeline | "ReadScans" >> ReadScans(input_pattern(source), reading)
    handler = ColorizerModelHandler(
        spec, options.batch_size, options.inference_threads, options.model_copies, options.mirror_average
    )
    predictions, inference_errors = scans | "ColorizeScans" >> ColorizeScans(handler)
    signing = (_absolute(options.c2pa_cert), _absolute(options.c2pa_key)) if credentials else None
    rows = predictions | "WriteColorized" >> WriteColorized(
        output, options.output_format, ground_truth, spec, recorded, signing
    )
    rows = rows | "CountColorized" >> CountRows(output, COLORIZED)
    errors = errors | "CountErrors" >> CountRows(output, FAILED)
    inference_errors = inference_errors | "CountInferenceErrors" >> CountRows(output, FAILED)
    done_before = done_before | "CountDoneBefore" >> CountRows(output, DONE_BEFORE)
    new_rows = (rows, errors, inference_errors) | "NewRows" >> beam.Flatten()
    (new_rows, done_before) | "WriteMetadata" >> WriteMetadata(output, recorded, run_id)
    return pipeline


def run_counts(result: PipelineResult) -> dict[str, int]:
    """This run's files by outcome ("colorized", "failed", "done_before"; the table also holds earlier runs' rows)
    and the model copies its workers loaded ("model_copies")."""
    counts = dict.fromkeys([*COUNTERS, MODEL_COPIES], 0)
    for counter in result.metrics().query(MetricsFilter().with_namespace("revivacolor"))["counters"]:
        counts[counter.key.metric.name] += counter.committed or 0
    return counts


def _configure_logging(verbose: bool) -> None:
    """Progress lines on the current stderr; a repeated main() replaces its handler, never adds one.

    Beam's and TensorFlow's own warnings (and worker processes' log lines, which Beam passes on as
    warnings) only with --verbose: the summary names every failed file.
    """
    for old in list(logger.handlers):
        logger.removeHandler(old)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logging.getLogger().setLevel(logging.INFO if verbose else logging.ERROR)
    # Beam logs a failing step's traceback before the run's error reaches main(), which shows it in one line
    logging.getLogger("apache_beam").setLevel(logging.NOTSET if verbose else logging.CRITICAL)
    if verbose:
        os.environ[VERBOSE_VARIABLE] = "1"  # worker processes inherit it
    else:
        os.environ.pop(VERBOSE_VARIABLE, None)


def _reject_unknown_options(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """A misspelled option is an error that names the right one (Beam would only warn, and run with defaults).

    Known are the options of every registered PipelineOptions class (Beam's own: --runner,
    --direct_num_workers, --temp_location, ...; and ours), as Beam itself collects them.
    """
    beam_parsers: list[argparse.ArgumentParser] = []
    PipelineOptions(argv).get_all_options(add_extra_args_fn=beam_parsers.append)
    _, unknown = beam_parsers[0].parse_known_args(argv)
    if not unknown:
        return
    name = unknown[0].split("=", 1)[0]
    if not name.startswith("-"):
        parser.error(f"unexpected argument {name!r}")
    known = [option for action in beam_parsers[0]._actions for option in action.option_strings]
    underscored = "--" + name.lstrip("-").replace("-", "_")
    close = [underscored] if underscored in known else difflib.get_close_matches(name, known, n=1)
    parser.error(f"unknown option {name}" + (f" (did you mean {close[0]}?)" if close else ""))


def _failed_to_run(message: str, verbose: bool) -> int:
    """One line for an error that stopped the run (the traceback too with --verbose)."""
    if verbose:
        traceback.print_exc()
    print(f"revivacolor: error: {message}", file=sys.stderr)
    return EXIT_FAILED_TO_RUN


def main(argv: list[str] | None = None) -> int:
    """The command line: run, then print a summary. Exit 0 all ok, 3 some files failed, 1 no run, 2 bad options."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Colorize an archive of monochrome scans. Any Apache Beam pipeline option "
        "(--runner, --direct_num_workers, ...) is passed through to Beam.",
        allow_abbrev=False,  # as Beam parses them: --out is not --output
    )
    ColorizeOptions._add_argparse_args(parser)
    arguments, _ = parser.parse_known_args(argv)  # --help, and a clear message for a missing --input or --output
    _configure_logging(arguments.verbose)
    _reject_unknown_options(parser, argv)
    started = time.perf_counter()
    try:
        result = run(argv)
    except OutputHoldsInput as error:
        print(f"revivacolor: error: {error}", file=sys.stderr)
        return EXIT_BAD_COMMAND_LINE
    except (ValueError, OSError, OutputInUse) as error:
        return _failed_to_run(str(error), arguments.verbose)
    except Exception as error:
        message = run_failure_message(error)
        if message is None:
            raise
        return _failed_to_run(message, arguments.verbose)
    elapsed = time.perf_counter() - started
    pipeline_options = PipelineOptions(argv)
    if is_dataflow_dry_run(pipeline_options):
        print(json.dumps(dataflow_job_description(result.job), indent=2))
        print(f"revivacolor: dry run: Dataflow job {result.job.proto.name} built, not submitted", file=sys.stderr)
        return EXIT_OK
    output = _absolute(pipeline_options.view_as(ColorizeOptions).output)
    counts = run_counts(result)
    worked = counts[COLORIZED] + counts[FAILED]
    print(
        f"revivacolor: {counts[COLORIZED]} colorized now, {counts[DONE_BEFORE]} done before, "
        f"{counts[SKIPPED]} skipped (not images), {counts[FAILED]} failed; model copies: {counts[MODEL_COPIES]}; "
        f"{elapsed:.1f} s "
        f"({worked / elapsed:.2f} images/s); metadata in {metadata_pattern(output)}, "
        f"report in {FileSystems.join(output, 'report.html')}"
    )
    table = read_metadata(output).to_pydict()
    for path, status, error in zip(table["source_path"], table["status"], table["error"], strict=True):
        if status != STATUS_OK:
            print(f"  failed: {path}: {error}")
    if warned := sum(1 for warning in table.get("warnings", []) if warning):
        print(f"  {warned} written with warnings (what could not be kept as it was): the report's Warnings")
    return EXIT_OK if counts[FAILED] == 0 else EXIT_SOME_FILES_FAILED
