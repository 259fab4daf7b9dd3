"""The pipeline on Keras's JAX backend, on a machine where TensorFlow cannot be imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.records import read_metadata

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "gray"
NO_TENSORFLOW = '''
import sys


class NoTensorFlow:
    """Every import of tensorflow fails, as where it is not installed (sys.modules is left alone)."""

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "tensorflow":
            raise ImportError("tensorflow cannot be imported here")


sys.meta_path.insert(0, NoTensorFlow())
'''


def test_the_samples_colorize_with_jax_where_tensorflow_cannot_be_imported(tmp_path):
    pytest.importorskip("jax")
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(NO_TENSORFLOW)
    output = tmp_path / "out"
    environment = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": os.pathsep.join([str(shim), str(ROOT)])}
    command = [sys.executable, "-m", "pipeline", "--input", str(SAMPLES), "--output", str(output)]
    command += ["--inference_threads=1"]  # TensorFlow's option: ignored with a warning, not an import
    command += ["--hints", str(ROOT / "samples" / "hints")]  # the demo's known colors: two inputs on JAX too
    ran = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    samples = sorted(path.name for path in SAMPLES.iterdir())
    summary = f"{len(samples)} colorized now, 0 done before, 0 skipped (not images), 0 failed; model copies: 1"
    assert summary in ran.stdout
    assert {*samples, "report.html"} <= {path.name for path in output.iterdir()}
    assert "inference_threads=1 ignored" in ran.stderr
    rows = {Path(row["source_path"]).name: row for row in read_metadata(str(output)).to_pylist()}
    assert rows["skimage_camera.png"]["hints"] == 7 and rows["skimage_camera.png"]["hint_delta_e2000"] < 3

    probe = "import tensorflow"
    refused = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=environment)
    assert "tensorflow cannot be imported here" in refused.stderr  # the shim did hold TensorFlow back
