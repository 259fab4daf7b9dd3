"""Metrics: known values and a cross-check of SSIM and PSNR against TensorFlow's implementation."""

import math

import numpy as np
import tensorflow as tf

from tests.conftest import color_photo
from transforms.color import to_float_bgr
from transforms.metrics import fidelity_metrics, psnr, ssim


def test_identical_images_score_perfectly():
    image = color_photo(40, 50)
    metrics = fidelity_metrics(to_float_bgr(image), image)
    assert metrics["mae"] == 0 and metrics["mse"] == 0 and math.isinf(metrics["psnr"])
    assert abs(metrics["ssim"] - 1) < 1e-9 and metrics["mae_ab"] < 0.5


def test_psnr_of_a_known_error():
    assert abs(psnr(1.0, 255.0) - 48.1308036) < 1e-6


def test_ssim_and_psnr_match_tensorflow():
    rng = np.random.default_rng(3)
    truth = color_photo(64, 80).astype(np.float64)
    noisy = np.clip(truth + rng.normal(0, 12, truth.shape), 0, 255).round()
    expected = tf.image.ssim(tf.constant(noisy[None]), tf.constant(truth[None]), max_val=255.0).numpy()[0]
    assert abs(ssim(noisy, truth, 255.0) - expected) < 1e-4
    expected_psnr = tf.image.psnr(tf.constant(noisy), tf.constant(truth), max_val=255.0).numpy()
    assert abs(psnr(float(np.mean((noisy - truth) ** 2)), 255.0) - expected_psnr) < 1e-3


def test_gray_result_of_a_color_photo_scores_worse_than_the_photo_itself():
    image = color_photo(40, 40)
    gray = np.repeat(to_float_bgr(image).mean(axis=2, keepdims=True), 3, axis=2)
    metrics = fidelity_metrics(gray, image)
    assert metrics["mae"] > 5 and metrics["psnr"] < 40 and metrics["mae_ab"] > 5
