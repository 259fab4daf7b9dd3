"""Image files in and out: which names are images, decoding scans keeping their bit depth, encoding results.

Decoding refuses, from the header alone, an image larger than the memory of the machine
allows (`default_max_pixels`); everything else about a scan's pixels is in `transforms.lab`.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

# Pillow only reads headers here, and its own decompression-bomb guard would refuse large
# scans before --max_pixels is even looked at; the pipeline applies --max_pixels instead.
Image.MAX_IMAGE_PIXELS = None
# Peak memory of colorizing one scan, per pixel, above the process's own, at the worst (a 16-bit
# RGB scan): its file, its decoded pixels, the output and its encoded file (and exiv2's copies of
# it while its metadata is written), with the full-resolution steps working on strips
# (`transforms.lab.row_strips`). `python -m benchmarks.memory` measures it: 26.6 for 24 megapixels
# of 16-bit RGB, 23.2 before the metadata was written.
PEAK_BYTES_PER_PIXEL = 27


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


class ScanDecodeError(ValueError):
    """A file that cannot be read as an image; the message is shown to the user."""


@dataclass(frozen=True)
class DecodedScan:
    """A decoded scan: gray (H, W) or BGR (H, W, 3), uint8 or uint16, alpha already on white.

    `icc_profile` is the file's embedded profile, as found (OpenCV does not read it); `turned_upright`
    whether the pixels were turned by the file's EXIF orientation (JPEGs are, other formats are not);
    `pages` how many pages a TIFF holds and `animated` whether a GIF, PNG or WebP holds more than
    one frame: only the first page or frame is decoded.
    """

    pixels: np.ndarray
    input_channels: int
    icc_profile: bytes | None = None
    turned_upright: bool = False
    pages: int = 1
    animated: bool = False

    @property
    def bit_depth(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from the file's header alone, without decoding; None if unknown."""
    return _header(data)[0]


def _header(data: bytes) -> tuple[tuple[int, int] | None, bytes | None]:
    """(width, height) and the embedded ICC profile, from the file's header alone; None where unknown."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size, image.info.get("icc_profile") or None
    except Exception:  # noqa: BLE001 - not a format Pillow knows: the decoder will say what is wrong
        return None, None


TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # classic TIFF and BigTIFF
ANIMATION_MAGIC = (b"GIF8", b"\x89PNG")  # and WebP's RIFF....WEBP
REDUCED_RESOLUTION = 1  # TIFF NewSubfileType (tag 254) bit 0: a thumbnail or preview of another page


def images_held(data: bytes) -> tuple[int, bool]:
    """(pages, animated): how many pages a TIFF holds, leaving out reduced-resolution previews (scanners
    often store one after the scan, and it is no page of its own), and whether a GIF, PNG or WebP holds
    more than one frame. Pillow reads the IFDs and headers only (and a GIF's first frame); (1, False)
    for any other file, or where they are damaged: OpenCV decodes what it can of the first image."""
    is_tiff = data[:4] in TIFF_MAGIC
    if not is_tiff and data[:4] not in ANIMATION_MAGIC and not (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return 1, False
    try:
        with Image.open(io.BytesIO(data)) as image:
            if not is_tiff:
                return 1, bool(getattr(image, "is_animated", False))
            pages = 0
            for index in range(image.n_frames):
                image.seek(index)
                pages += not int(image.tag_v2.get(254, 0)) & REDUCED_RESOLUTION
    except Exception:  # noqa: BLE001 - a damaged IFD chain or frame after the first
        return 1, False
    return max(pages, 1), False


def decode_scan(data: bytes, max_pixels: int | None = None) -> DecodedScan:
    """Decode image bytes keeping their bit depth.

    An image whose header claims more than `max_pixels` (default: `default_max_pixels()`) is
    refused before any pixel is decoded, so a huge or malicious file cannot exhaust memory. JPEGs are decoded with
    their EXIF orientation applied; other formats keep their alpha channel, which is
    composited on white so transparent areas do not turn into arbitrary colors.
    """
    if not data:
        raise ScanDecodeError("file is empty (0 bytes)")
    size, icc_profile = _header(data)
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
    pages, animated = images_held(data)
    return DecodedScan(pixels, input_channels, icc_profile, turned_upright=is_jpeg, pages=pages, animated=animated)


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


def quantize(bgr: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float BGR in [0, 1] to uint8 or uint16, rounding half to even.

    float32 to 8 bits goes through OpenCV, in one pass without NumPy's temporary arrays: the
    same float32 product, rounded the same way, so the same bytes (OpenCV would round a float64
    product through float32, so other inputs take NumPy's way).
    """
    dtype = np.uint16 if bit_depth == 16 else np.uint8
    if dtype == np.uint8 and bgr.dtype == np.float32:
        return cv2.convertScaleAbs(bgr, alpha=255.0)
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


def encode_pixels(pixels: np.ndarray, image_format: str, icc_profile: bytes | None = None) -> bytes:
    """Encode uint8 or uint16 BGR pixels (see `output_bit_depth`) as PNG, JPEG, TIFF, WebP or BMP.

    Metadata is written afterwards (`pipeline.archival`), but an 8-bit PNG that will carry an ICC profile
    is written by Pillow with it: the iCCP chunk needs a name, which exiv2 keeps from the file but does
    not give a new one (libpng rejects a nameless one). Pillow has no 16-bit RGB, so those stay nameless.
    """
    if image_format == "png" and icc_profile is not None and pixels.dtype == np.uint8 and pixels.ndim == 3:
        encoded = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(pixels[..., ::-1])).save(encoded, "PNG", icc_profile=icc_profile)
        return encoded.getvalue()
    params = {"jpg": [cv2.IMWRITE_JPEG_QUALITY, 95], "webp": [cv2.IMWRITE_WEBP_QUALITY, 95]}
    ok, encoded = cv2.imencode(FORMAT_EXTENSIONS[image_format], pixels, params.get(image_format, []))
    if not ok:
        raise ValueError(f"OpenCV could not encode the result as {image_format}")
    return encoded.tobytes()
