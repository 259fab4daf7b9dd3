"""Reconstruction losses on a/b / 128 (range [-1, 1]): those the original research explored,
and CIEDE2000, the color difference the pipeline's `--evaluate` judges by.

Written with keras.ops only, so training runs on any Keras backend (JAX without
TensorFlow installed, or TensorFlow); the values match tf.image.psnr and tf.image.ssim.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from keras import ops

from transforms.lab import AB_SCALE

Tensor = Any  # a tensor of the active Keras backend (jax.Array, tf.Tensor) or a NumPy array

AB_RANGE = 2.0  # tanh output spans [-1, 1]
EPSILON = 1e-6  # under every square root: its gradient at 0 (gray, or a perfect prediction) stays finite
SSIM_SIZE = 11  # tf.image.ssim's defaults: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _float32(y_true: Tensor, y_pred: Tensor) -> tuple[Tensor, Tensor]:
    """Mixed precision predicts in bf16/fp16; losses are computed in float32."""
    return ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")


def mae(y_true: Tensor, y_pred: Tensor) -> Tensor:
    y_true, y_pred = _float32(y_true, y_pred)
    return ops.mean(ops.abs(y_true - y_pred))


def psnr_loss(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """Negative PSNR, scaled so that its gradients are of the order of MAE's."""
    y_true, y_pred = _float32(y_true, y_pred)
    mse = ops.mean(ops.square(y_true - y_pred), axis=(-3, -2, -1))
    psnr = 20.0 * math.log10(AB_RANGE) - 10.0 / math.log(10.0) * ops.log(mse)
    return -ops.mean(psnr) / 50.0


def _gaussian_1d() -> np.ndarray:
    """The normalized 1-D factor of tf.image.ssim's 2-D window, which is its outer product with itself."""
    coords = np.arange(SSIM_SIZE, dtype=np.float64) - (SSIM_SIZE - 1) / 2.0
    g = np.exp(-0.5 * coords**2 / SSIM_SIGMA**2)
    return (g / g.sum()).astype(np.float32)


def _gaussian_blur(x: Tensor) -> Tensor:
    """Local means under the SSIM window, per channel, VALID padding: two 1-D passes of the separable Gaussian."""
    channels = x.shape[-1]
    g = _gaussian_1d()
    rows = np.tile(g.reshape(SSIM_SIZE, 1, 1, 1), (1, 1, channels, 1))
    columns = np.tile(g.reshape(1, SSIM_SIZE, 1, 1), (1, 1, channels, 1))
    x = ops.depthwise_conv(x, rows, padding="valid", data_format="channels_last")
    return ops.depthwise_conv(x, columns, padding="valid", data_format="channels_last")


