"""Colorization as classification over quantized a/b (Zhang, Isola, Efros, ECCV 2016).

An L1 or L2 loss on a/b predicts the mean of the plausible colors of a shirt or a
sky, which is a brownish gray: the sepia look. Predicting a distribution over color
bins keeps the alternatives apart; rebalancing the classes by their rarity keeps
the common desaturated bins from winning everywhere; the annealed mean (a softmax
at temperature T < 1, then the expectation) turns the distribution back into one
color that is vivid but spatially coherent.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from models.losses import Tensor
from transforms.lab import AB_SCALE, lab_to_bgr

GRID = 10.0  # bin width in a/b units, as in the paper
AB_LIMIT = 110.0  # a/b bin centers span [-110, 110]
REBALANCE_MIX = 0.5  # lambda, the paper's share of the uniform distribution in the rebalancing prior
REBALANCE_SIGMA = 5.0  # a/b units of the Gaussian that smooths the empirical distribution
LOGITS_STRIDE = 2  # the class logits are predicted at half the input's resolution


def in_gamut_bins() -> np.ndarray:
    """Centers (Q, 2) of the a/b bins that some lightness turns into a displayable sRGB color."""
    centers = np.arange(-AB_LIMIT, AB_LIMIT + GRID / 2, GRID)
    a, b = np.meshgrid(centers, centers, indexing="ij")
    ab = np.stack([a.ravel(), b.ravel()], axis=-1)
    lightness = np.arange(5.0, 100.0, 2.5)
    lab = np.concatenate([np.repeat(lightness, len(ab))[:, None], np.tile(ab, (len(lightness), 1))], axis=-1).astype(
        np.float32
    )
    bgr = lab_to_bgr(lab[None])[0]
    inside = np.all((bgr >= 0.0) & (bgr <= 1.0), axis=-1).reshape(len(lightness), len(ab)).any(axis=0)
    return ab[inside].astype(np.float32)


def nearest_bin(ab: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Index of the nearest bin center for every a/b pair (..., 2) in a/b units."""
    flat = ab.reshape(-1, 2)
    distances = ((flat[:, None, :] - bins[None, :, :]) ** 2).sum(-1)
    return distances.argmin(-1).reshape(ab.shape[:-1])


def rebalancing_weights(ab_samples: np.ndarray, bins: np.ndarray, mix: float = REBALANCE_MIX) -> np.ndarray:
    """Per-bin loss weights: inverse of the smoothed color distribution mixed with uniform, mean 1.

    `mix` is the uniform share: 0.5 in the paper; towards 1 rare colors are pushed less (1: no rebalancing).
    """
    counts = np.bincount(nearest_bin(ab_samples, bins).ravel(), minlength=len(bins)).astype(np.float64)
    probability = counts / counts.sum()
    distance = ((bins[:, None, :] - bins[None, :, :]) ** 2).sum(-1)
    kernel = np.exp(-distance / (2 * REBALANCE_SIGMA**2))
    smoothed = kernel @ probability
    smoothed /= smoothed.sum()
    weights = 1.0 / ((1 - mix) * smoothed + mix / len(bins))
    weights /= (smoothed * weights).sum()
    return weights.astype(np.float32)


class RebalancedClassLoss:
    """Weighted cross-entropy between color-bin logits and the true a/b, at the logits' resolution.

    `y_true` is a/b / 128 at full resolution; it is averaged down to the logits' grid
    (LOGITS_STRIDE) and each pixel's class is its nearest bin.
    """

    def __init__(self, bins: np.ndarray, weights: np.ndarray):
        self.bins = ops.convert_to_tensor(bins / AB_SCALE, "float32")
        self.weights = ops.convert_to_tensor(weights, "float32")
        self.__name__ = "rebalanced_class_loss"

    def __call__(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        logits = ops.cast(y_pred, "float32")
        ab = ops.average_pool(
            ops.cast(y_true, "float32"), LOGITS_STRIDE, LOGITS_STRIDE, padding="valid", data_format="channels_last"
        )
        distances = ops.sum(ops.square(ab[..., None, :] - self.bins), axis=-1)
        labels = ops.argmin(distances, axis=-1)
        loss = ops.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        return ops.mean(loss * ops.take(self.weights, labels))


class RebalancedL1:
    """L1 on a/b, each pixel weighted by the rarity of its true color (the class weights above).

    Plain L1 lets the many gray and brown pixels pull every uncertain color towards
    them; weighting a pixel by its color bin's weight makes a missed green lawn or
    red flag cost as much as the skin and walls around it.
    """

    def __init__(self, bins: np.ndarray, weights: np.ndarray):
        centers = np.arange(-AB_LIMIT, AB_LIMIT + GRID / 2, GRID)
        grid = np.stack(np.meshgrid(centers, centers, indexing="ij"), axis=-1).reshape(-1, 2)
        self.side = len(centers)
        # every grid cell, in gamut or not
        self.table = ops.convert_to_tensor(weights[nearest_bin(grid, bins)], "float32")
        self.__name__ = "rebalanced_l1"

    def __call__(self, y_true: Tensor, y_pred: Tensor) -> Tensor:
        y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
        cells = ops.cast(ops.round((y_true * AB_SCALE + AB_LIMIT) / GRID), "int32")
        cells = ops.clip(cells, 0, self.side - 1)
        weights = ops.take(self.table, cells[..., 0] * self.side + cells[..., 1])
        return ops.mean(weights * ops.mean(ops.abs(y_true - y_pred), axis=-1))
