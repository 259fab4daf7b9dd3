"""Known colors for training: hints sampled from the true a/b (Zhang et al. 2017, "user-guided").

A hint-aware model learns to follow a few known colors and to spread them over the
region they belong to. It is trained on hints taken from the photo itself: for half of
the crops none at all (so the automatic result stays as good as a model without
hints), for the others 1 to MAX_POINTS small square patches, each holding the mean
color of the true a/b under it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from transforms.hints import HINT_CHANNELS

HINTS_SHARE = 0.5  # share of training crops that get any hints
MAX_POINTS = 40  # the number of points is log-uniform in [1, MAX_POINTS]
MAX_PATCH_RADIUS = 2  # patches are 1x1, 3x3 or 5x5 pixels at the model's resolution


def spread(image: np.ndarray, radius: int) -> np.ndarray:
    """Sum of `image` (H, W, C) over the (2 radius + 1)-pixel square around every pixel, zero outside."""
    side = 2 * radius + 1
    summed = cv2.boxFilter(image, -1, (side, side), normalize=False, borderType=cv2.BORDER_CONSTANT)
    return summed.reshape(image.shape)


def sample_hints(ab: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Hints (H, W, 3) for one crop's true a/b / 128 (H, W, 2): hint a, hint b, mask."""
    ab = np.asarray(ab, np.float32)
    height, width = ab.shape[:2]
    points = math.floor(math.exp(rng.uniform(0.0, math.log(MAX_POINTS + 1))))
    if rng.random() >= HINTS_SHARE:
        return no_hints(ab)
    centers = np.zeros((height, width, 1), np.float32)
    centers[rng.integers(0, height, points), rng.integers(0, width, points)] = 1.0

    radius = int(rng.integers(0, MAX_PATCH_RADIUS + 1))
    patch_mean = spread(ab, radius) / spread(np.ones_like(centers), radius)  # the border clips patches
    count = spread(centers, radius)
    mask = np.minimum(count, 1.0)
    hint_ab = spread(patch_mean * centers, radius) / np.maximum(count, 1.0)
    return np.concatenate([hint_ab * mask, mask], axis=-1)  # the layout of transforms.hints.hint_grid


def no_hints(ab: np.ndarray) -> np.ndarray:
    """All-zero hints of the crop's size: the automatic case."""
    return np.zeros((*ab.shape[:2], HINT_CHANNELS), np.float32)
