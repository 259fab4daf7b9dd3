"""Known colors for training: hints sampled from the true a/b (Zhang et al. 2017, "user-guided").

A hint-aware model learns to follow a few known colors and to spread them over the
region they belong to. It is trained on hints taken from the photo itself: for half of
the crops none at all (so the automatic result stays as good as a model without
hints), for the others 1 to MAX_POINTS small square patches, each holding the mean
color of the true a/b under it.
"""

from __future__ import annotations

import math

import tensorflow as tf

from transforms.hints import HINT_CHANNELS

HINTS_SHARE = 0.5  # share of training crops that get any hints
MAX_POINTS = 40  # the number of points is log-uniform in [1, MAX_POINTS]
MAX_PATCH_RADIUS = 2  # patches are 1x1, 3x3 or 5x5 pixels at the model's resolution


def patch_kernel(radius: tf.Tensor, channels: int) -> tf.Tensor:
    """A depthwise (5, 5, channels, 1) kernel of ones on a (2 radius + 1)-pixel square."""
    offsets = tf.abs(tf.range(-MAX_PATCH_RADIUS, MAX_PATCH_RADIUS + 1))
    inside = tf.cast(offsets <= radius, tf.float32)
    square = inside[:, None] * inside[None, :]
    return tf.tile(square[:, :, None, None], (1, 1, channels, 1))


def spread(image: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """Sum of `image` (H, W, C) over the kernel's patch around every pixel."""
    return tf.nn.depthwise_conv2d(image[None], kernel, (1, 1, 1, 1), "SAME")[0]


def sample_hints(ab: tf.Tensor) -> tf.Tensor:
    """Hints (H, W, 3) for one crop's true a/b / 128 (H, W, 2): hint a, hint b, mask."""
    height, width = tf.shape(ab)[0], tf.shape(ab)[1]
    log_points = tf.random.uniform((), 0.0, math.log(MAX_POINTS + 1))
    points = tf.cast(tf.floor(tf.exp(log_points)), tf.int32)
    points *= tf.cast(tf.random.uniform(()) < HINTS_SHARE, tf.int32)
    rows = tf.random.uniform((MAX_POINTS,), 0, height, dtype=tf.int32)
    columns = tf.random.uniform((MAX_POINTS,), 0, width, dtype=tf.int32)
    chosen = tf.cast(tf.range(MAX_POINTS) < points, tf.float32)
    centers = tf.minimum(tf.scatter_nd(tf.stack([rows, columns], -1), chosen, (height, width)), 1.0)[:, :, None]

    radius = tf.random.uniform((), 0, MAX_PATCH_RADIUS + 1, dtype=tf.int32)
    kernel = patch_kernel(radius, 2)
    patch_mean = spread(ab, kernel) / spread(tf.ones_like(ab), kernel)
    count = spread(centers, kernel[:, :, :1])
    mask = tf.minimum(count, 1.0)
    hint_ab = spread(patch_mean * centers, kernel) / tf.maximum(count, 1.0)
    return tf.concat([hint_ab * mask, mask], axis=-1)  # the layout of transforms.hints.hint_grid


def no_hints(ab: tf.Tensor) -> tf.Tensor:
    """All-zero hints of the crop's size: the automatic case."""
    return tf.zeros(tf.concat([tf.shape(ab)[:2], [HINT_CHANNELS]], 0), ab.dtype)
