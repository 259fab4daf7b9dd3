"""Keras builders for the colorization networks.

Every network maps L / 100, shape (size, size, 1), to a/b / 128, shape
(size, size, 2), through a tanh, so any of them plugs into the same pipeline.
Only built-in Keras layers are used: the saved files load with safe_mode on.
"""

from __future__ import annotations

import keras
from keras import layers


def conv_block(x, filters: int, name: str):
    """Two 3x3 convolutions with BatchNorm and ReLU."""
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def build_unet(size: int | None = 256, filters: tuple[int, ...] = (16, 32, 64, 128, 256)) -> keras.Model:
    """A compact U-Net: each level halves the resolution, skip connections keep edges sharp.

    size=None builds a model that takes any size divisible by 16 (used for training on crops).
    """
    inputs = keras.Input(shape=(size, size, 1), name="lightness")
    x = inputs
    skips = []
    for level, width in enumerate(filters[:-1]):
        x = conv_block(x, width, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(name=f"pool{level}")(x)
    x = conv_block(x, filters[-1], "bottleneck")
    for level, width in reversed(list(enumerate(filters[:-1]))):
        x = layers.UpSampling2D(interpolation="bilinear", name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = conv_block(x, width, f"decode{level}")
    outputs = layers.Conv2D(2, 1, activation="tanh", dtype="float32", name="ab")(x)
    return keras.Model(inputs, outputs, name="unet")


ARCHITECTURES = {"unet": build_unet}