def ssim_loss(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """1 - SSIM (11x11 Gaussian window), computed on each of a and b."""
    x, y = _float32(y_true, y_pred)
    c1 = (SSIM_K1 * AB_RANGE) ** 2
    c2 = (SSIM_K2 * AB_RANGE) ** 2
    # One convolution for the four local statistics, stacked along the channels.
    blurred = _gaussian_blur(ops.concatenate([x, y, x * y, ops.square(x) + ops.square(y)], axis=-1))
    mean_x, mean_y, mean_xy, mean_squares = ops.split(blurred, 4, axis=-1)
    num0 = 2.0 * mean_x * mean_y
    den0 = ops.square(mean_x) + ops.square(mean_y)
    luminance = (num0 + c1) / (den0 + c1)
    contrast_structure = (2.0 * mean_xy - num0 + c2) / (mean_squares - den0 + c2)
    return 1.0 - ops.mean(luminance * contrast_structure)


def mae_psnr_ssim(y_true: Tensor, y_pred: Tensor) -> Tensor:
    return mae(y_true, y_pred) + psnr_loss(y_true, y_pred) + ssim_loss(y_true, y_pred)


def _sqrt(x: Tensor) -> Tensor:
    return ops.sqrt(ops.maximum(x, 0.0) + EPSILON)


def _chroma_weight(c_mean: Tensor) -> Tensor:
    """sqrt(C^7 / (C^7 + 25^7)): near 0 for grayish colors, near 1 for vivid ones (G and R_T use it)."""
    c_mean7 = c_mean**7
    return _sqrt(c_mean7 / (c_mean7 + 25.0**7))


def ciede2000(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """Mean CIEDE2000 (Sharma, Wu and Dalal 2005) between the true and predicted colors, / 128.

    L is the scan's own, so its term is zero and only a/b count. Unlike L1 on a/b, it
    forgives a chroma error more the more colorful the two colors are (S_C = 1 + 0.045 C),
    so it was tried to buy color; it bought accuracy on faces instead and less color on
    whole scenes (docs/models.md). The hue-dependent weights (T and the blue rotation term
    R_T) are computed from the colors without a gradient; the gradient flows through the
    chroma and hue differences and the mean chroma. `transforms.metrics.delta_e2000` is
    the reference it is tested against.
    """
    y_true, y_pred = _float32(y_true, y_pred)
    a1, b1 = y_true[..., 0] * AB_SCALE, y_true[..., 1] * AB_SCALE
    a2, b2 = y_pred[..., 0] * AB_SCALE, y_pred[..., 1] * AB_SCALE
    g = 0.5 * (1.0 - _chroma_weight((_sqrt(a1 * a1 + b1 * b1) + _sqrt(a2 * a2 + b2 * b2)) / 2.0))
    a1, a2 = (1.0 + g) * a1, (1.0 + g) * a2
    c1, c2 = _sqrt(a1 * a1 + b1 * b1), _sqrt(a2 * a2 + b2 * b2)
    d_c = c2 - c1
    # The hue difference 2 sqrt(C1 C2) sin(dh / 2), from its square without an angle;
    # its sign (needed by R_T) is the turn from color 1 to color 2.
    d_h = ops.sign(a1 * b2 - b1 * a2) * _sqrt(2.0 * (c1 * c2 - a1 * a2 - b1 * b2))
    c_mean = (c1 + c2) / 2.0
    # The mean hue: the bisector of the shorter arc between the two hues.
    h_mean = ops.stop_gradient(ops.arctan2(b1 / c1 + b2 / c2, a1 / c1 + a2 / c2))
    t = (
        1.0
        - 0.17 * ops.cos(h_mean - math.radians(30))
        + 0.24 * ops.cos(2.0 * h_mean)
        + 0.32 * ops.cos(3.0 * h_mean + math.radians(6))
        - 0.20 * ops.cos(4.0 * h_mean - math.radians(63))
    )
    h_mean_degrees = ops.mod(h_mean * (180.0 / math.pi), 360.0)
    rotation = ops.sin(math.radians(60) * ops.exp(-ops.square((h_mean_degrees - 275.0) / 25.0)))
    r_t = -2.0 * _chroma_weight(c_mean) * ops.stop_gradient(rotation)
    chroma_term = d_c / (1.0 + 0.045 * c_mean)
    hue_term = d_h / (1.0 + 0.015 * c_mean * ops.stop_gradient(t))
    delta_e = _sqrt(chroma_term**2 + hue_term**2 + r_t * chroma_term * hue_term)
    return ops.mean(delta_e) / AB_SCALE


def mae_ciede2000(y_true: Tensor, y_pred: Tensor) -> Tensor:
    """L1 on a/b plus CIEDE2000, weighted equally (`--loss mae+ciede2000`)."""
    return mae(y_true, y_pred) + ciede2000(y_true, y_pred)


def no_worse_than_automatic(reconstruction, weight: float):
    """`reconstruction` of the colors with known colors, plus `weight` times how much worse than the model's
    own automatic colors they made each pixel (y_pred: both, stacked on the last axis).

    A known color must change its own object and leave the rest as it was; L1 over the whole
    picture barely weighs one plant point turning a face yellow, since the points' own objects
    gain more than the face loses. This term counts only the losses, so a carried color that
    makes a pixel worse costs more than one that makes it better gains.
    """

    def loss(y_true: Tensor, y_pred: Tensor) -> Tensor:
        y_true, y_pred = _float32(y_true, y_pred)
        hinted, automatic = y_pred[..., :2], ops.stop_gradient(y_pred[..., 2:])
        error = ops.mean(ops.abs(hinted - y_true), axis=-1)
        automatic_error = ops.mean(ops.abs(automatic - y_true), axis=-1)
        return reconstruction(y_true, hinted) + weight * ops.mean(ops.relu(error - automatic_error))

    return loss


def with_overshoot(reconstruction, weight: float):
    """`reconstruction` plus `weight` times the chroma the prediction paints beyond the truth's
    (`--overshoot`).

    Where the true colors of one kind of surface spread (a wall or a shirt of any color), the L1
    median is a faint cream: the cast of whole scenes. With this term the chroma learned is a lower
    quantile of those seen there (about the 1 / (2 + 2 weight)-th), so little where the colors spread
    and nearly all of it where they agree (skin, sky); hue still comes from the reconstruction.
    """

    def loss(y_true: Tensor, y_pred: Tensor) -> Tensor:
        true, predicted = _float32(y_true, y_pred)
        return reconstruction(y_true, y_pred) + weight * ops.mean(ops.relu(_chroma(predicted) - _chroma(true)))

    return loss


def _chroma(ab: Tensor) -> Tensor:
    return _sqrt(ops.sum(ops.square(ab), axis=-1))


LOSSES = {
    "mae": mae,
    "ciede2000": ciede2000,
    "mae+ciede2000": mae_ciede2000,
    "psnr": psnr_loss,
    "ssim": ssim_loss,
    "mae+psnr+ssim": mae_psnr_ssim,
}
