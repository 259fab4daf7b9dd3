"""The pipeline on Keras's JAX backend, on a machine where TensorFlow cannot be imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from models.architectures import build_unet
from pipeline.records import read_metadata
from tests.conftest import color_photo, write_image

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


@pytest.fixture
def jax_without_tensorflow(tmp_path) -> dict[str, str]:
    """The environment of a process on Keras's JAX backend in which `import tensorflow` fails."""
    pytest.importorskip("jax")
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(NO_TENSORFLOW)
    return {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": os.pathsep.join([str(shim), str(ROOT)])}


def test_the_samples_colorize_with_jax_where_tensorflow_cannot_be_imported(jax_without_tensorflow, tmp_path):
    environment = jax_without_tensorflow
    output = tmp_path / "out"
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


def test_a_hint_model_trains_on_jax_where_tensorflow_cannot_be_imported(jax_without_tensorflow, tmp_path):
    """The GPU machines have JAX and no TensorFlow: NumPy batches, keras.ops losses, the same exported model."""
    for index in range(4):
        write_image(tmp_path / "photos" / f"p{index}.jpg", color_photo(60 + 9 * index, 80, seed=index))
    keras.utils.set_random_seed(0)
    build_unet(64, pretrained=False).save(tmp_path / "start.keras")  # no ImageNet weights: --init_from replaces them
    command = [sys.executable, "-m", "models.train", "--data", str(tmp_path / "photos"), "--arch", "unet", "--hints",
               "--hint_attention", "--init_from", str(tmp_path / "start.keras"), "--size", "64", "--crop", "64",
               "--batch_size", "2",
               "--epochs", "2", "--cosine_decay", "--average_from", "1", "--loss", "mae+psnr+ssim",
               "--out", str(tmp_path / "run"), "--name", "on_jax"]  # fmt: skip
    ran = subprocess.run(command, capture_output=True, text=True, env=jax_without_tensorflow, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    card = json.loads((tmp_path / "run" / "on_jax.json").read_text())
    assert card["epochs_run"] == 2 and card["averaged_epochs"] == [1, 2] and card["hints"] and card["hint_attention"]

    model = keras.saving.load_model(tmp_path / "run" / "on_jax.keras", compile=False)  # here on TensorFlow
    lightness = np.linspace(0, 1, 64 * 64, dtype="float32").reshape(1, 64, 64, 1)
    ab = model.predict([lightness, np.zeros((1, 64, 64, 3), "float32")], verbose=0)
    assert ab.shape == (1, 64, 64, 2) and np.isfinite(ab).all() and np.abs(ab).max() > 0
