"""Metrics: known values and a cross-check of SSIM and PSNR against TensorFlow's implementation."""

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import color_photo
from transforms.codec import to_float_bgr
from transforms.metrics import (
    chroma_by_truth,
    colorfulness,
    delta_e2000,
    detect_faces,
    far_skin_change,
    fidelity_metrics,
    psnr,
    ssim,
)


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


def test_ciede2000_matches_all_34_published_pairs_both_ways():
    table = np.loadtxt(Path(__file__).parent / "data" / "sharma_ciede2000.csv", delimiter=",", skiprows=1)
    assert table.shape == (34, 7)
    np.testing.assert_allclose(delta_e2000(table[:, :3], table[:, 3:6]), table[:, 6], atol=1e-4)
    np.testing.assert_allclose(delta_e2000(table[:, 3:6], table[:, :3]), table[:, 6], atol=1e-4)


def test_colorfulness_is_zero_for_gray_and_grows_with_saturation():
    image = color_photo(40, 40)
    gray = np.repeat(image.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    washed = ((image.astype(float) + gray) / 2).astype(np.uint8)
    assert colorfulness(gray) == 0
    assert colorfulness(image) > colorfulness(washed) > 0


def test_colorfulness_of_a_large_image_from_a_sample_is_close_to_every_pixels_and_does_not_depend_on_strips(
    monkeypatch,
):
    from transforms import lab, metrics

    grain = np.random.default_rng(0).normal(0, 6, (300, 400, 3))
    image = np.clip(color_photo(300, 400) + grain, 0, 255).astype(np.uint8)
    monkeypatch.setattr(metrics, "COLORFULNESS_PIXELS", image.shape[0] * image.shape[1])
    exact = colorfulness(image)
    monkeypatch.setattr(metrics, "COLORFULNESS_PIXELS", 10_000)  # every 3rd row and column
    assert metrics.Colorfulness(300, 400).stride == 3
    sampled = colorfulness(image)
    assert sampled != exact and sampled == pytest.approx(exact, rel=0.01)
    monkeypatch.setattr(lab, "STRIP_PIXELS", 400 * 7)  # strips of 7 rows: the stride does not divide them
    assert colorfulness(image) == pytest.approx(sampled, rel=1e-12)


def test_skin_error_is_measured_inside_the_faces_of_a_real_portrait():
    portrait = cv2.imread(str(Path(__file__).parents[1] / "samples" / "color" / "pyfeat_single-face.jpg"))
    assert len(detect_faces(portrait)) == 1
    gray_result = to_float_bgr(cv2.cvtColor(cv2.cvtColor(portrait, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR))
    metrics = fidelity_metrics(gray_result, portrait)
    assert metrics["faces"] == 1 and metrics["skin_delta_e2000"] > 2
    assert metrics["colorfulness_truth"] > 5


def test_chroma_by_truth_separates_the_cast_on_neutral_pixels_from_the_vivid_ones():
    truth = np.zeros((4, 4, 3), np.float32)
    truth[:2, :, 1] = 40.0  # vivid red above, neutral below
    result = np.zeros_like(truth)
    result[:2, :, 1], result[2:, :, 2] = 10.0, 6.0  # pale red, a cream cast
    measured = chroma_by_truth(result, truth)
    assert measured == {"cast": 6.0, "vivid_chroma": 10.0, "vivid_chroma_truth": 40.0}
    assert chroma_by_truth(result[2:], truth[2:])["vivid_chroma"] is None


def test_far_skin_change_counts_only_faces_away_from_every_point():
    truth = np.zeros((100, 100, 3), np.float32)
    truth[..., 0], truth[..., 1], truth[..., 2] = 60.0, 15.0, 20.0  # skin everywhere
    automatic = truth.copy()
    hinted = truth.copy()
    hinted[:, :50, 1] = -30.0  # the hint's green, spread over the left half
    face_left, face_right = (10, 10, 20, 20), (70, 70, 20, 20)
    far_from_left = [(5.0, 95.0)]  # 10 % of the side is 10 px: the left face is farther than that
    assert far_skin_change(truth, automatic, hinted, [face_left], far_from_left) > 10
    assert far_skin_change(truth, automatic, hinted, [face_right], far_from_left) == pytest.approx(0.0)
    assert far_skin_change(truth, automatic, hinted, [(15, 15, 10, 10)], [(20.0, 20.0)]) is None  # a point on it
