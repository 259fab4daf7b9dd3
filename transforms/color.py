"""Decoding scans and moving between sRGB and CIELAB.

The model only ever sees a small copy of the luminance; everything the user keeps
(the luminance of the result, its size, its bit depth) comes from the full-resolution
scan. These functions are shared by the pipeline and by training so that both see
exactly the same inputs.
"""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

# Pillow only reads headers here, and its own decompression-bomb guard would refuse large
# scans before --max_pixels is even looked at; the pipeline applies --max_pixels instead.
Image.MAX_IMAGE_PIXELS = None
# Peak memory of colorizing one scan, per pixel, above the process's own: the most python -m
# benchmarks.memory measured (16-bit RGB, 24.5; 8-bit gray 7.3), with the full-resolution steps
# working on strips of STRIP_PIXELS (see `row_strips`).
PEAK_BYTES_PER_PIXEL = 25
STRIP_PIXELS = 1 << 20

L_SCALE = 100.0  # model input is L / L_SCALE, in [0, 1]
AB_SCALE = 128.0  # model output is ab / AB_SCALE, in [-1, 1]
AB_MIN, AB_MAX = -128.0, 127.0

# Output formats we encode, with the extension written for each.
FORMAT_EXTENSIONS = {"png": ".png", "jpg": ".jpg", "tiff": ".tiff", "webp": ".webp", "bmp": ".bmp"}
_EXTENSION_FORMATS = {
    ".png": "png",
    ".jpg": "jpg",
    ".jpeg": "jpg",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".webp": "webp",
    ".bmp": "bmp",
}
_SIXTEEN_BIT_FORMATS = {"png", "tiff"}
# The one list of file name extensions read as images (scans, ground truth, training photos): what
# decode_scan decodes. Other files under --input are skipped without being read.
IMAGE_SUFFIXES = frozenset({*_EXTENSION_FORMATS, ".jpe", ".dib", ".gif", ".jp2", ".pbm", ".pgm", ".ppm", ".pnm"})


def has_image_suffix(path: str) -> bool:
    """Whether a file name ends in one of IMAGE_SUFFIXES (any case)."""
    _, dot, extension = path.rpartition("/")[2].rpartition(".")
    return bool(dot) and f".{extension.lower()}" in IMAGE_SUFFIXES


