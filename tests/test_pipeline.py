"""End to end: the real Beam pipeline over a folder of tiny images with a tiny real model."""

from __future__ import annotations

import weakref

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.io.filesystems import FileSystems

import pipeline
from pipeline.colorize import EXIT_SOME_FILES_FAILED, main
from pipeline.records import METADATA_SCHEMA, read_metadata, read_parquet
from tests.conftest import color_photo, write_image
from transforms.lab import luminance
from transforms.metrics import FIDELITY_NAMES, METRIC_NAMES


@pytest.fixture
def archive(tmp_path):
    """A small mixed archive: formats, depths, channels, odd sizes, nested folders, a bad file, a text file."""
    folder = tmp_path / "archive"
    write_image(folder / "portrait.jpg", color_photo(48, 36, seed=1))
    write_image(folder / "nested" / "deeper" / "wide strip.png", color_photo(6, 90, seed=2))
    write_image(folder / "nested" / "sixteen.tiff", color_photo(33, 21, seed=3).astype(np.uint16) * 257)
    write_image(folder / "gray.bmp", cv2.cvtColor(color_photo(25, 25, seed=4), cv2.COLOR_BGR2GRAY))
    bgra = np.dstack([color_photo(20, 30, seed=5), np.full((20, 30), 200, np.uint8)])
    write_image(folder / "alpha.webp", bgra)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "readme.txt").write_text("not a picture")  # no image extension: skipped, no row
    return folder


GOOD = {
    "portrait.jpg": ("portrait.jpg", 8),
    "nested/deeper/wide strip.png": ("nested/deeper/wide strip.png", 8),
    "nested/sixteen.tiff": ("nested/sixteen.tiff", 16),
    "gray.bmp": ("gray.bmp", 8),
    "alpha.webp": ("alpha.webp", 8),
}
BAD = {"empty.jpg": "file is empty"}


def _rows_by_relative_path(table, folder):
    return {row["source_path"][len(str(folder)) + 1 :]: row for row in table.to_pylist()}


def test_every_file_gets_one_row_and_every_good_file_an_output(archive, tmp_path, tiny_model):
    output = tmp_path / "out"
    result = pipeline.run(["--input", str(archive), "--output", str(output), "--model", str(tiny_model)])
    assert result.state == "DONE"

    table = read_metadata(str(output))
    assert table.schema.names == METADATA_SCHEMA.names
    rows = _rows_by_relative_path(table, archive)
    assert sorted(rows) == sorted(list(GOOD) + list(BAD))

    for relative, (expected_output, bit_depth) in GOOD.items():
        row = rows[relative]
        assert row["status"] == "ok" and row["error"] is None, row
        assert row["output_path"] == str(output / expected_output)
        written = cv2.imread(row["output_path"], cv2.IMREAD_UNCHANGED)
        source = cv2.imread(str(archive / relative), cv2.IMREAD_UNCHANGED)
        assert written.shape[:2] == source.shape[:2] == (row["height"], row["width"])
        assert written.ndim == 3 and written.shape[2] == 3
        assert row["bit_depth"] == bit_depth and written.dtype == (np.uint16 if bit_depth == 16 else np.uint8)
        assert row["model"] == "tiny" and row["inference_size"] == 32 and row["seconds"] > 0
        assert len(row["source_sha256"]) == 64
        assert all(row[name] is None for name in (*METRIC_NAMES, "faces"))
        assert row["colorfulness"] >= 0
        assert row["c2pa"] is None  # nothing is signed without --c2pa_cert and --c2pa_key

    for relative, message in BAD.items():
        assert rows[relative]["status"] == "error" and message in rows[relative]["error"]
        assert rows[relative]["output_path"] is None


def test_output_keeps_the_luminance_of_a_gray_scan(tmp_path, tiny_model):
    gray = cv2.cvtColor(color_photo(40, 64, seed=6), cv2.COLOR_BGR2GRAY)
    write_image(tmp_path / "in" / "scan.png", gray)
    pipeline.run(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--model", str(tiny_model)])
    written = cv2.imread(str(tmp_path / "out" / "scan.png"), cv2.IMREAD_UNCHANGED)
    assert np.abs(luminance(written) - luminance(gray)).max() <= 0.5


def test_evaluate_scores_color_inputs_and_output_format_is_honored(tmp_path, tiny_model, capsys):
    write_image(tmp_path / "photos" / "a.jpg", color_photo(30, 40, seed=7))
    write_image(tmp_path / "photos" / "b.png", color_photo(24, 24, seed=8))
    (tmp_path / "photos" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 10)
    output = tmp_path / "scored"
    argv = ["--input", str(tmp_path / "photos"), "--output", str(output), "--model", str(tiny_model)]
    exit_code = main(argv + ["--evaluate", "--output_format", "png"])

    assert exit_code == EXIT_SOME_FILES_FAILED
    assert "2 colorized now, 0 done before, 0 skipped (not images), 1 failed" in capsys.readouterr().out
    rows = {row["source_path"].rsplit("/", 1)[1]: row for row in read_metadata(str(output)).to_pylist()}
    for name in ("a.jpg", "b.png"):
        assert rows[name]["output_path"].endswith(name.rsplit(".", 1)[0] + ".png")
        assert rows[name]["ground_truth_path"] == rows[name]["source_path"]
        assert all(isinstance(rows[name][metric], float) for metric in (*FIDELITY_NAMES, "delta_e2000"))
        assert rows[name]["colorfulness_truth"] > 10 and rows[name]["faces"] == 0
        assert rows[name]["skin_delta_e2000"] is None  # no face in these synthetic pictures
        assert 0 < rows[name]["psnr"] < 100 and -1 <= rows[name]["ssim"] <= 1
    assert rows["broken.png"]["status"] == "error"


def test_ground_truth_folder_pairs_by_relative_path(tmp_path, tiny_model):
    photo = color_photo(20, 28, seed=9)
    write_image(tmp_path / "scans" / "sub" / "x.png", cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))
    write_image(tmp_path / "scans" / "y.png", cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))
    write_image(tmp_path / "truth" / "sub" / "x.jpg", photo)  # paired by name, other extension
    output = tmp_path / "out"
    pipeline.run(
        [
            "--input",
            str(tmp_path / "scans"),
            "--output",
            str(output),
            "--model",
            str(tiny_model),
            "--ground_truth",
            str(tmp_path / "truth"),
        ]
    )
    rows = {row["source_path"].rsplit("/", 1)[1]: row for row in read_metadata(str(output)).to_pylist()}
    assert rows["x.png"]["ground_truth_path"] == str(tmp_path / "truth" / "sub" / "x.jpg")
    assert rows["x.png"]["mae"] is not None and rows["y.png"]["mae"] is None


