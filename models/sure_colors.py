"""Two answers from one network: the median color of each pixel, and the color it is sure of.

An L1 decoder predicts each pixel's median color. Where the photos it learned from agree (skin,
sky, grass) that median is right; where they spread (a wall or a shirt of any color) it is a
faint cream guess that casts over every neutral surface of a whole scene. A second decoder on
the same encoder learns a lower quantile of chroma (`models.losses.with_overshoot` with a large
weight): nearly the median's color where the colors agree, little where they spread. How much
chroma the sure answer keeps of the median's is then the model's own measure of certainty, and
`SureColors` blends by it: the median where the sure answer keeps most of it, the sure answer
(times a gain) where it keeps little. What the sure answer leaves faint there (a few units of
chroma) is more often a wrong tint than a color on photos nobody tuned to, so a soft threshold can
take a few units off its chroma, in proportion to the doubt (`faint`: soft thresholding, as in
wavelet shrinkage, Donoho 1995). Known colors settle the doubt: the median follows them (that is
what it learned), while the sure answer keeps only part of their chroma. So where `HintAttention`
says the known colors reach (its matched share), the blend takes the median, and no threshold.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

from models.losses import with_overshoot
from transforms.lab import AB_SCALE

Tensor = Any  # a tensor of the active Keras backend, or a NumPy array

SURE_PREFIX = "sure_"  # the second decoder's layers: its own copy of every decoder layer's name
# lower, upper, gain chosen for --sure_colors 3 (unet v15) on val/scenes and val/people; v16 and v17
# (--sure_colors 6) have their own, 0.15 0.55 2.5, and v17 a faint threshold of 3 (docs/models.md)
SURE_BLEND = (0.15, 0.55, 1.3)
CHROMA_FLOOR = 1e-3  # a/b / 128 units: the median's chroma in the share kept never falls below it


def check_blend(lower: float, upper: float, gain: float, faint: float = 0.0) -> None:
    """Raise ValueError unless the blend has a ramp inside [0, 1], a positive gain and a threshold of 0 or more."""
    if not 0.0 <= lower < upper <= 1.0 or gain <= 0 or faint < 0:
        raise ValueError(
            "the blend needs 0 <= lower < upper <= 1, gain > 0 and faint >= 0, "
            f"not {lower:g} {upper:g} {gain:g} {faint:g}"
        )


@keras.saving.register_keras_serializable(package="revivacolor")
class SureColors(layers.Layer):
    """[median a/b, sure a/b(, reach)] -> sure * gain + (median - sure * gain) * w, per pixel, where
    w = clip((C_sure / C_median - lower) / (upper - lower), 0, 1): the median where the sure
    answer keeps at least `upper` of its chroma, the sure answer times `gain` where it keeps
    `lower` or less, and a straight ramp between. With `reach` (HintAttention's output at full
    resolution; its last channel, the share of each pixel the known colors reach, is r),
    w becomes w + (1 - w) * r: the median wherever the known colors reach, the blend elsewhere.
    Then `faint` (CIELAB units) times 1 - w is taken off every pixel's chroma, none below zero:
    the whole threshold where the blend is unsure and none reached, none where it takes the median.
    """

    def __init__(self, lower: float, upper: float, gain: float, faint: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        check_blend(lower, upper, gain, faint)
        self.lower, self.upper, self.gain, self.faint = lower, upper, gain, faint

    def call(self, inputs):
        median, sure, *reach = (ops.cast(value, "float32") for value in inputs)
        kept = _chroma(sure) / ops.maximum(_chroma(median), CHROMA_FLOOR)
        weight = ops.clip((kept - self.lower) / (self.upper - self.lower), 0.0, 1.0)
        reached = ops.clip(reach[0][..., 2:], 0.0, 1.0) if reach else 0.0
        weight = weight + (1.0 - weight) * reached
        blend = sure * self.gain + (median - sure * self.gain) * weight
        if not self.faint:
            return blend
        chroma = _chroma(blend)
        remaining = ops.maximum(chroma - self.faint / AB_SCALE * (1.0 - weight), 0.0)
        return blend * remaining / ops.maximum(chroma, CHROMA_FLOOR)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        blend = {"lower": self.lower, "upper": self.upper, "gain": self.gain, "faint": self.faint}
        return {**super().get_config(), **blend}


def _chroma(ab: Tensor) -> Tensor:
    return ops.sqrt(ops.sum(ops.square(ab), axis=-1, keepdims=True))


def median_and_sure_loss(reconstruction, overshoot: float):
    """The loss of the two decoders side by side (y_pred: median a/b, then sure a/b): `reconstruction`
    on the median, and `reconstruction` plus `overshoot` times the chroma beyond the truth's on the sure
    colors. With a frozen encoder the decoders share nothing that learns: each learns as it would alone."""
    sure_loss = with_overshoot(reconstruction, overshoot)

    def median_and_sure(y_true: Tensor, y_pred: Tensor) -> Tensor:
        return reconstruction(y_true, y_pred[..., :2]) + sure_loss(y_true, y_pred[..., 2:])

    return median_and_sure


CUSTOM_OBJECTS = {"revivacolor>SureColors": SureColors}
