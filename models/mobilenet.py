"""torchvision's MobileNetV2 rebuilt in Keras, so its ImageNet weights can serve as a pretrained encoder.

The graph mirrors ``torchvision.models.mobilenet_v2`` (width 1.0) layer for layer, because the
converted weights only reproduce torch's outputs if every padding and epsilon matches:
stride-2 convolutions pad one pixel on every side (Keras' ``padding="same"`` pads bottom/right
only on even sizes), BatchNorm uses epsilon 1e-5. Each layer is named after its torch key
prefix with dots turned into underscores (``features.3.conv.1.0`` -> ``features_3_conv_1_0``),
which is how ``load_torchvision_weights`` finds its tensors. Only built-in layers are used,
so saved models load with ``safe_mode`` on.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import layers

from models.torch_weights import mobilenet_v2_weights_path, read_torch_state_dict

# torchvision's inverted residual settings: expansion t, output channels c, repeats n, first stride s.
INVERTED_RESIDUAL_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
# The last block at each resolution: features.1, .3, .6, .13, .18 end at strides 2, 4, 8, 16, 32.
ENCODER_SKIP_BLOCKS = (1, 3, 6, 13, 18)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _batch_norm(x, name: str):
    # torch's momentum 0.1 weights the new batch; Keras' 0.9 weights the running value: the same update.
    return layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=name)(x)


def _conv_bn_relu6(x, filters: int, kernel: int, stride: int, prefix: str, depthwise: bool = False):
    """torchvision's Conv2dNormActivation: conv (``prefix_0``), BatchNorm (``prefix_1``), ReLU6 (``prefix_2``)."""
    if stride == 2:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{prefix}_pad")(x)
    padding = "valid" if stride == 2 or kernel == 1 else "same"
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, stride, padding=padding, use_bias=False, name=f"{prefix}_0")(x)
    else:
        x = layers.Conv2D(filters, kernel, stride, padding=padding, use_bias=False, name=f"{prefix}_0")(x)
    x = _batch_norm(x, f"{prefix}_1")
    return layers.ReLU(6.0, name=f"{prefix}_2")(x)


def _inverted_residual(x, expansion: int, filters: int, stride: int, index: int):
    """torchvision's InvertedResidual: optional 1x1 expansion, 3x3 depthwise, linear 1x1 projection."""
    prefix = f"features_{index}_conv"
    in_channels = x.shape[-1]
    hidden_channels = in_channels * expansion
    y = x
    step = 0
    if expansion != 1:
        y = _conv_bn_relu6(y, hidden_channels, 1, 1, f"{prefix}_{step}")
        step += 1
    y = _conv_bn_relu6(y, hidden_channels, 3, stride, f"{prefix}_{step}", depthwise=True)
    y = layers.Conv2D(filters, 1, use_bias=False, name=f"{prefix}_{step + 1}")(y)
    y = _batch_norm(y, f"{prefix}_{step + 2}")
    if stride == 1 and in_channels == filters:
        y = layers.Add(name=f"features_{index}_add")([x, y])
    return y


def _mobilenet_v2_features(inputs) -> list:
    """The output of each of torchvision's ``features.0`` ... ``features.18``, in order."""
    outputs = [_conv_bn_relu6(inputs, 32, 3, 2, "features_0")]
    for expansion, filters, repeats, first_stride in INVERTED_RESIDUAL_SETTINGS:
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            outputs.append(_inverted_residual(outputs[-1], expansion, filters, stride, len(outputs)))
    outputs.append(_conv_bn_relu6(outputs[-1], 1280, 1, 1, f"features_{len(outputs)}"))
    return outputs


def build_mobilenet_v2(input_shape: tuple = (224, 224, 3), include_top: bool = False) -> keras.Model:
    """Untrained MobileNetV2; takes ``imagenet_preprocess``-ed RGB, gives 1280 channels at stride 32.

    include_top adds torchvision's classifier (dropout, then ``classifier_1``): 1000 ImageNet logits.
    """
    inputs = keras.Input(shape=input_shape, name="imagenet_rgb")
    x = _mobilenet_v2_features(inputs)[-1]
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avgpool")(x)
        x = layers.Dropout(0.2, name="classifier_0")(x)
        x = layers.Dense(1000, name="classifier_1")(x)
    return keras.Model(inputs, x, name="mobilenet_v2")


