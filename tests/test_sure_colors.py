"""Two answers from one network: the blend of the median and the sure colors, their loss, and a training run."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from models import architectures, train, train_trust
from models.losses import LOSSES, with_overshoot
from models.registry import load_keras_file
from models.sure_colors import SureColors, median_and_sure_loss
from tests.conftest import color_photo, photos_and_tiny_hint_unet, write_image


def blend(median, sure, lower=0.2, upper=0.6, gain=1.5, reach=None, faint=0.0) -> np.ndarray:
    pixels = [np.array(value, np.float32)[None, None, None] for value in (median, sure)]  # (1, 1, 1, 2) each
    if reach is not None:  # HintAttention's layout: a/b carried, then the share matched
        pixels.append(np.array([0.1, -0.1, reach], np.float32)[None, None, None])
    return keras.ops.convert_to_numpy(SureColors(lower, upper, gain, faint)(pixels))[0, 0, 0]


def test_the_median_where_the_sure_colors_keep_its_chroma_the_sure_colors_where_they_do_not():
    np.testing.assert_allclose(blend([0.4, 0.3], [0.32, 0.24]), [0.4, 0.3], atol=1e-6)  # keeps 0.8: sure
    np.testing.assert_allclose(blend([0.4, 0.3], [0.04, 0.03]), [0.06, 0.045], atol=1e-6)  # keeps 0.1: a guess
    np.testing.assert_allclose(blend([0.4, 0.3], [0.16, 0.12]), [0.32, 0.24], atol=1e-6)  # 0.4: halfway
    np.testing.assert_allclose(blend([0.0, 0.0], [0.02, -0.01]), [0.0, 0.0], atol=1e-6)  # a gray median stays


def test_where_the_known_colors_reach_the_median_is_taken():
    median, guess = [0.4, 0.3], [0.04, 0.03]  # the sure colors keep 0.1 of the median's chroma: a guess
    np.testing.assert_allclose(blend(median, guess, reach=0.0), blend(median, guess), atol=1e-6)
    np.testing.assert_allclose(blend(median, guess, reach=1.0), median, atol=1e-6)
    np.testing.assert_allclose(blend(median, guess, reach=0.5), [0.23, 0.1725], atol=1e-6)  # halfway to the median
    np.testing.assert_allclose(blend(median, [0.16, 0.12], reach=0.5), [0.36, 0.27], atol=1e-6)  # w 0.5 -> 0.75


def test_a_model_with_attention_blends_by_the_known_colors_reach_and_without_them_as_before():
    model = architectures.build_unet(64, pretrained=False, hints=True, hint_attention=True, sure_blend=(0.2, 0.6, 1.5))
    model.get_layer("hint_attention").no_match.assign(-5.0)  # untrained features match little otherwise
    names = ["ab", "sure_ab", "hint_reach", "sure_colors"]
    probe = keras.Model(model.inputs, [model.get_layer(name).output for name in names])
    rng = np.random.default_rng(2)
    lightness = rng.random((1, 64, 64, 1), np.float32)
    hints = np.zeros((1, 64, 64, 3), np.float32)
    hints[0, 10:14, 20:24] = (0.3, 0.2, 1.0)
    for known in (np.zeros_like(hints), hints):
        median, sure, reach, out = probe.predict_on_batch([lightness, known])
        assert reach.shape == (1, 64, 64, 3) and (reach[..., 2].max() > 0.5) == bool(known.any())
        without = keras.ops.convert_to_numpy(SureColors(0.2, 0.6, 1.5)([median, sure]))
        kept = np.linalg.norm(sure, axis=-1) / np.maximum(np.linalg.norm(median, axis=-1), 1e-3)
        weight = np.clip((kept - 0.2) / 0.4, 0, 1)
        weight = (weight + (1 - weight) * reach[..., 2])[..., None]
        np.testing.assert_allclose(out, sure * 1.5 + (median - sure * 1.5) * weight, atol=1e-5)
        if not known.any():
            np.testing.assert_allclose(out, without, atol=1e-6)


def test_a_soft_threshold_takes_faint_units_off_the_chroma_in_proportion_to_the_doubt():
    median, guess = [0.4, 0.3], [0.04, 0.03]  # the sure colors keep 0.1 of the median's chroma: w = 0
    np.testing.assert_allclose(blend(median, guess, faint=3.2), [0.04, 0.03], atol=1e-6)  # 9.6 -> 6.4 units
    np.testing.assert_allclose(blend(median, [0.004, 0.003], faint=2.0), [0.0, 0.0], atol=1e-7)  # 0.96: gray
    np.testing.assert_allclose(blend(median, [0.16, 0.12], faint=16.0), [0.27, 0.2025], atol=1e-6)  # w 0.5: 8 off
    np.testing.assert_allclose(blend(median, median, faint=16.0), median, atol=1e-6)  # sure: the median, whole
    np.testing.assert_allclose(blend(median, guess, reach=1.0, faint=16.0), median, atol=1e-6)  # a known color's
    assert SureColors.from_config(SureColors(0.2, 0.6, 1.5, 2.0).get_config()).faint == 2.0


@pytest.mark.parametrize(
    "numbers", [(0.5, 0.5, 1.0), (-0.1, 0.5, 1.0), (0.2, 1.5, 1.0), (0.2, 0.6, 0.0), (0.2, 0.6, 1.0, -1.0)]
)
def test_a_blend_without_a_ramp_or_a_gain_is_refused(numbers):
    with pytest.raises(ValueError, match="the blend needs"):
        SureColors(*numbers)


def test_the_loss_is_the_medians_plus_the_sure_colors_with_their_overshoot():
    rng = np.random.default_rng(0)
    truth = rng.uniform(-0.5, 0.5, (2, 4, 4, 2)).astype(np.float32)
    median, sure = (rng.uniform(-0.5, 0.5, truth.shape).astype(np.float32) for _ in range(2))
    both = float(median_and_sure_loss(LOSSES["mae"], 3.0)(truth, np.concatenate([median, sure], -1)))
    alone = float(LOSSES["mae"](truth, median)) + float(with_overshoot(LOSSES["mae"], 3.0)(truth, sure))
    assert both == pytest.approx(alone, rel=1e-5)


@pytest.fixture(scope="module")
def grown(tmp_path_factory):
    """A tiny hint-taking unet and the same grown a sure decoder, untrained (--epochs 0): (base, run folder)."""
    photos, base = photos_and_tiny_hint_unet(tmp_path_factory.mktemp("sure"), [f"p{index}.jpg" for index in range(4)])
    run = photos.parent / "run"
    argv = ["--data", str(photos), "--arch", "unet", "--hints", "--sure_colors", "3", "--init_from", str(base),
            "--size", "64", "--epochs", "0", "--out", str(run), "--name", "sure"]  # fmt: skip
    assert train.main(argv) == 0
    return base, run


def test_a_grown_sure_decoder_starts_as_the_median_so_the_model_starts_as_it_was(grown):
    base_path, run = grown
    base, model = load_keras_file(str(base_path)), load_keras_file(str(run / "sure.keras"))
    rng = np.random.default_rng(1)
    inputs = [rng.random((2, 64, 64, 1), np.float32), np.zeros((2, 64, 64, 3), np.float32)]
    np.testing.assert_allclose(model.predict_on_batch(inputs), base.predict_on_batch(inputs), atol=1e-6)
    sure = model.get_layer("sure_colors")
    assert (sure.lower, sure.upper, sure.gain) == tuple(train.SURE_BLEND)
    np.testing.assert_array_equal(
        model.get_layer("sure_decode0a_conv").get_weights()[0], base.get_layer("decode0a_conv").get_weights()[0]
    )
    card = json.loads((run / "sure.json").read_text())
    assert card["sure_colors"] == 3.0 and card["sure_blend"] == list(train.SURE_BLEND)
    assert card["loss"] == "mae on the median + (mae + 3.0 * chroma beyond the truth's) on the sure colors"


def test_training_gives_each_decoder_its_own_loss_and_the_encoder_stays_frozen(grown):
    _, run = grown
    argv = ["--data", "unused", "--arch", "unet", "--hints", "--hint_attention", "--sure_colors", "2",
            "--sure_blend", "0.1", "0.5", "1.2", "2", "--freeze_encoder", "--init_from", str(run / "sure.keras"),
            "--out", "unused"]  # fmt: skip
    model, generator = train.build_trainable(train.parse_args(argv), None)
    trainable = {layer.name for layer in generator.layers if layer.trainable}
    assert {"decode_full_conv", "ab", "sure_decode_full_conv", "sure_ab", "sure_hint_attention"} <= trainable
    assert "mobilenet_v2_encoder" not in trainable
    assert model.output_shape[-1] == 4 and model.loss.__name__ == "median_and_sure"
    sure = generator.get_layer("sure_colors")
    assert (sure.lower, sure.upper, sure.gain, sure.faint) == (0.1, 0.5, 1.2, 2.0)


@pytest.mark.parametrize(
    "extra",
    [
        ["--arch", "autoencoder"],
        ["--certainty"],
        ["--overshoot", "1"],
        ["--hints", "--no_worse", "1"],
        ["--rebalance_mix", "0.9"],
    ],
)
def test_sure_colors_are_refused_beside_another_loss_or_head(extra, capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "x", "--out", "y", "--init_from", "m", "--sure_colors", "3", *extra])
    assert "--sure_colors trains two unet decoders by --loss" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sure_colors", "0"], "--sure_colors WEIGHT must be above 0, not 0"),
        (["--sure_blend", "0.1", "0.5", "1"], "--sure_blend blends the two answers of --sure_colors: give it"),
        (["--sure_colors", "3", "--sure_blend", "0.6", "0.5", "1"], "--sure_blend: the blend needs 0 <= lower < upper"),
        (["--sure_colors", "3", "--sure_blend", "0.1", "0.5"], "--sure_blend takes LOWER UPPER GAIN and an optional"),
        (["--sure_colors", "3", "--sure_blend", "0.1", "0.5", "1", "2", "3"], "--sure_blend takes LOWER UPPER GAIN"),
    ],
)
def test_a_weight_or_blend_that_would_do_nothing_is_refused(extra, message, capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--data", "x", "--out", "y", *extra])
    assert message in capsys.readouterr().err


def test_no_trust_head_is_grown_on_a_model_that_already_knows_where_it_is_sure(grown, tmp_path):
    _, run = grown
    for index, name in enumerate(("harbor.jpg", "market.jpg")):
        write_image(tmp_path / "photos" / name, color_photo(60, 80, seed=index))
    photos = str(tmp_path / "photos")
    with pytest.raises(SystemExit, match="already decides where it is sure"):
        train_trust.main(["--init_from", str(run / "sure.keras"), "--data", photos, "--val", photos,
                          "--out", str(tmp_path / "trust")])  # fmt: skip
    assert not (tmp_path / "trust" / "fold0").exists()
