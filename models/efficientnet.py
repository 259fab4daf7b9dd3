"""EfficientNet-Lite2 rebuilt in Keras, so its ImageNet weights can serve as a pretrained U-Net encoder.

A stronger candidate than MobileNetV2 (about 77.6 % ImageNet top-1 against 71.9 %, 6.1 M parameters)
with the same ingredients: inverted residuals, ReLU6, no squeeze-excitation (the "Lite" variant
dropped it). The weights are a torch state dict in the ``efficientnet_pytorch`` layout
(``_blocks.3._depthwise_conv.weight``), ported from Google's TensorFlow checkpoint, so the graph
follows TensorFlow's conventions rather than torchvision's: ``padding="same"`` (the extra pixel
of an even-sized stride-2 convolution goes bottom/right), BatchNorm epsilon 1e-3, and input
scaled to [-1, 1]. Layers are named after their torch keys without the underscores' nesting
(``_blocks.3._depthwise_conv`` -> ``blocks_3_depthwise_conv``); ``_torch_key_prefix`` maps back.
Only built-in layers are used, so saved models load with ``safe_mode`` on.
"""

from __future__ import annotations

import re

import keras
import numpy as np
from keras import layers

from models.mobilenet import load_torchvision_weights
from models.torch_weights import efficientnet_lite2_weights_path, read_torch_state_dict

# Lite2's stages (width 1.1, depth 1.2, stem and head left unscaled as Lite does): kernel, first
# stride, expansion, output channels, repeats. They give blocks 0..20, as the state dict holds them.
LITE2_STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 3),
    (5, 2, 6, 48, 3),
    (3, 2, 6, 88, 4),
    (5, 1, 6, 120, 4),
    (5, 2, 6, 208, 5),
    (3, 1, 6, 352, 1),
)
# The last block at each resolution: blocks 0, 3, 6, 14, 20 end at strides 2, 4, 8, 16, 32.
ENCODER_SKIP_BLOCKS = (0, 3, 6, 14, 20)
# The network's input is (x / 255 - 0.5) / 0.5: for RGB in [0, 1], mean 0.5 and std 0.5 per channel.
EFFICIENTNET_LITE_MEAN = np.array([0.5, 0.5, 0.5], dtype=np.float32)
EFFICIENTNET_LITE_STD = np.array([0.5, 0.5, 0.5], dtype=np.float32)
_STEM_CHANNELS = 32
_HEAD_CHANNELS = 1280
_HEAD_DROPOUT = 0.3


def _conv_bn(x, filters: int | None, kernel: int, stride: int, conv_name: str, bn_name: str, relu_name: str | None):
    """Convolution without bias (depthwise when filters is None), BatchNorm, then ReLU6 unless relu_name is None."""
    if filters is None:
        x = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=conv_name)(x)
    else:
        x = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=conv_name)(x)
    x = layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name=bn_name)(x)
    return x if relu_name is None else layers.ReLU(6.0, name=relu_name)(x)


def _mbconv(x, kernel: int, stride: int, expansion: int, filters: int, index: int):
    """efficientnet_pytorch's MBConvBlock without squeeze-excitation: 1x1 expansion, depthwise, linear 1x1."""
    prefix = f"blocks_{index}"
    in_channels = x.shape[-1]
    hidden_channels = in_channels * expansion
    y = x
    if expansion != 1:
        y = _conv_bn(y, hidden_channels, 1, 1, f"{prefix}_expand_conv", f"{prefix}_bn0", f"{prefix}_expand_relu")
    y = _conv_bn(y, None, kernel, stride, f"{prefix}_depthwise_conv", f"{prefix}_bn1", f"{prefix}_depthwise_relu")
    y = _conv_bn(y, filters, 1, 1, f"{prefix}_project_conv", f"{prefix}_bn2", None)
    if stride == 1 and in_channels == filters:
        y = layers.Add(name=f"{prefix}_add")([x, y])
    return y


def _lite2_blocks(inputs) -> list:
    """The output of each of the 21 blocks, in order (the stem comes before block 0)."""
    x = _conv_bn(inputs, _STEM_CHANNELS, 3, 2, "conv_stem", "bn0", "stem_relu")
    outputs = []
    for kernel, first_stride, expansion, filters, repeats in LITE2_STAGES:
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            x = _mbconv(x, kernel, stride, expansion, filters, len(outputs))
            outputs.append(x)
    return outputs


def _torch_key_prefix(layer_name: str) -> str:
    """``blocks_3_depthwise_conv`` -> ``_blocks.3._depthwise_conv``, ``conv_stem`` -> ``_conv_stem``."""
    return "_" + re.sub(r"^blocks_(\d+)_", r"blocks.\1._", layer_name)


def _load_lite2_weights(model: keras.Model, with_head: bool) -> None:
    state_dict = read_torch_state_dict(efficientnet_lite2_weights_path())
    if not with_head:
        head = ("_conv_head.", "_bn1.", "_fc.")
        state_dict = {key: value for key, value in state_dict.items() if not key.startswith(head)}
    load_torchvision_weights(model, state_dict, key_prefix=_torch_key_prefix)


def efficientnet_lite2_classifier(input_shape: tuple = (260, 260, 3)) -> keras.Model:
    """The whole ImageNet-pretrained network, 1000 logits: checks the port against real photos.

    Takes RGB normalized with ``EFFICIENTNET_LITE_MEAN``/``STD`` (260 x 260 is its training size,
    any size works). Needs the weights package, see ``efficientnet_lite2_weights_path``.
    """
    inputs = keras.Input(shape=input_shape, name="lite_rgb")
    x = _lite2_blocks(inputs)[-1]
    x = _conv_bn(x, _HEAD_CHANNELS, 1, 1, "conv_head", "bn1", "head_relu")
    x = layers.GlobalAveragePooling2D(name="avgpool")(x)
    x = layers.Dropout(_HEAD_DROPOUT, name="dropout")(x)
    x = layers.Dense(1000, name="fc")(x)
    model = keras.Model(inputs, x, name="efficientnet_lite2")
    _load_lite2_weights(model, with_head=True)
    return model


def efficientnet_lite2_encoder(input_shape: tuple = (224, 224, 3)) -> keras.Model:
    """ImageNet-pretrained EfficientNet-Lite2 without its head, giving the skip connections a U-Net decoder needs.

    Takes RGB normalized with ``EFFICIENTNET_LITE_MEAN``/``STD`` (i.e. scaled to [-1, 1]); for sides
    divisible by 32 the five outputs are, in order: stride 2 (16 channels, ``blocks_0_bn2``), stride 4
    (24, ``blocks_3_add``), stride 8 (48, ``blocks_6_add``), stride 16 (120, ``blocks_14_add``) and
    stride 32 (352, ``blocks_20_bn2``). Needs the weights package, see ``efficientnet_lite2_weights_path``.
    """
    model = efficientnet_lite2_encoder_untrained(input_shape)
    _load_lite2_weights(model, with_head=False)
    return model


def efficientnet_lite2_encoder_untrained(input_shape: tuple = (224, 224, 3)) -> keras.Model:
    """The encoder's graph with fresh weights: for tests, and to rebuild a model whose weights come from a file."""
    inputs = keras.Input(shape=input_shape, name="lite_rgb")
    blocks = _lite2_blocks(inputs)
    return keras.Model(inputs, [blocks[i] for i in ENCODER_SKIP_BLOCKS], name="efficientnet_lite2_encoder")
