"""The command line: misspelled options, run_pipeline.sh, start-up noise, progress lines and the summary."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from pipeline import progress
from pipeline.colorize import EXIT_BAD_COMMAND_LINE, EXIT_OK, _reject_unknown_options, main
from tests.conftest import color_photo, write_image

REPOSITORY = Path(__file__).parents[1]


@pytest.fixture
def scans(tmp_path) -> Path:
    for index in range(3):
        write_image(tmp_path / "scans" / f"scan{index}.png", color_photo(20, 24, seed=index))
    (tmp_path / "scans" / "notes.txt").write_text("not a scan")
    return tmp_path / "scans"


def _argv(scans: Path, output: Path, model: Path, *more: str) -> list[str]:
    return ["--input", str(scans), "--output", str(output), "--model", str(model), *more]


@pytest.mark.parametrize(
    "wrong, message",
    [
        (["--output-format", "png"], "unknown option --output-format (did you mean --output_format?)"),
        (["--batchsize=4"], "did you mean --batch_size?"),
        (["--out", "x"], "unknown option --out"),
        (["--batch_size", "0"], "--batch_size: must be a whole number above 0"),
    ],
)
def test_a_wrong_option_is_an_error_naming_the_right_one(wrong, message, scans, tmp_path, tiny_model, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(_argv(scans, tmp_path / "out", tiny_model, *wrong))
    assert stopped.value.code == EXIT_BAD_COMMAND_LINE
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_beam_options_still_pass_through():
    import argparse

    beam_options = ["--runner=DataflowRunner", "--project", "p", "--temp_location=gs://b/tmp", "--region", "r"]
    beam_options += ["--direct_num_workers=2", "--direct_running_mode=multi_processing", "--dry_run=True"]
    _reject_unknown_options(argparse.ArgumentParser(), ["--input", "i", "--output", "o", *beam_options])


def test_run_pipeline_sh_keeps_the_callers_working_directory(tmp_path):
    """Relative --input and --output mean what the user typed, from where it was typed."""
    checkout = tmp_path / "checkout"
    (checkout / "scripts").mkdir(parents=True)
    (checkout / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(REPOSITORY / "run_pipeline.sh", checkout)
    (checkout / "scripts" / "ensure_venv.sh").write_text("#!/bin/sh\nexit 0\n")
    (checkout / ".venv" / "bin" / "python").write_text('#!/bin/sh\necho "$PWD" "$@"\n')
    for script in (checkout / "scripts" / "ensure_venv.sh", checkout / ".venv" / "bin" / "python"):
        script.chmod(0o755)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ran = subprocess.run(
        [str(checkout / "run_pipeline.sh"), "--input", "scans", "--output", "out"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    )
    assert ran.stdout.split() == [str(elsewhere), "-m", "pipeline", "--input", "scans", "--output", "out"]


@pytest.mark.skipif(bool(list(Path("/dev").glob("nvidia[0-9]*"))), reason="silenced only without a GPU")
def test_no_start_up_noise_without_a_gpu(scans, tmp_path, tiny_model):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    ran = subprocess.run(
        [sys.executable, "-m", "pipeline", *_argv(scans, tmp_path / "out", tiny_model)],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert ran.returncode == EXIT_OK, ran.stderr
    noise = [line for line in ran.stderr.splitlines() if not re.match(r"\d\d:\d\d:\d\d ", line)]
    assert noise == [], "\n".join(noise)  # only the pipeline's own time-stamped lines


@pytest.mark.parametrize("workers", [[], ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]])
def test_progress_lines_come_from_the_launching_process_in_every_mode(
    workers, scans, tmp_path, tiny_model, capsys, monkeypatch
):
    monkeypatch.setattr(progress, "REPORT_SECONDS", 0.05)
    monkeypatch.setattr(progress, "WRITE_SECONDS", 0.0)
    assert main(_argv(scans, tmp_path / "out", tiny_model, "--inference_threads=1", *workers)) == EXIT_OK
    out, err = capsys.readouterr()
    assert "model copies: 1;" in out  # two worker processes share one copy of the model
    lines = err.splitlines()
    assert any(line.endswith(" 3/3 done") or " 3/3 done, " in line for line in lines), lines
    assert not list((tmp_path / "out" / ".revivacolor").glob("progress/*"))


def test_the_summary_separates_colorized_now_done_before_skipped_and_failed(scans, tmp_path, tiny_model, capsys):
    output = tmp_path / "out"
    assert main(_argv(scans, output, tiny_model)) == EXIT_OK
    assert "3 colorized now, 0 done before, 1 skipped (not images), 0 failed" in capsys.readouterr().out
    (scans / "broken.png").write_bytes(b"no image")
    write_image(scans / "new.png", color_photo(10, 10))
    pages = [Image.fromarray(color_photo(10, 10, seed=seed)) for seed in (1, 2)]
    pages[0].save(scans / "pages.tif", save_all=True, append_images=pages[1:])
    assert main(_argv(scans, output, tiny_model)) != EXIT_OK
    summary = capsys.readouterr().out
    assert "2 colorized now, 3 done before, 1 skipped (not images), 1 failed" in summary
    assert re.search(r"failed: .*broken\.png: not a readable image", summary)
    assert "1 written with warnings (what could not be kept as it was): the report's Warnings" in summary


def test_progress_line_counts_and_time_left():
    counts = progress.collections.Counter(selected=10, colorized=3, done_before=2, failed=1)
    assert progress.progress_line(counts, None) == "6/10 done"
    assert progress.progress_line(counts, 2.0) == "6/10 done, 2.00 images/s, about 0:00:02 left"
