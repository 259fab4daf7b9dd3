"""The color-class loss: in-gamut bins, rarity weights, and a loss that rewards the true bin."""

from __future__ import annotations

import numpy as np
import pytest

from models.architectures import build_unet_classes
from models.color_classes import (
    AB_LIMIT,
    RebalancedClassLoss,
    RebalancedL1,
    in_gamut_bins,
    nearest_bin,
    rebalancing_weights,
)
from transforms.lab import AB_SCALE, bgr_to_lab


def test_bins_cover_the_srgb_gamut_and_nothing_outside_it():
    bins = in_gamut_bins()
    assert 150 < len(bins) <= 23 * 23
    assert np.abs(bins).max() <= AB_LIMIT
    assert [0.0, 0.0] in bins.tolist()
    primaries = bgr_to_lab(np.array([[[0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 1, 1]]], np.float32))[0, :, 1:]
    nearest = bins[nearest_bin(primaries, bins)]
    assert np.all(np.linalg.norm(nearest - np.clip(primaries, -AB_LIMIT, AB_LIMIT), axis=-1) <= 15)
    assert [110.0, 110.0] not in bins.tolist()  # a saturated magenta-yellow no sRGB color has


def test_rare_colors_weigh_more_than_common_ones():
    bins = in_gamut_bins()
    rng = np.random.default_rng(0)
    common = rng.normal(0, 3, (10_000, 2))  # grays and browns
    rare = np.tile([[60.0, 60.0]], (100, 1))  # a saturated red-orange
    samples = np.concatenate([common, rare])
    weights = rebalancing_weights(samples, bins)
    gray, red = nearest_bin(np.array([[0.0, 0.0], [60.0, 60.0]]), bins)
    assert weights[gray] < 1.0 < weights[red]
    assert np.all(weights > 0)


def test_class_loss_prefers_the_true_colors_bin():
    bins = in_gamut_bins()
    loss = RebalancedClassLoss(bins, np.ones(len(bins), np.float32))
    true_ab = np.full((1, 8, 8, 2), 40.0 / AB_SCALE, np.float32)
    right = np.zeros((1, 4, 4, len(bins)), np.float32)
    right[..., nearest_bin(np.array([40.0, 40.0]), bins)] = 10.0
    wrong = np.zeros_like(right)
    wrong[..., nearest_bin(np.array([-40.0, -40.0]), bins)] = 10.0
    assert float(loss(true_ab, right)) < 0.01 < float(loss(true_ab, wrong))


def test_annealed_mean_decodes_a_confident_distribution_to_its_bin():
    model = build_unet_classes(32, pretrained=False)
    bins = in_gamut_bins()
    target = nearest_bin(np.array([30.0, -20.0]), bins)
    kernel, bias = model.get_layer("ab_logits").get_weights()
    bias[:] = 0.0
    bias[target] = 50.0
    model.get_layer("ab_logits").set_weights([np.zeros_like(kernel), bias])
    ab = np.asarray(model.predict_on_batch(np.zeros((1, 32, 32, 1), np.float32)))
    np.testing.assert_allclose(ab * AB_SCALE, np.broadcast_to(bins[target], ab.shape), atol=1e-3)


def test_rebalanced_l1_weighs_a_pixel_by_its_true_colors_rarity():
    bins = in_gamut_bins()
    weights = np.ones(len(bins), np.float32)
    red = nearest_bin(np.array([60.0, 60.0]), bins)
    weights[red] = 5.0
    loss = RebalancedL1(bins, weights)
    gray_truth, red_truth = np.zeros((1, 2, 2, 2), np.float32), np.full((1, 2, 2, 2), 60.0 / AB_SCALE, np.float32)
    off = np.full((1, 2, 2, 2), 0.1, np.float32)
    assert float(loss(gray_truth, gray_truth + off)) == pytest.approx(0.1)
    assert float(loss(red_truth, red_truth + off)) == pytest.approx(0.5)
    assert float(loss(red_truth, red_truth)) == 0.0
    beyond_the_grid = np.full((1, 1, 1, 2), 1.0, np.float32)  # a/b 128: weighed as the nearest bin, not an error
    assert np.isfinite(float(loss(beyond_the_grid, beyond_the_grid * 0)))
