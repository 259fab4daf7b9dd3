"""Model resolution and where files go."""

import json
import shutil

import pytest

from models.registry import bundled_models, resolve_model
from pipeline.scans import colliding_names, input_base, input_pattern, output_name, relative_path


def test_default_model_is_bundled_with_its_checksum():
    models = bundled_models()
    assert "default" in models
    default = models["default"]
    from models.registry import file_sha256

    assert file_sha256(default.path) == default.sha256
    assert default.input_size >= 128 and default.version


def test_model_path_with_card(tiny_model):
    spec = resolve_model(str(tiny_model))
    assert (spec.name, spec.version, spec.input_size) == ("tiny", "test", 32)


def test_model_path_without_card_reads_the_input_size_from_the_file(tiny_model, tmp_path):
    bare = tmp_path / "bare.keras"
    shutil.copy(tiny_model, bare)
    spec = resolve_model(str(bare))
    assert spec.input_size == 32 and spec.version.startswith("sha256:") and spec.name == "bare"


def test_model_file_with_a_wrong_checksum_is_refused(tiny_model, tmp_path):
    from pipeline.inference import ColorizerModelHandler

    copy = tmp_path / "tiny.keras"
    shutil.copy(tiny_model, copy)
    card = json.loads(tiny_model.with_suffix(".json").read_text())
    copy.with_suffix(".json").write_text(json.dumps(dict(card, sha256="0" * 64)))
    with pytest.raises(ValueError, match="does not match the sha256"):
        ColorizerModelHandler(resolve_model(str(copy))).load_model()


@pytest.mark.parametrize("name", ["no-such-model", "missing/file.keras"])
def test_unknown_models_are_clear_errors(name):
    with pytest.raises((ValueError, FileNotFoundError), match="unknown model|not found"):
        resolve_model(name)


@pytest.mark.parametrize(
    "location, pattern, base",
    [
        ("/data/scans", "/data/scans/**", "/data/scans/"),
        ("gs://bucket/scans/", "gs://bucket/scans/**", "gs://bucket/scans/"),
        ("/data/scans/*.tif", "/data/scans/*.tif", "/data/scans/"),
        ("/data/scans/one.tif", "/data/scans/one.tif", "/data/scans/"),
    ],
)
def test_input_locations(location, pattern, base, monkeypatch):
    monkeypatch.setattr("pipeline.scans._is_directory", lambda path: path == "/data/scans")
    assert input_pattern(location) == pattern
    assert input_base(location) == base


def test_relative_paths_never_leave_the_output():
    assert relative_path("/in/a/b.jpg", "/in/") == "a/b.jpg"
    assert relative_path("/elsewhere/../x.jpg", "/in/") == "x.jpg"
    assert relative_path("/in/../../etc/x.jpg", "/in/") == "etc/x.jpg"
    assert output_name("a/b.c.jpg", "png") == "a/b.c.png"
    assert output_name("a/scan.tif", None) == "a/scan.tif" and output_name("a/scan.tif", "tiff") == "a/scan.tif"
    assert output_name("a/scan.jpeg", "png") == "a/scan.png" and output_name("a.gif", None) == "a.png"
    assert output_name("noext", "jpg") == "noext.jpg" and output_name("dir.v2/noext", None) == "dir.v2/noext.png"


def test_inputs_sharing_an_output_name_each_keep_their_whole_name():
    assert colliding_names(["a.tif", "a.tiff", "b.png"], None) == {}
    assert colliding_names(["a.tif", "a.tiff", "b.png"], "png") == {"a.tif": "a.tif.png", "a.tiff": "a.tiff.png"}
    # a.png and a.jpg clash; then the input named a.jpg.png would clash with a.jpg's new name: it moves too
    assert colliding_names(["a.jpg.png", "a.png", "a.jpg"], "png") == {
        "a.png": "a.png.png",
        "a.jpg": "a.jpg.png",
        "a.jpg.png": "a.jpg.png.png",
    }
    assert colliding_names(["noext", "noext.png"], None) == {"noext": "noext.png", "noext.png": "noext.png.png"}
