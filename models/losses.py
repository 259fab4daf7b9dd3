"""Reconstruction losses on a/b / 128 (range [-1, 1]), as explored by the original research.

Written with keras.ops only, so training runs on any Keras backend (JAX without
TensorFlow installed, or TensorFlow); the values match tf.image.psnr and tf.image.ssim.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from keras import ops

Tensor = Any  # a tensor of the active Keras backend (jax.Array, tf.Tensor) or a NumPy array

AB_RANGE = 2.0  # tanh output spans [-1, 1]
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


LOSSES = {"mae": mae, "psnr": psnr_loss, "ssim": ssim_loss, "mae+psnr+ssim": mae_psnr_ssim}
