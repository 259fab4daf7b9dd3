"""CIELAB (D65, sRGB) at full resolution: the exact L of a scan, and a/b put back on it within sRGB.

The model only ever sees a small copy of the luminance; everything the user keeps (the
luminance of the result, its size, its bit depth) comes from the full-resolution scan.
The pipeline and training share these functions, so both see exactly the same values.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

L_SCALE = 100.0  # model input is L / L_SCALE, in [0, 1]
AB_SCALE = 128.0  # model output is ab / AB_SCALE, in [-1, 1]
AB_MIN, AB_MAX = -128.0, 127.0
# The full-resolution steps go strip by strip (`row_strips`), so their temporary arrays take the
# memory of one strip of this many pixels instead of many bytes per pixel of the whole scan.
STRIP_PIXELS = 1 << 20


def row_strips(height: int, width: int) -> Iterator[slice]:
    """Slices of rows that cover an image in strips of about STRIP_PIXELS pixels.

    The full-resolution steps go strip by strip, so their temporary arrays take the memory of
    one strip instead of many bytes per pixel of the whole scan.
    """
    rows = max(1, STRIP_PIXELS // max(width, 1))
    return (slice(top, min(top + rows, height)) for top in range(0, height, rows))


# sRGB (D65) <-> CIELAB, as in IEC 61966-2-1 and CIE 15. OpenCV's float conversion
# works from lookup tables that quantize L to steps of about 0.15 (some 600 levels),
# which would throw away what a 16-bit scan holds, so the formulas are written out here.
_RGB_TO_XYZ = np.array(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)
_D65_WHITE = np.array([0.95047, 1.0, 1.08883])
_RGB_TO_XYZ_NORMALIZED = (_RGB_TO_XYZ / _D65_WHITE[:, None]).T.astype(np.float32)
_XYZ_TO_RGB_NORMALIZED = np.linalg.inv(_RGB_TO_XYZ / _D65_WHITE[:, None]).T.astype(np.float32)
_EPSILON, _KAPPA = 216.0 / 24389.0, 24389.0 / 27.0


def _power(value: np.ndarray, exponent: float) -> np.ndarray:
    """value ** exponent for positive float32 arrays; OpenCV's is several times faster than NumPy's."""
    return cv2.pow(np.ascontiguousarray(value, np.float32).reshape(-1, 1), exponent).reshape(value.shape)


def _srgb_to_linear(value: np.ndarray) -> np.ndarray:
    return np.where(value <= 0.04045, value / 12.92, _power((np.maximum(value, 0.04045) + 0.055) / 1.055, 2.4))


def _linear_to_srgb(value: np.ndarray) -> np.ndarray:
    """Values outside [0, 1] stay outside, so callers can see what sRGB cannot show."""
    return np.where(value <= 0.0031308, value * 12.92, 1.055 * _power(np.maximum(value, 0.0031308), 1 / 2.4) - 0.055)


def lightness_from_y(y: np.ndarray) -> np.ndarray:
    """CIELAB L of relative luminance Y (white 1), float32."""
    y = np.ascontiguousarray(y, np.float32)
    return np.where(y > _EPSILON, 116.0 * _power(np.maximum(y, _EPSILON), 1 / 3) - 16.0, _KAPPA * y).astype(np.float32)


@functools.cache
def _linear_table(bit_depth: int) -> np.ndarray:
    """Linear-light value of every integer sample value of a bit depth."""
    peak = (1 << bit_depth) - 1
    return _srgb_to_linear(np.arange(peak + 1, dtype=np.float32) / peak).astype(np.float32)


def bgr_to_lab(bgr: np.ndarray) -> np.ndarray:
    """Float BGR in [0, 1] to CIELAB (L in [0, 100], a/b roughly in [-128, 127]), float32."""
    xyz = _srgb_to_linear(bgr[..., ::-1].astype(np.float32)) @ _RGB_TO_XYZ_NORMALIZED
    f = np.where(xyz > _EPSILON, np.cbrt(xyz), (_KAPPA * xyz + 16.0) / 116.0)
    lab = np.stack(
        [lightness_from_y(xyz[..., 1]), 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], axis=-1
    )
    return lab.astype(np.float32)


def lab_to_bgr(lab: np.ndarray) -> np.ndarray:
    """CIELAB to float BGR, not clipped: colors outside sRGB come out below 0 or above 1."""
    return _linear_to_srgb(_lab_to_linear_bgr(lab)).astype(np.float32)


def _lab_to_linear_bgr(lab: np.ndarray) -> np.ndarray:
    """CIELAB to linear-light BGR, not clipped (outside [0, 1] exactly where sRGB is, too)."""
    return (_normalized_xyz(lab) @ _XYZ_TO_RGB_NORMALIZED)[..., ::-1]


def _normalized_xyz(lab: np.ndarray) -> np.ndarray:
    """CIELAB to XYZ divided by the D65 white, float32."""
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    cube = f * f * f
    xyz = np.where(cube > _EPSILON, cube, (116.0 * f - 16.0) / _KAPPA)
    xyz[..., 1] = np.where(lab[..., 0] > _KAPPA * _EPSILON, cube[..., 1], lab[..., 0] / _KAPPA)
    return xyz.astype(np.float32)


# Bradford's cone response (CIE), to adapt D65 colors to the D50 white of ICC profiles.
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
_D50_WHITE = np.array([0.9642, 1.0, 0.8249])


@dataclass(frozen=True)
class RgbSpace:
    """An output RGB space other than sRGB: its D50 colorants (the columns of its ICC profile's matrix,
    linear RGB to XYZ) and the gamma of its curve. Colors are put into it with `recombine_luminance`."""

    name: str
    colorants: tuple[tuple[float, float, float], ...]  # red, green, blue: XYZ (D50) of each at full value
    gamma: float

    @functools.cached_property
    def from_normalized_xyz(self) -> np.ndarray:
        """(3, 3): XYZ divided by the D65 white (a row) @ this = linear RGB; D65 adapted to D50 (Bradford)."""
        cones = _BRADFORD @ _D50_WHITE / (_BRADFORD @ _D65_WHITE)
        adapt = np.linalg.inv(_BRADFORD) @ np.diag(cones) @ _BRADFORD
        to_linear = np.linalg.inv(np.array(self.colorants).T) @ adapt @ np.diag(_D65_WHITE)
        return to_linear.T.astype(np.float32)

    def linear(self, lab: np.ndarray) -> np.ndarray:
        """CIELAB (N, 3) to the space's linear RGB, not clipped."""
        return _normalized_xyz(lab) @ self.from_normalized_xyz

    def outside(self, lab: np.ndarray, tolerance: float = 1e-5) -> np.ndarray:
        """Which of the (N, 3) Lab pixels this space cannot show."""
        linear = self.linear(lab)
        return np.any((linear < -tolerance) | (linear > 1.0 + tolerance), axis=-1)


