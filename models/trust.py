"""How far to trust each automatic color, learned from colors predicted for photos the model never saw.

On the photos it was trained on, an L1 model's colors are close, so any doubt learned there
(models.certainty) stays small where it matters. On new scenes much of the color is a guess,
mostly the cream of old prints over walls and shirts. The honest errors come from cross-fitting
(models.train_trust): the training photos are split into folds by source, a model is trained on
the other folds with the same frozen encoder, and its colors for the fold it did not see show
where colors of that kind go wrong. A small head over the encoder's features (which every fold
model and the shipped model share) and the predicted a/b learns from them which share of each
pixel's chroma to keep, between 0 and 1. Known colors are the archivist's, so a scan that has
any keeps the model's colors as they are.
"""

from __future__ import annotations

import keras
from keras import layers, ops

TRUST_WIDTH = 16  # features of the head's widest layer: a few hundred photos of honest errors teach little more
TRUST_STRIDE = 8  # the head's output grid, bilinearly upsampled to the input's
TRUST_START = 2.0  # the logit it starts from: sigmoid(2) keeps 88 % of every color, where it still learns fast
ENCODER_LEVELS = (2, 3, 4)  # the encoder outputs it reads: strides 8, 16 and 32


def trust_head(stride8, stride16, stride32, lightness, ab):
    """The share of chroma to keep at each stride-8 cell, from the encoder's features (its outputs
    ENCODER_LEVELS) and the a/b there."""
    x = layers.Conv2D(TRUST_WIDTH, 1, activation="relu", name="trust_reduce32")(stride32)
    x = layers.UpSampling2D(interpolation="bilinear", name="trust_up32")(x)
    x = layers.Concatenate(name="trust_cat16")([x, stride16])
    x = layers.Conv2D(TRUST_WIDTH * 3 // 4, 3, padding="same", activation="relu", name="trust_conv16")(x)
    x = layers.UpSampling2D(interpolation="bilinear", name="trust_up16")(x)
    cell_ab = layers.AveragePooling2D(TRUST_STRIDE, name="trust_pool_ab")(ab)
    cell_lightness = layers.AveragePooling2D(TRUST_STRIDE, name="trust_pool_lightness")(lightness)
    cell_ab = layers.Rescaling(4.0, name="trust_ab_scale")(cell_ab)  # a/b / 32: about unit size, as the rest
    x = layers.Concatenate(name="trust_cat8")([x, stride8, cell_ab, cell_lightness])
    x = layers.Conv2D(TRUST_WIDTH, 3, padding="same", activation="relu", name="trust_conv8")(x)
    return layers.Conv2D(
        1,
        1,
        activation="sigmoid",
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant(TRUST_START),
        dtype="float32",
        name="trust_share",
    )(x)


@keras.saving.register_keras_serializable(package="revivacolor")
class TrustedColors(layers.Layer):
    """a/b times the share of its chroma to keep, [a/b, share] or [a/b, share, hints]: with hints, a
    scan that has any known color keeps all of its colors (the known ones spread by the model)."""

    def call(self, inputs):
        ab, share = inputs[0], inputs[1]
        if len(inputs) == 3:
            known = ops.max(inputs[2][..., -1:], axis=(1, 2, 3), keepdims=True)  # 1 where a scan has a known color
            share = share + (1.0 - share) * known
        return ab * share

    def compute_output_shape(self, input_shape):
        return input_shape[0]


def trusted_colors(ab, share, hints=None):
    """The output a/b: `share` (on the head's grid) upsampled to a/b's and applied by `TrustedColors`."""
    share = layers.UpSampling2D(TRUST_STRIDE, interpolation="bilinear", dtype="float32", name="trust_up_full")(share)
    return TrustedColors(dtype="float32", name="trusted_ab")([ab, share] if hints is None else [ab, share, hints])


CUSTOM_OBJECTS = {"revivacolor>TrustedColors": TrustedColors}
