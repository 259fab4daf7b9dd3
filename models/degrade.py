""" "Old photo" degradations applied to the model's input L during training.

Archive scans are grainy, soft, faded, scratched and often JPEG-compressed; a model
trained on clean L only has never seen that. Each degradation is applied with
probability 0.5, to the input only: the target colors stay clean.
All functions take and return L / 100 as a (H, W, 1) float32 tensor.
"""

from __future__ import annotations

import tensorflow as tf


def _maybe(apply, image: tf.Tensor, probability: float = 0.5) -> tf.Tensor:
    return tf.cond(tf.random.uniform(()) < probability, lambda: apply(image), lambda: image)


def fade(image: tf.Tensor) -> tf.Tensor:
    """Lower contrast around a lifted black and a dimmed white, as in faded prints."""
    contrast = tf.random.uniform((), 0.55, 1.0)
    offset = tf.random.uniform((), -0.08, 0.15)
    return tf.clip_by_value(0.5 + (image - 0.5) * contrast + offset * (1 - contrast), 0.0, 1.0)


def blur(image: tf.Tensor) -> tf.Tensor:
    """Gaussian blur, sigma 0.5 to 1.8 pixels: soft lenses and scanning."""
    sigma = tf.random.uniform((), 0.5, 1.8)
    x = tf.range(-4, 5, dtype=tf.float32)
    kernel = tf.exp(-(x**2) / (2 * sigma**2))
    kernel /= tf.reduce_sum(kernel)
    padded = tf.pad(image[None], [[0, 0], [4, 4], [4, 4], [0, 0]], mode="REFLECT")
    rows = tf.nn.conv2d(padded, tf.reshape(kernel, (9, 1, 1, 1)), 1, "VALID")
    return tf.nn.conv2d(rows, tf.reshape(kernel, (1, 9, 1, 1)), 1, "VALID")[0]


def grain(image: tf.Tensor) -> tf.Tensor:
    """Film grain: Gaussian noise, slightly smoothed so it is not per-pixel white noise."""
    noise = tf.random.normal(tf.shape(image), stddev=tf.random.uniform((), 0.01, 0.05))
    noise = tf.nn.avg_pool2d(noise[None], 2, 1, "SAME")[0]
    return tf.clip_by_value(image + noise, 0.0, 1.0)


def jpeg_artifacts(image: tf.Tensor) -> tf.Tensor:
    """Re-encode as a JPEG of quality 25 to 85."""
    quality = tf.random.uniform((), 25, 85, dtype=tf.int32)
    return tf.image.adjust_jpeg_quality(image, quality)


def scratches(image: tf.Tensor) -> tf.Tensor:
    """A few thin bright or dark vertical lines of random length, as on worn negatives and prints."""
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    columns = tf.random.uniform((3,), 0, width, dtype=tf.int32)
    mask = tf.reduce_max(tf.one_hot(columns, width), axis=0)  # (W,)
    start = tf.random.uniform((), 0, height // 2, dtype=tf.int32)
    length = tf.random.uniform((), height // 4, height, dtype=tf.int32)
    rows = tf.cast((tf.range(height) >= start) & (tf.range(height) < start + length), tf.float32)
    lines = (rows[:, None] * mask[None, :])[:, :, None]
    value = tf.cast(tf.random.uniform(()) < 0.7, tf.float32)  # mostly white scratches
    return image * (1 - lines) + value * lines


def degrade_lightness(image: tf.Tensor) -> tf.Tensor:
    """A random mix of the degradations above, for one training input (its static shape kept)."""
    shape = image.shape
    for degradation in (fade, blur, grain, scratches, jpeg_artifacts):
        image = _maybe(degradation, image)
    return tf.ensure_shape(image, shape)