_Y_FROM_BGR = _RGB_TO_XYZ[1:2, ::-1].astype(np.float32)


def luminance(pixels: np.ndarray) -> np.ndarray:
    """CIELAB L of a gray or color scan at full resolution; toned scans keep only this.

    Only Y is needed: a gray scan maps each sample value straight to its L through a
    lookup table, a color scan linearizes through one, which makes this many times
    faster than a full Lab conversion on large scans. Strip by strip (`row_strips`).
    """
    lightness = np.empty(pixels.shape[:2], np.float32)
    for rows in row_strips(*pixels.shape[:2]):
        lightness[rows] = _strip_luminance(pixels[rows])
    return lightness


def _strip_luminance(pixels: np.ndarray) -> np.ndarray:
    bit_depth = 16 if pixels.dtype == np.uint16 else 8
    if pixels.ndim == 2:  # gray: R = G = B, and the Y weights sum to 1
        return _table_lookup(pixels, _lightness_table(bit_depth))
    y = cv2.transform(_table_lookup(pixels, _linear_table(bit_depth)), _Y_FROM_BGR)
    return lightness_from_y(y.reshape(pixels.shape[:2]))


@functools.cache
def _lightness_table(bit_depth: int) -> np.ndarray:
    """L of every integer gray value of a bit depth."""
    return lightness_from_y(_linear_table(bit_depth))


