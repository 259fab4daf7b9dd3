"""Shared fixtures: tiny images, a tiny (untrained but real) Keras colorization model, a GCS emulator."""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.storage import EMULATOR_HOST_VARIABLE

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TINY_SIZE = 32


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 32x32 autoencoder (untrained, real) saved as .keras with a model card, like a bundled model."""
    import keras

    from models.architectures import build_autoencoder
    from models.registry import file_sha256

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("model")
    path = folder / "tiny.keras"
    build_autoencoder(TINY_SIZE).save(path)
    card = {
        "name": "tiny",
        "version": "test",
        "input_size": TINY_SIZE,
        "file": path.name,
        "sha256": file_sha256(str(path)),
    }
    path.with_suffix(".json").write_text(json.dumps(card))
    return path


@pytest.fixture(scope="session")
def hint_echo_model(tmp_path_factory) -> Path:
    """A model that answers with the hint a/b it is given (0 elsewhere): the hints' path made visible."""
    import keras
    from keras import layers

    from transforms.hints import HINT_CHANNELS

    lightness = keras.Input((TINY_SIZE, TINY_SIZE, 1), name="lightness")
    hints = keras.Input((TINY_SIZE, TINY_SIZE, HINT_CHANNELS), name="hints")
    echo = layers.Conv2D(2, 1, use_bias=False, trainable=False, name="ab")
    both = layers.Concatenate()([lightness, hints])
    model = keras.Model([lightness, hints], echo(both))
    kernel = np.zeros((1, 1, 1 + HINT_CHANNELS, 2), np.float32)
    kernel[0, 0, 1, 0] = kernel[0, 0, 2, 1] = 1.0
    echo.set_weights([kernel])
    path = tmp_path_factory.mktemp("echo") / "echo.keras"
    model.save(path)
    return path


def color_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth, colorful 8-bit BGR test picture (gradients plus a disc), deterministic."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack(
        [
            127 + 100 * np.sin(x / max(width, 1) * 3 + rng.uniform(0, 3)),
            127 + 100 * np.cos(y / max(height, 1) * 2 + rng.uniform(0, 3)),
            127 + 80 * np.sin((x + y) / max(width + height, 1) * 4),
        ],
        axis=-1,
    )
    disc = (x - width / 2) ** 2 + (y - height / 2) ** 2 < (min(height, width) / 4) ** 2
    image[disc] = (40, 90, 200)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_image(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image), path
    return path


def photos_and_tiny_hint_unet(folder: Path, names: list[str]) -> tuple[Path, Path]:
    """Color photos of these names in FOLDER/photos and an untrained 64 x 64 hint-taking unet in
    FOLDER/base.keras, the start of a training test: (photos, model)."""
    import keras

    from models.architectures import build_unet

    photos = folder / "photos"
    for index, name in enumerate(names):
        write_image(photos / name, color_photo(50 + 7 * index, 80, seed=index))
    base = folder / "base.keras"
    keras.utils.set_random_seed(0)
    build_unet(64, pretrained=False, hints=True).save(base)
    return photos, base


@pytest.fixture(scope="module")
def emulator() -> Iterator[str]:
    """An in-memory gcp-storage-emulator on a free local port; its URL."""
    from gcp_storage_emulator.server import create_server

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(emulator, monkeypatch):
    """A fresh bucket on the emulator, with STORAGE_EMULATOR_HOST pointing there (worker processes inherit it)."""
    from google.cloud import storage

    monkeypatch.setenv(EMULATOR_HOST_VARIABLE, emulator)
    return storage.Client.create_anonymous_client().create_bucket(f"revivacolor-{uuid.uuid4().hex[:12]}")
