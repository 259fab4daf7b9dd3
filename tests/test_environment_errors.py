"""Problems of the whole run (bad --model, unwritable --output, a full disk): one clear line, exit 1."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest
from apache_beam.io.localfilesystem import LocalFileSystem

from pipeline.colorize import EXIT_FAILED_TO_RUN, main
from tests.conftest import color_photo, write_image


@pytest.fixture
def scans(tmp_path) -> Path:
    for index in range(8):
        write_image(tmp_path / "scans" / f"scan{index}.png", color_photo(20, 24, seed=index))
    return tmp_path / "scans"


def _one_error_line(capsys) -> str:
    """The error the run ended with: one line, the last on stderr, and no traceback anywhere."""
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("revivacolor: error: ")]
    assert "Traceback" not in captured.err and len(errors) == 1, captured.err
    assert captured.err.strip().splitlines()[-1] == errors[0]
    return errors[0]


@pytest.mark.parametrize("content", [b"", b"this is a text file\n", np.random.default_rng(0).bytes(5000)])
def test_a_model_file_that_is_no_model_is_one_clear_line(content, scans, tmp_path, capsys):
    model = tmp_path / "broken.keras"
    model.write_bytes(content)
    assert main(["--input", str(scans), "--output", str(tmp_path / "out"), "--model", str(model)]) == EXIT_FAILED_TO_RUN
    assert "not a Keras model file" in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_a_model_that_does_not_fit_the_pipeline_stops_before_any_file(scans, tmp_path, capsys):
    """Checked once when the run starts, not found out by every file (today's 100,000 error rows)."""
    import keras

    from models.registry import file_sha256

    model_path = tmp_path / "rgb.keras"
    keras.Sequential([keras.Input((32, 32, 1)), keras.layers.Conv2D(3, 1)]).save(model_path)
    card = {"name": "rgb", "version": "1", "input_size": 32, "file": model_path.name}
    model_path.with_suffix(".json").write_text(json.dumps(dict(card, sha256=file_sha256(str(model_path)))))
    argv = ["--input", str(scans), "--output", str(tmp_path / "out"), "--model", str(model_path)]
    assert main(argv) == EXIT_FAILED_TO_RUN
    line = _one_error_line(capsys)
    assert "does not fit the pipeline" in line and "(batch, 32, 32, 2)" in line
    assert not (tmp_path / "out").exists()


def test_an_output_that_is_a_file_is_one_clear_line(scans, tmp_path, tiny_model, capsys):
    (tmp_path / "out").write_text("a file where the output folder should be")
    for output in (tmp_path / "out", tmp_path / "out" / "below"):
        assert main(["--input", str(scans), "--output", str(output), "--model", str(tiny_model)]) == EXIT_FAILED_TO_RUN
        assert "--output" in _one_error_line(capsys)


def test_a_full_disk_stops_the_run_early_with_one_line_and_no_partial_files(
    scans, tmp_path, tiny_model, capsys, monkeypatch
):
    """Writing an image under --output fails as on a full disk: the file is created, then ENOSPC."""
    output = tmp_path / "out"
    real_create = LocalFileSystem.create
    failed_writes = []

    class FullDisk:
        def __init__(self, handle):
            self._handle = handle

        def write(self, data):
            if not data.startswith(b"\x89PNG"):
                return self._handle.write(data)
            failed_writes.append(data)
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self._handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._handle.close()

    def create(self, path, *args, **kwargs):
        handle = real_create(self, path, *args, **kwargs)
        return FullDisk(handle) if path.startswith(str(output)) else handle

    monkeypatch.setattr(LocalFileSystem, "create", create)
    argv = ["--input", str(scans), "--output", str(output), "--model", str(tiny_model), "--batch_size", "1"]
    assert main(argv) == EXIT_FAILED_TO_RUN
    assert "No space left on device" in _one_error_line(capsys)
    monkeypatch.undo()
    assert not [path for path in output.rglob("*") if path.name.endswith(".tmp")]  # this run's partial files
    assert not [path for path in output.rglob("*.png")]
    assert 3 <= len(failed_writes) < 8  # stopped after a few, not at the end of the archive