def machine_memory() -> int:
    """Bytes of memory this process may use: the machine's, or its container's (cgroup v2) limit if lower."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        with open("/sys/fs/cgroup/memory.max") as limit:
            return min(memory, int(limit.read()))
    except (OSError, ValueError):  # no cgroup v2, or "max"
        return memory


def default_max_pixels() -> int:
    """The default --max_pixels: scans that need at most a quarter of this machine's memory.

    A quarter, because a worker holds several scans at once (a batch, and one per thread).
    """
    return machine_memory() // (4 * PEAK_BYTES_PER_PIXEL)


def row_strips(height: int, width: int) -> Iterator[slice]:
    """Slices of rows that cover an image in strips of about STRIP_PIXELS pixels.

    The full-resolution steps go strip by strip, so their temporary arrays take the memory of
    one strip instead of many bytes per pixel of the whole scan.
    """
    rows = max(1, STRIP_PIXELS // max(width, 1))
    return (slice(top, min(top + rows, height)) for top in range(0, height, rows))


class ScanDecodeError(ValueError):
    """A file that cannot be read as an image; the message is shown to the user."""


@dataclass(frozen=True)
class DecodedScan:
    """A decoded scan: gray (H, W) or BGR (H, W, 3), uint8 or uint16, alpha already on white."""

    pixels: np.ndarray
    input_channels: int

    @property
    def bit_depth(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]


@dataclass(frozen=True)
class Letterbox:
    """Where a resized image sits inside the square model grid."""

    top: int
    left: int
    height: int
    width: int


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from the file's header alone, without decoding; None if unknown."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:  # noqa: BLE001 - not a format Pillow knows: the decoder will say what is wrong
        return None


def decode_scan(data: bytes, max_pixels: int | None = None) -> DecodedScan:
    """Decode image bytes keeping their bit depth.

    An image whose header claims more than `max_pixels` (default: `default_max_pixels()`) is
    refused before any pixel is decoded, so a huge or malicious file cannot exhaust memory. JPEGs are decoded with
    their EXIF orientation applied; other formats keep their alpha channel, which is
    composited on white so transparent areas do not turn into arbitrary colours.
    """
    if not data:
        raise ScanDecodeError("file is empty (0 bytes)")
    size = header_size(data)
    max_pixels = max_pixels or default_max_pixels()
    if size and size[0] * size[1] > max_pixels:
        width, height = size
        raise ScanDecodeError(
            f"image too large: its header says {width} x {height} pixels ({width * height / 1e6:.0f} megapixels), "
            f"more than --max_pixels ({max_pixels / 1e6:.0f} megapixels); not decoded"
        )
    buffer = np.frombuffer(data, np.uint8)
    is_jpeg = data[:3] == b"\xff\xd8\xff"
    flags = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR if is_jpeg else cv2.IMREAD_UNCHANGED
    try:
        pixels = cv2.imdecode(buffer, flags)
    except cv2.error as error:
        raise ScanDecodeError(f"OpenCV could not decode the image: {error.err or error}") from error
    if pixels is None or pixels.size == 0:
        raise ScanDecodeError(
            "not a readable image: the content is not a supported image format "
            "(JPEG, PNG, TIFF, BMP, WebP) or the file is corrupt"
        )
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ScanDecodeError(f"unsupported sample type {pixels.dtype}: only 8- and 16-bit images are supported")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    input_channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if input_channels == 4:
        pixels = _composite_on_white(pixels)
    elif input_channels not in (1, 3):
        raise ScanDecodeError(f"unsupported number of channels: {input_channels}")
    return DecodedScan(pixels=pixels, input_channels=input_channels)


_REDUCED_JPEG_DECODES = {8: cv2.IMREAD_REDUCED_COLOR_8, 4: cv2.IMREAD_REDUCED_COLOR_4, 2: cv2.IMREAD_REDUCED_COLOR_2}


def decode_preview(data: bytes, min_height: int) -> np.ndarray:
    """8-bit BGR of an image for a thumbnail at least `min_height` pixels tall.

    A JPEG is decoded at 1/8, 1/4 or 1/2 scale where that is still tall enough (libjpeg
    scales while decoding), so previews of large scans cost a fraction of a full decode;
    other images are shrunk before they are converted (to floats, 12 bytes a pixel).
    """
    size = header_size(data)
    if data[:3] == b"\xff\xd8\xff" and size:
        factor = next((factor for factor in _REDUCED_JPEG_DECODES if min(size) // factor >= min_height), None)
        if factor:
            pixels = cv2.imdecode(np.frombuffer(data, np.uint8), _REDUCED_JPEG_DECODES[factor])
            if pixels is not None:
                return pixels
    pixels = decode_scan(data).pixels
    scale = min_height / min(pixels.shape[:2])
    if scale < 1:
        size = (max(1, round(pixels.shape[1] * scale)), max(1, round(pixels.shape[0] * scale)))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    return quantize(to_float_bgr(pixels), 8)


def _composite_on_white(bgra: np.ndarray) -> np.ndarray:
    peak = float(np.iinfo(bgra.dtype).max)
    alpha = bgra[:, :, 3:].astype(np.float32) / peak
    bgr = bgra[:, :, :3].astype(np.float32) * alpha + peak * (1.0 - alpha)
    return np.round(bgr).astype(bgra.dtype)


def to_float_bgr(pixels: np.ndarray) -> np.ndarray:
    """Gray or BGR integers to float32 BGR in [0, 1]."""
    scaled = pixels.astype(np.float32) / float(np.iinfo(pixels.dtype).max)
    return cv2.cvtColor(scaled, cv2.COLOR_GRAY2BGR) if scaled.ndim == 2 else scaled


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


def _lightness_from_y(y: np.ndarray) -> np.ndarray:
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
        [_lightness_from_y(xyz[..., 1]), 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], axis=-1
    )
    return lab.astype(np.float32)


def lab_to_bgr(lab: np.ndarray) -> np.ndarray:
    """CIELAB to float BGR, not clipped: colours outside sRGB come out below 0 or above 1."""
    return _linear_to_srgb(_lab_to_linear_bgr(lab)).astype(np.float32)


def _lab_to_linear_bgr(lab: np.ndarray) -> np.ndarray:
    """CIELAB to linear-light BGR, not clipped (outside [0, 1] exactly where sRGB is, too)."""
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    cube = f * f * f
    xyz = np.where(cube > _EPSILON, cube, (116.0 * f - 16.0) / _KAPPA)
    xyz[..., 1] = np.where(lab[..., 0] > _KAPPA * _EPSILON, cube[..., 1], lab[..., 0] / _KAPPA)
    return (xyz.astype(np.float32) @ _XYZ_TO_RGB_NORMALIZED)[..., ::-1]


def luminance(pixels: np.ndarray) -> np.ndarray:
    """CIELAB L of a gray or colour scan at full resolution; toned scans keep only this.

    Only Y is needed: a gray scan maps each sample value straight to its L through a
    lookup table, a colour scan linearizes through one, which makes this many times
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
    return _lightness_from_y(y.reshape(pixels.shape[:2]))


_Y_FROM_BGR = _RGB_TO_XYZ[1:2, ::-1].astype(np.float32)


@functools.cache
def _lightness_table(bit_depth: int) -> np.ndarray:
    """L of every integer gray value of a bit depth."""
    return _lightness_from_y(_linear_table(bit_depth))


