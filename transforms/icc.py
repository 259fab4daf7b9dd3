"""A scan's own ICC profile, through littleCMS (Pillow's ImageCms): its true CIELAB lightness.

OpenCV decodes the pixels and drops the profile. A gray scan tagged `Gray-CIE_L`, Gray Gamma 1.8 or a
dot-gain curve, or a toned scan in Adobe RGB or ProPhoto, read as if it were sRGB would give the model,
and the result, a lightness the scan does not have. Here littleCMS converts each sample value into L
(relative colorimetric, into the linear gray profile shipped in `transforms/profiles`, which gives Y at
16 bits; L follows from Y by the CIE formula, never by inverting a curve), once per profile:

- gray: a table of L for every 16-bit value (8-bit samples index it at value * 257): any curve is exact;
- a gray scan with an RGB profile (written so by some scanners) is that RGB space's gray, R = G = B;
- RGB: matrix-shaper profiles only (sRGB, Adobe RGB, ProPhoto, ...), where Y is the sum of what each
  channel gives on its own: one table of Y per channel, from littleCMS at every 8-bit value and
  interpolated linearly between them for 16-bit samples (within 0.2 L of the exact curve, near black,
  where littleCMS's 16-bit Y is coarsest). L is taken from the profile's own (D50) Y, so a profile that
  describes sRGB itself is read by `transforms.lab.luminance` instead, exactly as an untagged scan.

A profile that cannot be used (corrupt, CMYK or Lab, a gray one on a color scan, an RGB one built from
lookup tables) raises UnusableProfile with the reason; the caller reads the scan as sRGB and says why.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

from transforms.lab import RgbSpace, lightness_from_y, luminance, row_strips

_PROFILES = Path(__file__).with_name("profiles")
_LINEAR_GRAY = _PROFILES / "Gray.icc"  # gray of gamma 1.0: value / 65535 = Y


class UnusableProfile(ValueError):
    """An embedded ICC profile that cannot be used for this scan; the message says why."""


def srgb_profile() -> bytes:
    """littleCMS's own sRGB profile, embedded in every sRGB output."""
    return _srgb_profile_bytes()


# --output_profile: the profile file (transforms/profiles) and its curve's gamma; sRGB is littleCMS's own.
OUTPUT_PROFILES = {
    "srgb": None,
    "adobe-rgb": ("compatibleWithAdobeRGB1998.icc", 563 / 256),
    "prophoto": ("ProPhoto-RGB.icc", 1.8),
}


def output_profile(name: str) -> tuple[bytes, RgbSpace | None]:
    """The ICC profile of an --output_profile and its RgbSpace (None for sRGB, `recombine_luminance`'s own).

    The space's matrix is the profile's own colorants (read by littleCMS), so the pixels mean what
    the embedded profile says they do.
    """
    if OUTPUT_PROFILES[name] is None:
        return srgb_profile(), None
    file_name, gamma = OUTPUT_PROFILES[name]
    data = (_PROFILES / file_name).read_bytes()
    profile = _open(data).profile
    colorants = tuple(colorant[0] for colorant in (profile.red_colorant, profile.green_colorant, profile.blue_colorant))
    return data, RgbSpace(name, colorants, gamma)


@functools.cache
def _srgb_profile_bytes() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def profile_description(icc: bytes) -> str:
    """The profile's own description (its `desc` tag), or UnusableProfile if it cannot be parsed."""
    return _open(icc).profile.profile_description.strip() or "(no description)"


def _open(icc: bytes) -> ImageCms.ImageCmsProfile:
    try:
        return ImageCms.ImageCmsProfile(io.BytesIO(icc))
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError) as error:
        raise UnusableProfile(f"ICC profile not readable ({error})") from error


def lightness_profile(icc: bytes, channels: int) -> bytes | None:
    """The profile to read a scan of `channels` (1 gray, 3 color) through; None where it is sRGB's own.

    UnusableProfile if it cannot be used. Builds the tables `profile_lightness` uses, so a profile
    that passes here cannot fail there.
    """
    tables = _tables(icc, channels)
    srgb = _tables(_srgb_profile_bytes(), 3)
    if channels == 1:
        return None if np.abs(tables[0] - lightness_from_y(srgb.sum(axis=0))).max() < 0.2 else icc
    return None if np.abs(tables - srgb).max() < 2e-4 else icc


def profile_lightness(pixels: np.ndarray, icc: bytes | None) -> np.ndarray:
    """CIELAB L of gray (H, W) or BGR (H, W, 3) samples, uint8 or uint16, through their profile.

    Without a profile, the sRGB L of `transforms.lab.luminance`. Strip by strip (`row_strips`).
    """
    if icc is None:
        return luminance(pixels)
    tables = _tables(icc, 1 if pixels.ndim == 2 else 3)
    lightness = np.empty(pixels.shape[:2], np.float32)
    for rows in row_strips(*pixels.shape[:2]):
        lightness[rows] = _strip_lightness(pixels[rows], tables)
    return lightness


def _strip_lightness(pixels: np.ndarray, tables: np.ndarray) -> np.ndarray:
    """Gray: L straight from its table. BGR: Y summed from the R, G and B tables (rows 0-2), then L."""
    index = pixels.astype(np.int32) * 257 if pixels.dtype == np.uint8 else pixels
    if pixels.ndim == 2:
        return tables[0][index]
    y = tables[0][index[..., 2]] + tables[1][index[..., 1]] + tables[2][index[..., 0]]
    return lightness_from_y(y)


@functools.lru_cache(maxsize=16)
def _tables(icc: bytes, channels: int) -> np.ndarray:
    """The lookup tables of one profile: (1, 65536) L for gray, (3, 65536) Y of R, G and B for color."""
    profile = _open(icc)
    space = profile.profile.xcolor_space.strip()
    if space not in ("GRAY", "RGB") or (space == "GRAY" and channels == 3):
        scan = "gray" if channels == 1 else "color"
        raise UnusableProfile(f"ICC profile is for {space or 'an unknown color space'}, not for this {scan} scan")
    if space == "RGB" and not profile.profile.is_matrix_shaper:
        raise UnusableProfile("RGB ICC profile built from lookup tables (not matrix/curves): not supported")
    target = ImageCms.ImageCmsProfile(str(_LINEAR_GRAY))
    try:
        if space == "GRAY":
            every_value = Image.fromarray(np.arange(65536, dtype=np.uint16).reshape(256, 256))
            return lightness_from_y(_to_y(profile, target, "I;16", every_value)).reshape(1, -1)
        ramps = np.zeros((3, 256, 3), np.uint8)  # R alone, G alone, B alone, each at every 8-bit value
        for channel in range(3):
            ramps[channel, :, channel] = np.arange(256)
        y = _to_y(profile, target, "RGB", Image.fromarray(ramps))
        tables = np.stack([np.interp(np.arange(65536) / 257.0, np.arange(256), row) for row in y]).astype(np.float32)
        return tables if channels == 3 else lightness_from_y(tables.sum(axis=0)).reshape(1, -1)
    except ImageCms.PyCMSError as error:
        raise UnusableProfile(f"littleCMS cannot use the ICC profile ({error})") from error


def _to_y(
    profile: ImageCms.ImageCmsProfile, target: ImageCms.ImageCmsProfile, mode: str, image: Image.Image
) -> np.ndarray:
    """Relative luminance Y of every pixel of `image`, through littleCMS into linear gray at 16 bits."""
    transform = ImageCms.buildTransform(
        profile, target, mode, "I;16", renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC
    )
    converted = ImageCms.applyTransform(image, transform)
    return np.asarray(converted, np.float32) / 65535.0
