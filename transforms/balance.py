"""The cast of a color photo's near-neutral surfaces, and the photo with that cast taken out.

A model sees only the luminance, which does not show the light a photo was taken under: a
tungsten-lit room, a yellowed print or a camera's warm white balance tint every white wall and
gray suit alike. Trained on such photos as they are, a model learns the tint as the color of
walls and paints it on every scan (the cream cast). Gray-world white balance (Buchsbaum, 1980)
restricted to the pixels that are nearly neutral already (a wall, a shirt, a cloud; vivid
surfaces such as a sunset or a lawn would pull a whole-image gray world towards their opposite)
estimates that tint; training can then take it out of its targets.
"""

from __future__ import annotations

import numpy as np

NEAR_NEUTRAL_CHROMA = 6.0  # CIELAB chroma below which a pixel counts as a near-neutral surface
LIGHTNESS_RANGE = (15.0, 97.0)  # black and blown-out pixels carry no color to measure
MIN_NEAR_NEUTRAL_SHARE = 0.05  # with fewer near-neutral pixels than this, the cast is unknown: zero


def near_neutral_cast(lightness: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """The mean a/b (CIELAB units) of a photo's near-neutral pixels; zeros where there are too few.

    lightness is CIELAB L (0-100), shape (H, W); ab is CIELAB a/b, shape (H, W, 2).
    """
    chroma = np.hypot(ab[..., 0], ab[..., 1])
    near_neutral = (chroma < NEAR_NEUTRAL_CHROMA) & (lightness > LIGHTNESS_RANGE[0]) & (lightness < LIGHTNESS_RANGE[1])
    if near_neutral.mean() < MIN_NEAR_NEUTRAL_SHARE:
        return np.zeros(2, np.float32)
    return ab[near_neutral].mean(axis=0).astype(np.float32)


def without_cast(lightness: np.ndarray, ab: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """ab with strength times its near-neutral cast subtracted from every pixel (a shift of the white point)."""
    return (ab - strength * near_neutral_cast(lightness, ab)).astype(ab.dtype)
