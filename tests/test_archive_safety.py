"""An archive is never harmed: files the tool did not write, colliding names, odd names, reruns, concurrent runs."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import pipeline
from pipeline.colorize import EXIT_BAD_COMMAND_LINE, EXIT_FAILED_TO_RUN, EXIT_OK, main
from pipeline.lock import LOCK_FILE, output_lock
from pipeline.records import METADATA_SCHEMA, read_metadata
from tests.conftest import color_photo, write_image


def _argv(scans: Path, output: Path, model: Path, *more: str) -> list[str]:
    return ["--input", str(scans), "--output", str(output), "--model", str(model), *more]


def _rows(output: Path) -> dict[str, dict]:
    """The table's rows by source file name."""
    return {row["source_path"].rsplit("/", 1)[1]: row for row in read_metadata(str(output)).to_pylist()}


def test_output_that_is_or_holds_the_input_is_refused_and_nothing_is_deleted(tmp_path, tiny_model, capsys):
    archive = tmp_path / "archive"
    write_image(archive / "scans" / "a.png", color_photo(16, 16))
    (archive / "scans" / "draft.tmp").write_text("the user's own draft")
    (archive / "keep").mkdir()
    (archive / "keep" / "ledger.xlsx.tmp").write_text("the user's own ledger")
    before = sorted(path for path in archive.rglob("*"))
    for scans, output in ((archive / "scans", archive / "scans"), (archive / "scans", archive)):
        assert main(_argv(scans, output, tiny_model)) == EXIT_BAD_COMMAND_LINE
        assert "--output" in capsys.readouterr().err
    assert sorted(path for path in archive.rglob("*")) == before


def test_files_the_tool_did_not_write_are_neither_deleted_nor_replaced(tmp_path, tiny_model):
    scans, output = tmp_path / "scans", tmp_path / "out"
    write_image(scans / "a.png", color_photo(16, 16, seed=1))
    write_image(scans / "b.png", color_photo(16, 16, seed=2))
    (output / "keep").mkdir(parents=True)
    (output / "draft.tmp").write_text("draft")
    (output / "keep" / "ledger.xlsx.tmp").write_text("ledger")
    (output / "a.png").write_bytes(b"the user's own a.png")
    (output / "report.html").write_text("the user's own report")

    assert main(_argv(scans, output, tiny_model)) != EXIT_OK
    rows = _rows(output)
    assert rows["a.png"]["status"] == "error" and "not written by revivacolor" in rows["a.png"]["error"]
    assert rows["b.png"]["status"] == "ok"
    assert (output / "a.png").read_bytes() == b"the user's own a.png"
    assert (output / "draft.tmp").read_text() == "draft" and (output / "keep" / "ledger.xlsx.tmp").exists()
    assert (output / "report.html").read_text() == "the user's own report"

    assert main(_argv(scans, output, tiny_model)) != EXIT_OK  # its own b.png is no stranger to a rerun
    assert _rows(output)["b.png"]["status"] == "ok"
    assert main(_argv(scans, output, tiny_model, "--overwrite")) == EXIT_OK
    assert cv2.imread(str(output / "a.png")) is not None and "<html" in (output / "report.html").read_text()


def test_inputs_that_map_to_one_output_name_each_keep_their_own(tmp_path, tiny_model):
    scans = tmp_path / "scans"
    for seed, name in enumerate(("a.tif", "a.tiff", "b.jpg", "b.jpeg", "c.gif", "c.png")):
        write_image(scans / name, color_photo(16, 16 + seed, seed=seed))
    output = tmp_path / "own"
    threads = ["--direct_num_workers=2", "--direct_running_mode=multi_threading"]
    pipeline.run(_argv(scans, output, tiny_model, *threads))
    outputs = {name: row["output_path"] for name, row in _rows(output).items()}
    assert outputs == {  # one name per input, whatever the order of processing
        "a.tif": str(output / "a.tif"),
        "a.tiff": str(output / "a.tiff"),
        "b.jpg": str(output / "b.jpg"),
        "b.jpeg": str(output / "b.jpeg"),
        "c.gif": str(output / "c.gif.png"),  # GIF is written as PNG, beside c.png
        "c.png": str(output / "c.png.png"),
    }
    assert all(cv2.imread(path) is not None for path in outputs.values())

    output = tmp_path / "png"
    pipeline.run(_argv(scans, output, tiny_model, "--output_format", "png", *threads))
    rows = _rows(output)
    assert {name: row["output_path"] for name, row in rows.items()} == {
        name: str(output / f"{name}.png") for name in rows
    }
    assert len(list(output.glob("*.png"))) == len(rows) == 6


