""" "Old photo" degradations applied to the model's input L during training.

Archive scans are grainy, soft, faded, scratched and often JPEG-compressed; a model
trained on clean L only has never seen that. Each degradation is applied with
probability 0.5, to the input only: the target colors stay clean.
All functions take L / 100 of one crop as a (H, W, 1) float32 array and a random
generator, and return a new array of that shape: NumPy and OpenCV only, so training
runs on any Keras backend.
"""

from __future__ import annotations

import cv2
import numpy as np


def fade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lower contrast around a lifted black and a dimmed white, as in faded prints."""
    contrast = rng.uniform(0.55, 1.0)
    offset = rng.uniform(-0.08, 0.15)
    return np.clip(0.5 + (image - 0.5) * contrast + offset * (1 - contrast), 0.0, 1.0)


def blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur, sigma 0.5 to 1.8 pixels: soft lenses and scanning."""
    sigma = rng.uniform(0.5, 1.8)
    blurred = cv2.GaussianBlur(image, (9, 9), sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)
    return blurred.reshape(image.shape)


def grain(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Film grain: Gaussian noise, slightly smoothed so it is not per-pixel white noise."""
    noise = rng.normal(0.0, rng.uniform(0.01, 0.05), image.shape[:2]).astype(np.float32)
    noise = cv2.blur(noise, (2, 2))
    return np.clip(image + noise[:, :, None], 0.0, 1.0)


def jpeg_artifacts(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Re-encode as a JPEG of quality 25 to 85."""
    quality = int(rng.integers(25, 85))
    pixels = np.round(image[:, :, 0] * 255).astype(np.uint8)
    _, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)
    return (decoded.astype(np.float32) / 255)[:, :, None]


def scratches(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A few thin bright or dark vertical lines of random length, as on worn negatives and prints."""
    height, width = image.shape[:2]
    columns = rng.integers(0, width, 3)
    start = rng.integers(0, height // 2)
    length = rng.integers(height // 4, height)
    value = 1.0 if rng.random() < 0.7 else 0.0  # mostly white scratches
    scratched = image.copy()
    scratched[start : start + length, columns] = value
    return scratched


def degrade_lightness(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random mix of the degradations above, for one training input; the input is left as it was."""
    image = image.astype(np.float32)
    for degradation in (fade, blur, grain, scratches, jpeg_artifacts):
        if rng.random() < 0.5:
            image = degradation(image, rng)
    return image
