"""How sure the model is of each pixel's color, and the chroma it paints because of it.

A model trained by L1 predicts each pixel's median color. Where the photos it learned from
disagree (a wall, a shirt) that median is a faint guess, mostly the cream of old prints, which
casts over every neutral surface; where they agree (skin, grass, sky) it is right but paler
than the truth. So the model also predicts, per pixel, the scale s of a Laplace distribution
around its median (Kendall and Gal, NeurIPS 2017, "What uncertainties do we need ..."): the
expected error of a and b. `ConfidentChroma` turns the ratio of the median's chroma to s into
a gain on the chroma, small where the color is a guess and up to `max_gain` where it stands far
above its own doubt. The gain's three numbers are fitted on validation photos
(`python -m tools.fit_certainty`) and kept in the model file as non-trainable weights.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

Tensor = Any  # a tensor of the active Keras backend, or a NumPy array

LOG_SCALE_LIMITS = (-7.0, 1.0)  # log s in a/b / 128 units: from a 0.1-unit to a 350-unit doubt
LOG_SCALE_START = -2.7  # about a 9-unit doubt, the L1 error of the default model on validation photos
PASS_THROUGH = (1e-3, 1.0, 1.0)  # threshold, softness, max_gain: the median as it is, but where C < s / 1000
CHROMA_FLOOR = 1e-4  # a/b / 128 units, under the logarithm of the chroma


def laplace_nll(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """Negative log-likelihood of the true a/b under Laplace(median, s) per channel, s shared by a and b.

    `y_pred` is (..., 3): the median a/b / 128 and log s. The median gets no gradient: it stays
    the L1 answer, and the head only learns how far off it is (s is then the expected L1 error).
    """
    y_true = ops.cast(y_true, "float32")
    median = ops.stop_gradient(ops.cast(y_pred[..., :2], "float32"))
    log_scale = ops.clip(ops.cast(y_pred[..., 2], "float32"), *LOG_SCALE_LIMITS)
    error = ops.sum(ops.abs(y_true - median), axis=-1)
    return ops.mean(error * ops.exp(-log_scale) + 2.0 * log_scale)


DOUBT_WEIGHT = 0.1  # of the likelihood beside the colors' own loss: the head's own weights learn at Adam's pace


def with_doubt(reconstruction):
    """The loss of a model that learns its colors and its doubt together: `reconstruction` on the
    median, plus DOUBT_WEIGHT times `laplace_nll` (which reaches the shared decoder only through the head)."""

    def colors_and_doubt(y_true: Tensor, y_pred: Tensor) -> Tensor:
        return reconstruction(y_true, y_pred[..., :2]) + DOUBT_WEIGHT * laplace_nll(y_true, y_pred)

    return colors_and_doubt


def certainty_head(features, lightness_features, ab):
    """log s per pixel at the input's resolution, from the decoder's last features and its a/b."""
    x = layers.Concatenate(name="certainty_in")([features, lightness_features, ab])
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="certainty0")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="certainty1")(x)
    return layers.Conv2D(
        1, 1, bias_initializer=keras.initializers.Constant(LOG_SCALE_START), dtype="float32", name="certainty_log_scale"
    )(x)


@keras.saving.register_keras_serializable(package="revivacolor")
class ConfidentChroma(layers.Layer):
    """a/b times gain = max_gain * sigmoid((ln(C / s) - ln(threshold)) / softness), C the median's chroma.

    Hue is kept; so is the chroma's order within a region of one certainty. With max_gain 1 and
    a threshold near 0 it passes the median through, as a model without the head.
    """

    def __init__(
        self,
        threshold: float = PASS_THROUGH[0],
        softness: float = PASS_THROUGH[1],
        max_gain: float = PASS_THROUGH[2],
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.initial = {"threshold": threshold, "softness": softness, "max_gain": max_gain}

    def build(self, input_shape):
        for name, value in self.initial.items():
            setattr(self, name, self.add_weight(name=name, shape=(), initializer="zeros", trainable=False))
            getattr(self, name).assign(value)

    def call(self, inputs):
        ab, log_scale = inputs
        chroma = ops.sqrt(ops.sum(ops.square(ab), axis=-1, keepdims=True) + CHROMA_FLOOR**2)
        log_ratio = ops.log(chroma) - ops.clip(log_scale, *LOG_SCALE_LIMITS)
        gain = self.max_gain * ops.sigmoid((log_ratio - ops.log(self.threshold)) / self.softness)
        return ab * gain

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def set_curve(self, threshold: float, softness: float, max_gain: float) -> None:
        self.threshold.assign(threshold)
        self.softness.assign(softness)
        self.max_gain.assign(max_gain)

    def curve(self) -> dict[str, float]:
        return {name: float(ops.convert_to_numpy(getattr(self, name))) for name in self.initial}

    def get_config(self):
        return {**super().get_config(), **self.initial}


CUSTOM_OBJECTS = {"revivacolor>ConfidentChroma": ConfidentChroma}
