"""Known colors for training: hints sampled from the true a/b (Zhang et al. 2017, "user-guided").

A hint-aware model learns to follow a few known colors and to spread them over the
region they belong to. It is trained on hints taken from the photo itself: for half of
the crops none at all (so the automatic result stays as good as a model without
hints); for the others small square patches, each holding the mean color of the true a/b
under it, placed either at random (1 to MAX_POINTS of them) or as an archivist clicks:
on a few objects, several points on each, all of the object's own color.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from transforms.hints import HINT_CHANNELS

HINTS_SHARE = 0.5  # share of training crops that get any hints
MAX_POINTS = 40  # the number of points is log-uniform in [1, MAX_POINTS]
MAX_PATCH_RADIUS = 2  # patches are 1x1, 3x3 or 5x5 pixels at the model's resolution
CLICKS_SHARE = 0.5  # share of hinted crops whose points are clicks on objects rather than at random
MAX_OBJECTS = 8  # clicked objects per crop, log-uniform in [1, MAX_OBJECTS]
CLICKS_PER_OBJECT = 4  # 1 to this many points on each object
OBJECT_REACH = 24  # model pixels: how far from the first click the others on its object fall
OBJECT_COLOR_TOLERANCE = 8.0 / 128  # a/b / 128: a pixel within this of the first click's color is the same object


def spread(image: np.ndarray, radius: int) -> np.ndarray:
    """Sum of `image` (H, W, C) over the (2 radius + 1)-pixel square around every pixel, zero outside."""
    side = 2 * radius + 1
    summed = cv2.boxFilter(image, -1, (side, side), normalize=False, borderType=cv2.BORDER_CONSTANT)
    return summed.reshape(image.shape)


def log_uniform_count(rng: np.random.Generator, most: int) -> int:
    """A whole number from 1 to `most`, small ones as likely as large ones on a log scale."""
    return math.floor(math.exp(rng.uniform(0.0, math.log(most + 1))))


def object_clicks(
    ab: np.ndarray, rng: np.random.Generator, objects: int | None = None, clicks: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of clicks on a few objects: for each, a first point anywhere and up to
    CLICKS_PER_OBJECT - 1 more nearby where the true color is the first point's (the same dress, sky, wall).

    `objects` (default: log-uniform in 1 to MAX_OBJECTS) and `clicks` per object (default: 1 to
    CLICKS_PER_OBJECT, fewer where the object has fewer pixels) fix the layout, as tools.evaluate does.
    """
    height, width = ab.shape[:2]
    rows, columns = [], []
    for _ in range(objects or log_uniform_count(rng, MAX_OBJECTS)):
        row, column = int(rng.integers(0, height)), int(rng.integers(0, width))
        top, left = max(0, row - OBJECT_REACH), max(0, column - OBJECT_REACH)
        window = ab[top : row + OBJECT_REACH + 1, left : column + OBJECT_REACH + 1]
        same = np.argwhere(np.linalg.norm(window - ab[row, column], axis=-1) <= OBJECT_COLOR_TOLERANCE)
        wanted = clicks - 1 if clicks else int(rng.integers(0, CLICKS_PER_OBJECT))
        more = same[rng.choice(len(same), min(len(same), wanted), replace=False)]
        rows += [row, *(more[:, 0] + top)]
        columns += [column, *(more[:, 1] + left)]
    return np.array(rows), np.array(columns)


def sample_hints(ab: np.ndarray, rng: np.random.Generator, share: float = HINTS_SHARE) -> np.ndarray:
    """Hints (H, W, 3) for one crop's true a/b / 128 (H, W, 2): hint a, hint b, mask; none at all
    for 1 - `share` of the crops."""
    ab = np.asarray(ab, np.float32)
    height, width = ab.shape[:2]
    if rng.random() >= share:
        return no_hints(ab)
    if rng.random() < CLICKS_SHARE:
        rows, columns = object_clicks(ab, rng)
    else:
        points = log_uniform_count(rng, MAX_POINTS)
        rows, columns = rng.integers(0, height, points), rng.integers(0, width, points)
    centers = np.zeros((height, width, 1), np.float32)
    centers[rows, columns] = 1.0

    radius = int(rng.integers(0, MAX_PATCH_RADIUS + 1))
    patch_mean = spread(ab, radius) / spread(np.ones_like(centers), radius)  # the border clips patches
    count = spread(centers, radius)
    mask = np.minimum(count, 1.0)
    hint_ab = spread(patch_mean * centers, radius) / np.maximum(count, 1.0)
    return np.concatenate([hint_ab * mask, mask], axis=-1)  # the layout of transforms.hints.hint_grid


def no_hints(ab: np.ndarray) -> np.ndarray:
    """All-zero hints of the crop's size: the automatic case."""
    return np.zeros((*ab.shape[:2], HINT_CHANNELS), np.float32)
