"""Colour-fidelity metrics: MAE, MSE, PSNR and SSIM on sRGB and on the a/b channels.

SSIM follows Wang et al. (2004): an 11x11 Gaussian window with sigma 1.5,
K1 = 0.01, K2 = 0.03, computed per channel and averaged, with the border that
the window cannot cover left out (as scikit-image does).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from transforms.color import AB_MAX, AB_MIN, bgr_to_lab, quantize, to_float_bgr

SSIM_WINDOW, SSIM_SIGMA, SSIM_K1, SSIM_K2 = 11, 1.5, 0.01, 0.03
METRIC_NAMES = ("mae", "mse", "psnr", "ssim", "mae_ab", "mse_ab", "psnr_ab", "ssim_ab")


def psnr(mse: float, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB; infinite for identical images."""
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def ssim(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """Mean structural similarity of two images with the same shape (channels averaged)."""
    x = x.astype(np.float64)
    y = y.astype(np.float64)

    def blur(image: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(image, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    pad = (SSIM_WINDOW - 1) // 2
    if min(ssim_map.shape[:2]) > 2 * pad:
        ssim_map = ssim_map[pad:-pad, pad:-pad]
    return float(ssim_map.mean())


def _four_metrics(result: np.ndarray, truth: np.ndarray, data_range: float) -> tuple[float, ...]:
    difference = result.astype(np.float64) - truth.astype(np.float64)
    mse = float(np.mean(difference**2))
    return (
        float(np.mean(np.abs(difference))),
        mse,
        psnr(mse, data_range),
        ssim(result, truth, data_range),
    )


def fidelity_metrics(result_bgr: np.ndarray, truth_pixels: np.ndarray) -> dict[str, float]:
    """All eight metrics of a float BGR result against a ground-truth scan of the same size.

    sRGB metrics are on 8-bit values (range 255); a/b metrics are in CIELAB units
    with the a/b range (255) as the peak.
    """
    truth_bgr = to_float_bgr(truth_pixels)
    rgb = _four_metrics(quantize(result_bgr, 8), quantize(truth_bgr, 8), 255.0)
    result_ab = bgr_to_lab(result_bgr)[:, :, 1:]
    truth_ab = bgr_to_lab(truth_bgr)[:, :, 1:]
    ab = _four_metrics(result_ab, truth_ab, AB_MAX - AB_MIN)
    return dict(zip(METRIC_NAMES, rgb + ab, strict=True))
