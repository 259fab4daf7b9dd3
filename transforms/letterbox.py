"""Letterbox geometry: a scan fitted into the model's square grid, and its prediction cut back out.

The model sees a small square copy of the L channel with the scan centered in it (the border
repeats the edge); `Letterbox` records where, so the predicted a/b can be cut out and
upsampled to the scan's full size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from transforms.lab import AB_MAX, AB_MIN, AB_SCALE, L_SCALE


@dataclass(frozen=True)
class Letterbox:
    """Where a resized image sits inside the square model grid."""

    top: int
    left: int
    height: int
    width: int


def letterbox(channel: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """Fit an image into a size x size square without changing its aspect ratio.

    The border is filled by repeating the edge, so the model sees no artificial
    black frame; `Letterbox` says where the image is so its prediction can be cut out.
    """
    height, width = channel.shape[:2]
    scale = size / max(height, width)
    new_height = min(size, max(1, round(height * scale)))
    new_width = min(size, max(1, round(width * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(channel, (new_width, new_height), interpolation=interpolation)
    top, left = (size - new_height) // 2, (size - new_width) // 2
    padded = cv2.copyMakeBorder(
        resized, top, size - new_height - top, left, size - new_width - left, cv2.BORDER_REPLICATE
    )
    return padded, Letterbox(top, left, new_height, new_width)


def model_input(lightness: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """The model's (size, size, 1) input for a full-resolution L channel: L / 100, letterboxed."""
    grid, box = letterbox(lightness, size)
    return (grid / L_SCALE).astype(np.float32)[:, :, None], box


def restore_ab(prediction: np.ndarray, box: Letterbox, height: int, width: int) -> np.ndarray:
    """Cut the image out of a (size, size, 2) prediction, clip to Lab range, upsample to full size."""
    return ab_rows(prediction, box, height, width)(slice(0, height))


def ab_rows(prediction: np.ndarray, box: Letterbox, height: int, width: int) -> Callable[[slice], np.ndarray]:
    """The full-size a/b of a prediction, for any slice of rows: bilinear upsampling one strip at a time.

    The small crop is interpolated across to the full width once; each row is then a blend of
    two of its rows, so any strip is exactly those rows of the whole image. Bilinear upsampling
    cannot overshoot, so clipping the small crop is enough.
    """
    crop = prediction[box.top : box.top + box.height, box.left : box.left + box.width].astype(np.float32)
    crop = np.clip(crop * AB_SCALE, AB_MIN, AB_MAX)
    across = cv2.resize(crop, (width, crop.shape[0]), interpolation=cv2.INTER_LINEAR).reshape(-1, width, 2)
    source = np.clip((np.arange(height, dtype=np.float32) + 0.5) * (crop.shape[0] / height) - 0.5, 0, None)
    above = np.minimum(source.astype(np.int32), crop.shape[0] - 1)
    below = np.minimum(above + 1, crop.shape[0] - 1)
    weight = (source - above)[:, None, None]

    def rows(selected: slice) -> np.ndarray:
        start = across[above[selected]]
        blended = across[below[selected]]  # start + (end - start) * weight, in place: no temporary strips
        blended -= start
        blended *= weight[selected]
        blended += start
        return blended

    return rows