def _table_lookup(pixels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """table[pixels]; OpenCV's LUT (8-bit samples only) is several times faster than NumPy indexing."""
    if pixels.dtype == np.uint8:
        return cv2.LUT(pixels, table)
    return table[pixels]


def _outside_srgb(lab: np.ndarray, tolerance: float = 1e-5) -> np.ndarray:
    """Which of the (N, 3) Lab pixels sRGB cannot show (tested in linear light: no gamma needed)."""
    linear = _lab_to_linear_bgr(lab)
    return np.any((linear < -tolerance) | (linear > 1.0 + tolerance), axis=-1)


_BOUND_MARGIN = 1e-5


def recombine_luminance(lightness: np.ndarray, ab: np.ndarray, space: RgbSpace | None = None) -> np.ndarray:
    """Put predicted a/b on the original L and convert to float BGR in [0, 1], of sRGB or of `space`.

    Colours that fall outside sRGB have their chroma reduced (hue and L kept) instead of
    having R, G, B clipped, which would change the luminance the archivist's scan
    already has. OpenCV converts the whole image (within 0.0004 of the exact formula,
    a tenth of an 8-bit step) and clips what it cannot show to 0 or 1; only the pixels
    at those bounds are worked out again exactly. In another `space` the same is done in its own
    linear RGB (exactly, pixel by pixel; chroma found by bisection where it does not fit).
    """
    if space is not None:
        return _recombine_in(space, lightness, ab)
    lab = cv2.merge([lightness.astype(np.float32), ab.astype(np.float32)])
    bgr = cv2.cvtColor(lab, cv2.COLOR_Lab2BGR)
    inside = cv2.inRange(bgr, (_BOUND_MARGIN,) * 3, (1.0 - _BOUND_MARGIN,) * 3)
    at_bounds = np.flatnonzero(inside.ravel() == 0)
    if at_bounds.size:
        fitted = _reduce_chroma_into_srgb(lab.reshape(-1, 3)[at_bounds])
        bgr.reshape(-1, 3)[at_bounds] = np.clip(lab_to_bgr(fitted), 0.0, 1.0)
    return bgr


def _recombine_in(space: RgbSpace, lightness: np.ndarray, ab: np.ndarray) -> np.ndarray:
    lab = np.concatenate([lightness[..., None], ab], axis=-1).reshape(-1, 3).astype(np.float32)
    linear = space.linear(lab)
    over = np.flatnonzero(space.outside(lab))
    if over.size:
        scale = _largest_scale_inside(lab[over, :1], lab[over, 1:], 1.0, 16, space.outside)
        linear[over] = space.linear(np.concatenate([lab[over, :1], lab[over, 1:] * scale[:, None]], axis=-1))
    encoded = _power(np.clip(linear, 0.0, 1.0), 1.0 / space.gamma)
    return np.ascontiguousarray(encoded[:, ::-1].reshape(*lightness.shape, 3))


_TABLE_L_STEP, _TABLE_HUE_STEP = 0.25, 0.5  # CIELAB L units, degrees of hue
_TABLE_MARGIN = 0.999  # covers how far interpolating the table overshoots the curved boundary, nearly everywhere


def _reduce_chroma_into_srgb(lab: np.ndarray) -> np.ndarray:
    """(N, 3) Lab pixels with the chroma of those sRGB cannot show cut to the most it can.

    The largest chroma of each lightness and hue comes from a table (see
    `_max_chroma_table`), less 0.1 % for interpolating it (a color difference of
    about 0.1, far below what the eye sees); bisection handles any pixel still outside.
    """
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    limit = _max_chroma(lab[:, 0], np.degrees(np.arctan2(lab[:, 2], lab[:, 1])))
    fitted = lab.astype(np.float32)
    fitted[:, 1:] *= np.minimum(1.0, _TABLE_MARGIN * limit / np.maximum(chroma, 1e-6))[:, None]
    over = np.flatnonzero(_outside_srgb(fitted))
    if over.size:  # where the gamut surface bulges out more than the margin allows (rare)
        fitted[over, 1:] *= _largest_scale_inside(fitted[over, :1], fitted[over, 1:], 1.0, 10)[:, None]
    return fitted


@functools.cache
def _max_chroma_table() -> np.ndarray:
    """The largest chroma sRGB can show, float32 (L 0..100 rows, hue 0..360 degrees columns).

    Computed once per process: 289,000 bisections of 24 steps.
    """
    lightness = np.arange(0.0, 100.0 + _TABLE_L_STEP / 2, _TABLE_L_STEP, dtype=np.float32)
    hue = np.radians(np.arange(0.0, 360.0, _TABLE_HUE_STEP, dtype=np.float32))
    rows, columns = np.meshgrid(lightness, hue, indexing="ij")
    hue_directions = np.stack([np.cos(columns.ravel()), np.sin(columns.ravel())], axis=-1)
    limit = _largest_scale_inside(rows.reshape(-1, 1), hue_directions, 200.0, 24)
    return limit.reshape(rows.shape).astype(np.float32)


def _max_chroma(lightness: np.ndarray, hue_degrees: np.ndarray) -> np.ndarray:
    """The table's largest chroma at each (L, hue), interpolated bilinearly; hue wraps around."""
    table = _max_chroma_table()
    rows = np.clip(lightness / _TABLE_L_STEP, 0, table.shape[0] - 1)
    top = np.minimum(rows.astype(np.int32), table.shape[0] - 2)
    columns = (hue_degrees % 360.0) / _TABLE_HUE_STEP
    left = columns.astype(np.int32) % table.shape[1]
    right = (left + 1) % table.shape[1]
    down, across = rows - top, columns - np.floor(columns)
    upper = table[top, left] * (1 - across) + table[top, right] * across
    lower = table[top + 1, left] * (1 - across) + table[top + 1, right] * across
    return upper * (1 - down) + lower * down


def _largest_scale_inside(
    lightness: np.ndarray, ab: np.ndarray, largest: float, steps: int, outside=_outside_srgb
) -> np.ndarray:
    """Per pixel, the largest s in [0, largest] for which (L, s * a, s * b) is inside sRGB (bisection).

    The answer is inside, and within largest / 2**steps of the boundary. `outside` tests another space.
    """
    low = np.zeros(len(lightness), np.float32)
    high = np.full_like(low, largest)
    for _ in range(steps):
        middle = (low + high) / 2
        rejected = outside(np.concatenate([lightness, ab * middle[:, None]], axis=-1))
        low, high = np.where(rejected, low, middle), np.where(rejected, middle, high)
    return low