def test_metadata_is_a_single_parquet_table_under_output(archive, tmp_path, tiny_model):
    output = tmp_path / "out"
    for _ in range(2):  # a rerun replaces the table instead of adding to it
        pipeline.run(["--input", str(archive), "--output", str(output), "--model", str(tiny_model)])
    files = list((output / "metadata").glob("*.parquet"))
    assert files and sum(pq.read_metadata(f).num_rows for f in files) == len(GOOD) + len(BAD)


def test_reading_parquet_leaves_no_file_to_arrow_threads(tmp_path, monkeypatch):
    """When read_parquet returns, Arrow holds nothing of Python's any more.

    A file object still held by an Arrow I/O thread when the interpreter exits aborts the
    process ("terminate called without an active exception"): CI saw it, and so did 2 of 20
    runs of `python -m pipeline` on a loaded machine. pq.read_table left its handle to such a
    thread in about one read out of twelve to twenty here, so 200 reads catch it.
    """
    path = tmp_path / "part.parquet"
    pq.write_table(pa.table({"source_path": [f"scan{i}.png" for i in range(100)]}), path)
    handles = []
    real_open = FileSystems.open

    def tracked_open(*args, **kwargs):
        handle = real_open(*args, **kwargs)
        handles.append(weakref.ref(handle))
        return handle

    monkeypatch.setattr(FileSystems, "open", tracked_open)
    for _ in range(200):
        assert read_parquet(str(path)).num_rows == 100
        assert handles[-1]() is None, "an Arrow thread still holds the file object"


def test_output_inside_input_is_left_out_of_the_scan(tmp_path, tiny_model):
    scans = tmp_path / "scans"
    write_image(scans / "a.png", color_photo(20, 30, seed=10))
    argv = ["--input", str(scans), "--output", str(scans / "colorized"), "--model", str(tiny_model)]
    for _ in range(2):  # the second run sees the first run's outputs inside --input
        pipeline.run(argv)
    rows = read_metadata(str(scans / "colorized")).to_pylist()
    assert [row["source_path"] for row in rows] == [str(scans / "a.png")]
    assert sorted(p.name for p in scans.iterdir()) == ["a.png", "colorized"]  # the input is untouched


def test_inference_threads_limit_tensorflow_in_a_fresh_worker_process():
    import subprocess
    import sys

    probe = (
        "from pipeline.inference import limit_cpu_threads; limit_cpu_threads(1); "
        "from tensorflow.config import threading as t; "
        "print(t.get_intra_op_parallelism_threads(), t.get_inter_op_parallelism_threads())"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["1", "1"]


def test_vividness_scales_the_chroma_and_a_changed_vividness_redoes_the_file(tmp_path):
    """A model that predicts one color everywhere: --vividness 2 doubles its chroma, 0 gives gray."""
    from models.architectures import build_gray_baseline
    from transforms.codec import to_float_bgr
    from transforms.lab import AB_SCALE, bgr_to_lab

    model = build_gray_baseline(32)
    kernel, _ = model.get_layer("ab").get_weights()
    model.get_layer("ab").set_weights([kernel, np.array([12.0, 8.0], np.float32) / AB_SCALE])
    model.save(tmp_path / "constant.keras")
    scans, output = tmp_path / "scans", tmp_path / "out"
    write_image(scans / "a.png", np.full((20, 30), 128, np.uint8))
    chroma = {}
    for vividness in ("1", "2", "0"):  # one output folder: each change of vividness must redo the file
        pipeline.run(
            [
                "--input",
                str(scans),
                "--output",
                str(output),
                "--model",
                str(tmp_path / "constant.keras"),
                "--vividness",
                vividness,
            ]
        )
        ab = bgr_to_lab(to_float_bgr(cv2.imread(str(output / "a.png"))))[:, :, 1:]
        chroma[vividness] = float(np.hypot(ab[..., 0], ab[..., 1]).mean())
    assert abs(chroma["1"] - np.hypot(12, 8)) < 1.0
    assert abs(chroma["2"] - 2 * np.hypot(12, 8)) < 1.5
    assert chroma["0"] < 0.8


@pytest.mark.parametrize("value", ["-0.5", "4", "vivid"])
def test_vividness_out_of_range_is_a_command_line_error(tmp_path, value, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--input", str(tmp_path), "--output", str(tmp_path / "out"), "--vividness", value])
    assert stop.value.code == 2 and "--vividness" in capsys.readouterr().err
