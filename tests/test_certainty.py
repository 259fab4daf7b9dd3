"""A model that knows how sure it is: the certainty head, its loss, the chroma that follows it, and its fit."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import pipeline
from models import train
from models.certainty import ConfidentChroma, laplace_nll
from models.registry import file_sha256, load_keras_file
from pipeline.records import read_metadata
from tests.conftest import color_photo, photos_and_tiny_hint_unet, write_image
from tools import fit_certainty


def test_the_likelihood_is_lowest_when_the_doubt_is_the_mean_error():
    rng = np.random.default_rng(0)
    truth = rng.uniform(-0.5, 0.5, (2, 8, 8, 2)).astype(np.float32)
    median = truth + rng.laplace(0, 0.05, truth.shape).astype(np.float32)
    mean_error = np.abs(truth - median).sum(-1).mean() / 2  # per channel: s of a and b
    losses = {}
    for factor in (0.5, 1.0, 2.0):
        log_scale = np.full((2, 8, 8, 1), np.log(mean_error * factor), np.float32)
        losses[factor] = float(laplace_nll(truth, np.concatenate([median, log_scale], -1)))
    assert losses[1.0] < losses[0.5] and losses[1.0] < losses[2.0]


def test_confident_chroma_keeps_hue_fades_guesses_and_strengthens_what_it_is_sure_of():
    ab = np.array([[[[0.3, -0.4], [0.03, -0.04]]]], np.float32)  # chroma 0.5 and 0.05, one hue
    log_scale = np.full((1, 1, 2, 1), np.log(0.05), np.float32)  # the same doubt for both: ratios 10 and 1
    out = np.asarray(keras.ops.convert_to_numpy(ConfidentChroma(3.0, 0.2, 1.5)([ab, log_scale])))
    gains = np.hypot(*out[0, 0].T) / np.hypot(*ab[0, 0].T)
    assert gains[0] == pytest.approx(1.5, abs=0.02) and gains[1] < 0.05
    np.testing.assert_allclose(out[0, 0, :, 0] * ab[0, 0, :, 1], out[0, 0, :, 1] * ab[0, 0, :, 0], atol=1e-7)


@pytest.fixture(scope="module")
def certainty_model(tmp_path_factory):
    """A tiny hint-taking unet, and the certainty model trained on it for one epoch: (base, run folder)."""
    photos, base = photos_and_tiny_hint_unet(
        tmp_path_factory.mktemp("certainty"), [f"p{index}.jpg" for index in range(4)]
    )
    folder = photos.parent
    argv = ["--data", str(photos), "--arch", "unet", "--hints", "--certainty", "--init_from", str(base),
            "--size", "64", "--crop", "64", "--batch_size", "2", "--epochs", "1", "--out", str(folder / "run"),
            "--name", "sure"]  # fmt: skip
    assert train.main(argv) == 0
    return base, folder / "run"


def test_only_the_certainty_head_learns_and_the_colors_stay_those_it_grew_from(certainty_model):
    base_path, run = certainty_model
    base, trained = load_keras_file(str(base_path)), load_keras_file(str(run / "sure.keras"))
    card = json.loads((run / "sure.json").read_text())
    assert card["certainty"] is True and card["epochs_run"] == 1 and card["loss"].startswith("Laplace")
    heads = {layer.name for layer in trained.layers if layer.name.startswith("certainty")}
    assert heads and "confident_ab" in {layer.name for layer in trained.layers}
    for layer in base.layers:
        for kept, started in zip(trained.get_layer(layer.name).get_weights(), layer.get_weights(), strict=True):
            np.testing.assert_array_equal(kept, started)
    rng = np.random.default_rng(1)
    inputs = [rng.random((2, 64, 64, 1), np.float32), np.zeros((2, 64, 64, 3), np.float32)]
    median = keras.Model(trained.inputs, trained.get_layer("ab").output).predict_on_batch(inputs)
    np.testing.assert_allclose(median, base.predict_on_batch(inputs), atol=1e-6)


def test_with_train_colors_the_colors_learn_beside_the_doubt_and_the_encoder_stays_frozen(certainty_model):
    _, run = certainty_model
    argv = ["--data", "unused", "--arch", "unet", "--hints", "--certainty", "--train_colors", "--freeze_encoder",
            "--init_from", str(run / "sure.keras"), "--size", "64", "--out", "unused"]  # fmt: skip
    model, generator = train.build_trainable(train.parse_args(argv), None)
    trainable = {layer.name for layer in generator.layers if layer.trainable}
    assert {"decode_full_conv", "hints_full_conv", "ab", "certainty0", "certainty_log_scale"} <= trainable
    assert "mobilenet_v2_encoder" not in trainable
    assert model.output_shape[-1] == 3 and model.loss.__name__ == "colors_and_doubt"
    with pytest.raises(SystemExit):  # --train_colors without --certainty is refused
        train.parse_args(["--data", "x", "--arch", "unet", "--train_colors", "--out", "y"])


def test_fitting_sets_the_curve_and_the_pipeline_colors_with_it(certainty_model, tmp_path):
    _, run = certainty_model
    for index in range(2):
        write_image(tmp_path / "val" / f"p{index}.png", color_photo(48, 64, seed=index))
    out = tmp_path / "fitted" / "sure.keras"
    argv = ["--model", str(run / "sure.keras"), "--data", str(tmp_path / "val"), "--out", str(out)]
    assert fit_certainty.main(argv + ["--curve", "0.5", "0.7", "1.5"]) == 0
    fitted = load_keras_file(str(out))
    assert fitted.get_layer("confident_ab").curve() == pytest.approx(
        {"threshold": 0.5, "softness": 0.7, "max_gain": 1.5}
    )
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["sha256"] == file_sha256(str(out)) and card["certainty_curve"]["max_gain"] == 1.5
    assert f"{tmp_path / 'val'} delta_e2000" in card["certainty_fit"]["scores"]

    pipeline.run(["--input", str(tmp_path / "val"), "--output", str(tmp_path / "colored"), "--model", str(out),
                  "--evaluate"])  # fmt: skip
    rows = read_metadata(str(tmp_path / "colored")).to_pylist()
    assert [row["status"] for row in rows] == ["ok", "ok"] and all(row["model"] == "sure" for row in rows)


def test_the_chosen_curve_paints_the_least_cast_among_the_best_that_are_no_worse_elsewhere():
    def row(curve, first, second, cast):
        scores = {"a delta_e2000": first, "b delta_e2000": second, "a cast": cast, "b cast": cast}
        return {**dict(zip(fit_certainty.CURVE_KEYS, curve, strict=True)), **scores}

    table = [
        row(fit_certainty.PASS_THROUGH, 9.50, 8.5, 6.0),
        row((1, 1, 1), 9.53, 8.4, 5.0),  # as good within the seeds' spread, less cast: chosen
        row((2, 1, 1), 9.53, 8.6, 4.0),  # worse on the second folder
        row((3, 1, 1), 9.70, 8.0, 3.0),  # clearly worse on the first
    ]
    assert fit_certainty.choose(table, ["a", "b"]) is table[1]