def test_a_name_that_is_not_utf8_is_one_row_not_a_crashed_run(tmp_path, tiny_model):
    scans, output = tmp_path / "scans", tmp_path / "out"
    write_image(scans / "good.png", color_photo(16, 16))
    bad = os.path.join(os.fsencode(scans), b"bad\xff\xfe.png")
    with open(bad, "wb") as handle:
        handle.write(cv2.imencode(".png", color_photo(16, 20, seed=3))[1].tobytes())

    assert main(_argv(scans, output, tiny_model)) == EXIT_OK
    rows = _rows(output)
    assert sorted(rows) == ["bad\\xff\\xfe.png", "good.png"]  # the undecodable bytes, escaped
    assert rows["bad\\xff\\xfe.png"]["status"] == "ok" and rows["bad\\xff\\xfe.png"]["width"] == 20
    assert cv2.imread(rows["bad\\xff\\xfe.png"]["output_path"]) is not None


def test_the_table_reads_as_the_readme_says(tmp_path, tiny_model):
    scans, output = tmp_path / "scans", tmp_path / "out"
    write_image(scans / "a.png", color_photo(16, 16))
    (scans / "broken.png").write_bytes(b"not a picture")
    pipeline.run(_argv(scans, output, tiny_model))
    pipeline.run(_argv(scans, output, tiny_model))  # a rerun reads its receipts, where the table must not see them
    table = pq.read_table(str(output / "metadata"))
    assert table.schema == METADATA_SCHEMA and table.num_rows == 2  # width stays int32 beside an error row
    assert ds.dataset(str(output / "metadata"), format="parquet").to_table().num_rows == 2


def test_a_second_run_with_other_inputs_keeps_the_first_runs_rows(tmp_path, tiny_model):
    output = tmp_path / "out"
    write_image(tmp_path / "box1" / "a.png", color_photo(16, 16, seed=1))
    write_image(tmp_path / "box2" / "b.png", color_photo(16, 16, seed=2))
    pipeline.run(_argv(tmp_path / "box1", output, tiny_model))
    pipeline.run(_argv(tmp_path / "box2", output, tiny_model))
    assert sorted(_rows(output)) == ["a.png", "b.png"]

    write_image(tmp_path / "box1" / "a.png", color_photo(16, 24, seed=3))  # a changes: its latest row counts
    pipeline.run(_argv(tmp_path / "box1", output, tiny_model))
    rows = _rows(output)
    assert sorted(rows) == ["a.png", "b.png"] and rows["a.png"]["width"] == 24


def test_a_second_run_into_a_busy_output_is_refused(tmp_path, tiny_model, capsys):
    scans, output = tmp_path / "scans", tmp_path / "out"
    write_image(scans / "a.png", color_photo(16, 16))
    with output_lock(str(output)):  # as a first run holds it
        assert main(_argv(scans, output, tiny_model)) == EXIT_FAILED_TO_RUN
    message = capsys.readouterr().err
    assert f"pid {os.getpid()}" in message and socket.gethostname() in message and "started" in message
    assert not (output / "a.png").exists()
    assert main(_argv(scans, output, tiny_model)) == EXIT_OK  # released


def test_a_stale_lock_is_broken(tmp_path, tiny_model):
    scans, output = tmp_path / "scans", tmp_path / "out"
    write_image(scans / "a.png", color_photo(16, 16))
    died = f"import os; from pipeline.lock import output_lock\nwith output_lock({str(output)!r}): os._exit(0)"
    subprocess.run([sys.executable, "-c", died], cwd=Path(__file__).parents[1], check=True)  # left its lock behind
    assert (output / LOCK_FILE).exists()
    assert main(_argv(scans, output, tiny_model)) == EXIT_OK


@pytest.mark.parametrize("changed", [["--output_format", "png"], ["--evaluate"]])
def test_a_rerun_with_other_options_redoes_what_they_change(tmp_path, tiny_model, changed):
    scans, output = tmp_path / "scans", tmp_path / "out"
    write_image(scans / "a.jpg", color_photo(16, 16))
    pipeline.run(_argv(scans, output, tiny_model))
    pipeline.run(_argv(scans, output, tiny_model, *changed))
    row = _rows(output)["a.jpg"]
    if "--evaluate" in changed:
        assert row["output_path"] == str(output / "a.jpg") and row["psnr"] is not None
    else:
        assert row["output_path"] == str(output / "a.png") and cv2.imread(row["output_path"]) is not None
    pipeline.run(_argv(scans, output, tiny_model))  # and back: the first run's file is still its own
    assert _rows(output)["a.jpg"]["status"] == "ok"
