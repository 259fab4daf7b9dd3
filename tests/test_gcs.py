"""The real pipeline against a GCS emulator: scans, outputs, ground truth and the model all on gs://."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import pipeline
from models.registry import resolve_model
from pipeline.records import read_metadata
from tests.conftest import color_photo, write_image

SCANS = {"a.jpg": (30, 40), "sub/b.png": (24, 24)}  # relative path: (height, width)
BROKEN = "broken.png"
CREDENTIAL_LOOKUP_GAVE_UP = "Unable to find default credentials"  # Beam's warning, in any process


def _upload(bucket, name: str, path: Path) -> None:
    bucket.blob(name).upload_from_filename(str(path))


@pytest.fixture
def gcs_job(bucket, tiny_model, tmp_path):
    """Color photos (and a broken file) under gs://BUCKET/scans/, the tiny model under gs://BUCKET/models/."""
    for index, (relative, (height, width)) in enumerate(SCANS.items()):
        _upload(bucket, f"scans/{relative}", write_image(tmp_path / relative, color_photo(height, width, seed=index)))
        truth = write_image(tmp_path / "truth" / relative, color_photo(height, width, seed=index))
        _upload(bucket, f"truth/{relative}", truth)
    bucket.blob(f"scans/{BROKEN}").upload_from_string(b"\x89PNG\r\n\x1a\n" + b"\0" * 10)
    _upload(bucket, "models/tiny.keras", tiny_model)
    _upload(bucket, "models/tiny.json", tiny_model.with_suffix(".json"))
    root = f"gs://{bucket.name}"
    return bucket, ["--output", f"{root}/out", "--model", f"{root}/models/tiny.keras"]


def _run_and_check(bucket, argv: list[str], caplog) -> dict[str, dict]:
    """Run the pipeline, check every output in the bucket; the rows by relative source path."""
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING):  # worker processes' logs come back through the runner
        result = pipeline.run(argv)
    print(f"emulator-backed pipeline run: {time.perf_counter() - started:.1f} s")
    assert result.state == "DONE"
    assert CREDENTIAL_LOOKUP_GAVE_UP not in caplog.text, "a process looked for credentials first"

    rows = {
        row["source_path"].split("/scans/", 1)[1]: row for row in read_metadata(f"gs://{bucket.name}/out").to_pylist()
    }
    assert sorted(rows) == sorted([*SCANS, BROKEN])
    for relative, (height, width) in SCANS.items():
        row = rows[relative]
        assert row["status"] == "ok" and row["output_path"] == f"gs://{bucket.name}/out/{relative}", row
        written = cv2.imdecode(np.frombuffer(bucket.blob(f"out/{relative}").download_as_bytes(), np.uint8), -1)
        assert written.shape == (height, width, 3) == (row["height"], row["width"], 3)
        assert row["model"] == "tiny" and row["mae"] is not None
    assert rows[BROKEN]["status"] == "error" and rows[BROKEN]["output_path"] is None
    assert b"<html" in bucket.blob("out/report.html").download_as_bytes()
    assert not [blob.name for blob in bucket.list_blobs(prefix="out/") if blob.name.endswith(".tmp")]
    table = [blob.name for blob in bucket.list_blobs(prefix="out/metadata/")]  # the table alone: readers read all
    assert table and all(name.startswith("out/metadata/part-") and name.endswith(".parquet") for name in table)
    assert not bucket.blob("out/.revivacolor/lock").exists()  # released
    return rows


def test_evaluate_reads_writes_and_loads_the_model_on_gcs(gcs_job, caplog):
    bucket, argv = gcs_job
    argv = ["--input", f"gs://{bucket.name}/scans", "--evaluate", *argv]
    rows = _run_and_check(bucket, argv, caplog)
    assert all(rows[relative]["ground_truth_path"] == rows[relative]["source_path"] for relative in SCANS)
    written = {relative: bucket.get_blob(f"out/{relative}").generation for relative in SCANS}
    assert _run_and_check(bucket, argv, caplog) == rows  # a rerun: the files done before keep their rows
    assert {relative: bucket.get_blob(f"out/{relative}").generation for relative in SCANS} == written  # not redone


def test_ground_truth_on_gcs_in_worker_processes(gcs_job, caplog):
    bucket, argv = gcs_job
    workers = ["--direct_num_workers=2", "--direct_running_mode=multi_processing", "--inference_threads=1"]
    truth = f"gs://{bucket.name}/truth/"
    rows = _run_and_check(
        bucket, ["--input", f"gs://{bucket.name}/scans/", "--ground_truth", truth, *argv, *workers], caplog
    )
    assert all(rows[relative]["ground_truth_path"] == truth + relative for relative in SCANS)


def test_model_on_gcs_without_card_and_with_a_wrong_checksum(bucket, tiny_model, tmp_path, monkeypatch):
    from pipeline.inference import ColorizerModelHandler

    downloads = tmp_path / "tmp"  # where the local copies of the model go, and must not stay
    downloads.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(downloads))
    _upload(bucket, "bare/bare.keras", tiny_model)
    spec = resolve_model(f"gs://{bucket.name}/bare/bare.keras")
    assert (spec.name, spec.input_size) == ("bare", 32) and spec.version.startswith("sha256:")
    assert ColorizerModelHandler(spec).load_model().input_shape == (None, 32, 32, 1)

    _upload(bucket, "bad/tiny.keras", tiny_model)
    card = json.loads(tiny_model.with_suffix(".json").read_text())
    bucket.blob("bad/tiny.json").upload_from_string(json.dumps(dict(card, sha256="0" * 64)))
    with pytest.raises(ValueError, match="does not match the sha256"):
        ColorizerModelHandler(resolve_model(f"gs://{bucket.name}/bad/tiny.keras")).load_model()
    assert list(downloads.iterdir()) == []