def _table_lookup(pixels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """table[pixels]; OpenCV's LUT (8-bit samples only) is several times faster than NumPy indexing."""
    if pixels.dtype == np.uint8:
        return cv2.LUT(pixels, table)
    return table[pixels]


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
        return across[above[selected]] + (across[below[selected]] - across[above[selected]]) * weight[selected]

    return rows


def colorized_strips(pixels: np.ndarray, prediction: np.ndarray, box: Letterbox) -> Iterator[tuple[slice, np.ndarray]]:
    """The colorized scan as float BGR in [0, 1], strip by strip (`row_strips`): L from the scan, a/b predicted.

    Every step works per pixel or per row, so the strips together are exactly the whole image.
    """
    height, width = pixels.shape[:2]
    ab = ab_rows(prediction, box, height, width)
    for rows in row_strips(height, width):
        yield rows, recombine_luminance(luminance(pixels[rows]), ab(rows))


def _outside_srgb(lab: np.ndarray, tolerance: float = 1e-5) -> np.ndarray:
    """Which of the (N, 3) Lab pixels sRGB cannot show (tested in linear light: no gamma needed)."""
    linear = _lab_to_linear_bgr(lab)
    return np.any((linear < -tolerance) | (linear > 1.0 + tolerance), axis=-1)


def recombine_luminance(lightness: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """Put predicted a/b on the original L and convert to float BGR in [0, 1].

    Colours that fall outside sRGB have their chroma reduced (hue and L kept) instead of
    having R, G, B clipped, which would change the luminance the archivist's scan
    already has. OpenCV converts the whole image (within 0.0004 of the exact formula,
    a tenth of an 8-bit step) and clips what it cannot show to 0 or 1; only the pixels
    at those bounds are worked out again exactly.
    """
    lab = cv2.merge([lightness.astype(np.float32), ab.astype(np.float32)])
    bgr = cv2.cvtColor(lab, cv2.COLOR_Lab2BGR)
    inside = cv2.inRange(bgr, (_BOUND_MARGIN,) * 3, (1.0 - _BOUND_MARGIN,) * 3)
    at_bounds = np.flatnonzero(inside.ravel() == 0)
    if at_bounds.size:
        fitted = _reduce_chroma_into_srgb(lab.reshape(-1, 3)[at_bounds])
        bgr.reshape(-1, 3)[at_bounds] = np.clip(lab_to_bgr(fitted), 0.0, 1.0)
    return bgr


_BOUND_MARGIN = 1e-5


def _reduce_chroma_into_srgb(lab: np.ndarray) -> np.ndarray:
    """(N, 3) Lab pixels with the chroma of those sRGB cannot show cut to the most it can.

    The largest chroma of each lightness and hue comes from a table (see
    `_max_chroma_table`), less 0.1 % for interpolating it (a colour difference of
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


_TABLE_L_STEP, _TABLE_HUE_STEP = 0.25, 0.5  # CIELAB L units, degrees of hue
_TABLE_MARGIN = 0.999  # covers how far interpolating the table overshoots the curved boundary, nearly everywhere


@functools.cache
def _max_chroma_table() -> np.ndarray:
    """The largest chroma sRGB can show, float32 (L 0..100 rows, hue 0..360 degrees columns).

    Computed once per process (about 0.5 s): 289,000 bisections of 24 steps.
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


def _largest_scale_inside(lightness: np.ndarray, ab: np.ndarray, largest: float, steps: int) -> np.ndarray:
    """Per pixel, the largest s in [0, largest] for which (L, s * a, s * b) is inside sRGB (bisection).

    The answer is inside, and within largest / 2**steps of the boundary.
    """
    low = np.zeros(len(lightness), np.float32)
    high = np.full_like(low, largest)
    for _ in range(steps):
        middle = (low + high) / 2
        rejected = _outside_srgb(np.concatenate([lightness, ab * middle[:, None]], axis=-1))
        low, high = np.where(rejected, low, middle), np.where(rejected, middle, high)
    return low


def quantize(bgr: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float BGR in [0, 1] to uint8 or uint16."""
    dtype = np.uint16 if bit_depth == 16 else np.uint8
    return np.round(bgr * float(np.iinfo(dtype).max)).astype(dtype)


def format_for_path(path: str) -> str:
    """The output format matching a file's extension; PNG for anything we cannot write back."""
    dot = path.rfind(".")
    return _EXTENSION_FORMATS.get(path[dot:].lower(), "png") if dot >= 0 else "png"


def output_bit_depth(image_format: str, bit_depth: int) -> int:
    """16-bit survives only in PNG and TIFF; other formats are written with 8 bits."""
    return bit_depth if image_format in _SIXTEEN_BIT_FORMATS else 8


def encode_image(bgr: np.ndarray, image_format: str, bit_depth: int) -> bytes:
    """Encode float BGR in [0, 1] as PNG, JPEG, TIFF, WebP or BMP at the given bit depth."""
    return encode_pixels(quantize(bgr, output_bit_depth(image_format, bit_depth)), image_format)


def encode_pixels(pixels: np.ndarray, image_format: str) -> bytes:
    """Encode uint8 or uint16 BGR pixels (see `output_bit_depth`) as PNG, JPEG, TIFF, WebP or BMP."""
    params = {"jpg": [cv2.IMWRITE_JPEG_QUALITY, 95], "webp": [cv2.IMWRITE_WEBP_QUALITY, 95]}
    ok, encoded = cv2.imencode(FORMAT_EXTENSIONS[image_format], pixels, params.get(image_format, []))
    if not ok:
        raise ValueError(f"OpenCV could not encode the result as {image_format}")
    return encoded.tobytes()
