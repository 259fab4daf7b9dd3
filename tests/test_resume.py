"""An interrupted night: a run killed with SIGKILL is finished by a rerun, with one row per input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2

import pipeline
from pipeline.records import read_metadata
from tests.conftest import color_photo, write_image

REPOSITORY = Path(__file__).parents[1]
FILES = 40


def _receipts(output: Path) -> dict[Path, float]:
    """The receipts of finished files (one being written when the run was killed has a receipt saying so)."""
    receipts = (output / ".revivacolor" / "receipts").glob("*.json")
    return {path: path.stat().st_mtime_ns for path in receipts if json.loads(path.read_text())["row"]["status"] == "ok"}


def test_a_killed_run_is_finished_by_a_rerun_without_duplicates(tmp_path, tiny_model):
    scans, output = tmp_path / "scans", tmp_path / "out"
    for index in range(FILES):
        write_image(scans / f"box{index % 3}" / f"scan{index:02d}.png", color_photo(24, 32, seed=index))
    argv = ["--input", str(scans), "--output", str(output), "--model", str(tiny_model), "--batch_size", "1"]

    night = subprocess.Popen(
        [sys.executable, "-m", "pipeline", *argv],
        cwd=REPOSITORY,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while not _receipts(output) and night.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    night.send_signal(signal.SIGKILL)
    night.wait()
    done_before = _receipts(output)
    assert 0 < len(done_before) < FILES, "the run was not killed in the middle"
    for image in output.rglob("*.png"):  # nothing truncated under a final name
        assert cv2.imread(str(image)) is not None, image

    pipeline.run(argv)
    rows = read_metadata(str(output)).to_pylist()
    assert len(rows) == FILES and len({row["source_path"] for row in rows}) == FILES
    assert all(row["status"] == "ok" and Path(row["output_path"]).exists() for row in rows)
    assert all(_receipts(output)[path] == mtime for path, mtime in done_before.items())  # skipped, not redone
    assert not list(output.rglob("*.tmp"))

    pipeline.run([*argv, "--overwrite"])
    assert len(read_metadata(str(output))) == FILES
    assert all(_receipts(output)[path] != mtime for path, mtime in done_before.items())  # redone


def test_a_changed_source_is_colorized_again(tmp_path, tiny_model):
    scans, output = tmp_path / "scans", tmp_path / "out"
    write_image(scans / "a.png", color_photo(20, 20, seed=1))
    write_image(scans / "b.png", color_photo(20, 20, seed=2))
    argv = ["--input", str(scans), "--output", str(output), "--model", str(tiny_model)]
    pipeline.run(argv)
    first = _receipts(output)
    write_image(scans / "b.png", color_photo(20, 20, seed=3))  # b changes, a does not
    pipeline.run(argv)
    changed = {path for path, mtime in _receipts(output).items() if first[path] != mtime}
    rows = {Path(row["source_path"]).name: row for row in read_metadata(str(output)).to_pylist()}
    assert len(changed) == 1 and len(rows) == 2
    assert rows["b.png"]["source_sha256"] != rows["a.png"]["source_sha256"]


def test_a_receipt_that_cannot_be_written_costs_only_the_shortcut(tmp_path, tiny_model):
    scans, output = tmp_path / "scans", tmp_path / "out"
    write_image(scans / "a.png", color_photo(20, 20, seed=1))
    (output / ".revivacolor").mkdir(parents=True)
    (output / ".revivacolor" / "receipts").write_text("a file where the receipts folder belongs")
    pipeline.run(["--input", str(scans), "--output", str(output), "--model", str(tiny_model)])
    (row,) = read_metadata(str(output)).to_pylist()
    assert row["status"] == "ok" and (output / "a.png").exists()
