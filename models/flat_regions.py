"""Featureless training regions whose true color is gray.

A region without texture (an empty wall, a clear sky, a blank backdrop) says nothing about
its color, so an L1-trained network colors it from position alone: `unet` v6 turned a
flat mid-gray scan into bands of sky blue at its top and bottom, the blotches that users
see on walls and skies. Showing it, now and then, a random rectangle flattened to smooth
shading (its mean lightness plus a gentle slope, as light falls across a wall) with gray
as its truth teaches it that no texture means no evidence, and the safe answer is the
scan's own gray.
"""

from __future__ import annotations

import tensorflow as tf


def _random_span(length: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Start and end of a span of a quarter to three quarters of `length`, placed so that it
    runs over the edge as often as not (cut there): blank skies and walls meet the frame."""
    extent = tf.random.uniform((), length // 4, 3 * length // 4 + 1, tf.int32)
    start = tf.random.uniform((), -(extent // 2), length - extent // 2 + 1, tf.int32)
    return tf.maximum(start, 0), tf.minimum(start + extent, length)


def _slope(length: int, start: tf.Tensor, end: tf.Tensor) -> tf.Tensor:
    """A random linear ramp along one axis, 0 at the span's middle, up to 0.2 from end to end."""
    positions = tf.range(length, dtype=tf.float32) - tf.cast(start + end - 1, tf.float32) / 2
    return positions * tf.random.uniform((), -0.2, 0.2) / tf.cast(tf.maximum(end - start, 1), tf.float32)


def flatten_random_region(lightness: tf.Tensor, ab: tf.Tensor, probability: float) -> tuple[tf.Tensor, tf.Tensor]:
    """With `probability`, a random rectangle of the crop made featureless and gray.

    `lightness` (H, W, 1) and `ab` (H, W, 2) must have static H and W (training crops do).
    Inside the rectangle L becomes its mean there plus a random slope of up to 0.2 (of the
    whole L range) across it in each direction, and a/b become 0; outside nothing changes.
    The degradations applied afterwards give the flat region the grain and blur of a scan.
    """
    height, width = lightness.shape[0], lightness.shape[1]

    def flatten() -> tuple[tf.Tensor, tf.Tensor]:
        (top, bottom), (left, right) = _random_span(height), _random_span(width)
        inside = tf.pad(
            tf.ones((bottom - top, right - left, 1), lightness.dtype),
            [[top, height - bottom], [left, width - right], [0, 0]],
        )
        inside = tf.ensure_shape(inside, (height, width, 1))
        mean = tf.reduce_sum(lightness * inside) / tf.reduce_sum(inside)
        shading = mean + _slope(height, top, bottom)[:, None, None] + _slope(width, left, right)[None, :, None]
        shading = tf.clip_by_value(tf.cast(shading, lightness.dtype), 0.0, 1.0)
        return lightness * (1 - inside) + shading * inside, ab * (1 - inside)

    return tf.cond(tf.random.uniform(()) < probability, flatten, lambda: (lightness, ab))
