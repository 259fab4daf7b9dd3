"""Which model file `--model` means, and what the pipeline must know about it.

Bundled models live in models/bundled/ as `<name>.keras` with a JSON model card
`<name>.json` beside them; the card gives the version, the sha256 and the input
size. `--model` also takes a path (local or gs://) to any exported `.keras` file;
its card is read when it has one, otherwise the input size is read from the
Keras config inside the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from apache_beam.io.filesystems import FileSystems

BUNDLED_DIR = Path(__file__).parent / "bundled"
DEFAULT_MODEL = "unet"


@dataclass(frozen=True)
class ModelSpec:
    """A model the pipeline can load: where it is, what it is called, how big its input is."""

    name: str
    path: str
    version: str
    input_size: int
    sha256: str | None = None  # checked on load when known
    takes_hints: bool = False  # a second input of known colors beside L (see models.architectures.build_unet)


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with FileSystems.open(path) as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_keras_file(path: str):
    """A local .keras file loaded as every part of RevivaColor loads a model: safe mode on, our own layers known."""
    import keras

    from models import certainty, hint_attention, sure_colors, trust

    custom_objects = (
        certainty.CUSTOM_OBJECTS | hint_attention.CUSTOM_OBJECTS | trust.CUSTOM_OBJECTS | sure_colors.CUSTOM_OBJECTS
    )
    return keras.saving.load_model(path, custom_objects=custom_objects, compile=False, safe_mode=True)


def bundled_models() -> dict[str, ModelSpec]:
    """Every bundled model by name, plus `default`."""
    models = {}
    for card_path in sorted(BUNDLED_DIR.glob("*.json")):
        card = json.loads(card_path.read_text())
        models[card["name"]] = ModelSpec(
            name=card["name"],
            path=str(BUNDLED_DIR / card["file"]),
            version=str(card["version"]),
            input_size=int(card["input_size"]),
            sha256=card["sha256"],
            takes_hints=bool(card.get("hints", False)),
        )
    if DEFAULT_MODEL in models:
        models["default"] = models[DEFAULT_MODEL]
    return models


def _inputs_from_keras_file(path: str) -> tuple[int, bool]:
    """Read the square input size, and whether there is a hints input, from the config.json inside a .keras archive.

    Anything else (an empty, text or truncated file) is a ValueError with one clear line.
    """
    try:
        with FileSystems.open(path) as handle:
            archive = zipfile.ZipFile(io.BytesIO(handle.read()))
        layers = json.loads(archive.read("config.json"))["config"]["layers"]
        shapes = [layer["config"]["batch_shape"] for layer in layers if layer["class_name"] == "InputLayer"]
    except (zipfile.BadZipFile, KeyError, TypeError, ValueError) as error:
        message = f"--model {path} is not a Keras model file (.keras): {type(error).__name__}: {error}"
        raise ValueError(message) from error
    for shape in shapes:
        if len(shape) == 4 and shape[1] == shape[2] and shape[3] == 1:
            return int(shape[1]), len(shapes) == 2
    raise ValueError(f"{path}: the model's input is not a square single-channel (L) image")


def resolve_model(name_or_path: str) -> ModelSpec:
    """A bundled model by name, or a `.keras` file by path (its card beside it if present)."""
    bundled = bundled_models()
    if name_or_path in bundled:
        return bundled[name_or_path]
    if not name_or_path.endswith(".keras"):
        raise ValueError(
            f"unknown model {name_or_path!r}: use one of {', '.join(sorted(bundled))} "
            "or a path to an exported .keras file"
        )
    if not FileSystems.exists(name_or_path):
        raise FileNotFoundError(f"model file not found: {name_or_path}")
    card_path = name_or_path[: -len(".keras")] + ".json"
    if FileSystems.exists(card_path):
        with FileSystems.open(card_path) as handle:
            card = json.loads(handle.read())
        return ModelSpec(
            name=card.get("name", Path(name_or_path).stem),
            path=name_or_path,
            version=str(card.get("version", "unknown")),
            input_size=int(card["input_size"]),
            sha256=card.get("sha256"),
            takes_hints=bool(card["hints"]) if "hints" in card else _inputs_from_keras_file(name_or_path)[1],
        )
    sha256 = file_sha256(name_or_path)
    input_size, takes_hints = _inputs_from_keras_file(name_or_path)
    return ModelSpec(
        name=Path(name_or_path).stem,
        path=name_or_path,
        version=f"sha256:{sha256[:12]}",
        input_size=input_size,
        sha256=sha256,
        takes_hints=takes_hints,
    )