def _torchvision_key_prefix(layer_name: str) -> str:
    return layer_name.replace("_", ".")


def load_torchvision_weights(
    model: keras.Model,
    state_dict: dict[str, np.ndarray],
    key_prefix: Callable[[str], str] = _torchvision_key_prefix,
) -> None:
    """Copy a torch state dict into a Keras model, refusing any partial match.

    key_prefix maps a layer name to its tensors' key prefix (by default this module's naming:
    ``features_3_conv_1_0`` -> ``features.3.conv.1.0``). Every Keras weight must be set and every
    torch tensor used (``num_batches_tracked`` aside, it only counts training steps), so a renamed
    layer or a changed architecture fails here, not later.
    """
    unused = {key for key in state_dict if not key.endswith(".num_batches_tracked")}
    for layer in model.layers:
        if not layer.weights:
            continue
        prefix = key_prefix(layer.name)
        if isinstance(layer, layers.DepthwiseConv2D):
            suffixes, convert = ["weight"], lambda w: [w[0].transpose(2, 3, 0, 1)]  # (C,1,kh,kw) -> (kh,kw,C,1)
        elif isinstance(layer, layers.Conv2D):
            suffixes, convert = ["weight"], lambda w: [w[0].transpose(2, 3, 1, 0)]  # (out,in,kh,kw) -> (kh,kw,in,out)
        elif isinstance(layer, layers.BatchNormalization):
            suffixes, convert = ["weight", "bias", "running_mean", "running_var"], list
        elif isinstance(layer, layers.Dense):
            suffixes, convert = ["weight", "bias"], lambda w: [w[0].T, w[1]]  # (out,in) -> (in,out)
        else:
            raise TypeError(f"no torch conversion for layer {layer.name} ({type(layer).__name__})")
        keys = [f"{prefix}.{suffix}" for suffix in suffixes]
        missing = [key for key in keys if key not in state_dict]
        if missing:
            raise KeyError(f"layer {layer.name} needs {missing}, which the state dict lacks")
        layer.set_weights(convert([state_dict[key] for key in keys]))  # checks every shape
        unused.difference_update(keys)
    if unused:
        raise ValueError(f"{len(unused)} torch tensors match no Keras layer: {sorted(unused)[:10]}")


def imagenet_preprocess(rgb: np.ndarray) -> np.ndarray:
    """torchvision's input normalization; takes RGB (not OpenCV's BGR) as uint8 or floats in [0, 1]."""
    rgb = np.asarray(rgb)
    scaled = rgb.astype(np.float32) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float32)
    return (scaled - IMAGENET_MEAN) / IMAGENET_STD


def mobilenet_v2_encoder(input_shape: tuple = (224, 224, 3)) -> keras.Model:
    """ImageNet-pretrained MobileNetV2 without its head, giving the skip connections a U-Net decoder needs.

    Takes ``imagenet_preprocess``-ed RGB; for sides divisible by 32 the five outputs are, in order:
    stride 2 (16 channels, after ``features.1``), stride 4 (24, ``features.3``), stride 8 (32,
    ``features.6``), stride 16 (96, ``features.13``) and stride 32 (1280, ``features.18``).
    Needs the weights package, see ``mobilenet_v2_weights_path``.
    """
    model = mobilenet_v2_encoder_untrained(input_shape)
    state_dict = read_torch_state_dict(mobilenet_v2_weights_path())
    load_torchvision_weights(model, {k: v for k, v in state_dict.items() if not k.startswith("classifier.")})
    return model


def mobilenet_v2_encoder_untrained(input_shape: tuple = (224, 224, 3)) -> keras.Model:
    """The encoder's graph with fresh weights: for tests, and to rebuild a model whose weights come from a file."""
    inputs = keras.Input(shape=input_shape, name="imagenet_rgb")
    features = _mobilenet_v2_features(inputs)
    return keras.Model(inputs, [features[i] for i in ENCODER_SKIP_BLOCKS], name="mobilenet_v2_encoder")
