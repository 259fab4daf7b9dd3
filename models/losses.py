"""Reconstruction losses on a/b / 128 (range [-1, 1]), as explored by the original research."""

from __future__ import annotations

import tensorflow as tf

AB_RANGE = 2.0  # tanh output spans [-1, 1]


def mae(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(tf.abs(tf.cast(y_true, tf.float32) - tf.cast(y_pred, tf.float32)))


def psnr_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Negative PSNR, scaled so that its gradients are of the order of MAE's."""
    psnr = tf.image.psnr(tf.cast(y_true, tf.float32), tf.cast(y_pred, tf.float32), max_val=AB_RANGE)
    return -tf.reduce_mean(psnr) / 50.0


def ssim_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """1 - SSIM (11x11 Gaussian window), computed on each of a and b."""
    ssim = tf.image.ssim(tf.cast(y_true, tf.float32), tf.cast(y_pred, tf.float32), max_val=AB_RANGE)
    return 1.0 - tf.reduce_mean(ssim)


def mae_psnr_ssim(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    return mae(y_true, y_pred) + psnr_loss(y_true, y_pred) + ssim_loss(y_true, y_pred)


LOSSES = {"mae": mae, "psnr": psnr_loss, "ssim": ssim_loss, "mae+psnr+ssim": mae_psnr_ssim}
