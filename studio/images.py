"""Reduced copies of scans for the browser: cached thumbnails, fitted copies and crops, as JPEG.

The browser never gets a whole scan: a 12,000 x 9,000 scan reaches it as a copy fitted to the
screen and, zoomed in, as crops of the region in view at screen resolution.
"""

from __future__ import annotations

import hashlib
import os
import tempfile

import cv2
import numpy as np

from transforms.codec import decode_preview, quantize, to_float_bgr

THUMBNAIL_HEIGHT = 160
THUMBNAIL_MAX_WIDTH = 4 * THUMBNAIL_HEIGHT
JPEG_QUALITY = 88


def default_cache_folder() -> str:
    """The studio's own hidden folder for thumbnails: $XDG_CACHE_HOME/revivacolor/studio (~/.cache/...)."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "revivacolor", "studio")


def encode_jpeg(pixels: np.ndarray) -> bytes:
    """8-bit BGR (or gray) as JPEG bytes."""
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError("OpenCV could not encode a JPEG")
    return encoded.tobytes()


def to_8bit_bgr(pixels: np.ndarray) -> np.ndarray:
    """Decoded scan pixels (gray or BGR, 8 or 16 bit) as 8-bit BGR for the screen."""
    if pixels.dtype == np.uint8 and pixels.ndim == 3:
        return pixels
    if pixels.dtype == np.uint8:
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    return quantize(to_float_bgr(pixels), 8)


def fitted(pixels: np.ndarray, max_side: int) -> np.ndarray:
    """The image shrunk (never enlarged) to fit `max_side` on its longer side, as 8-bit BGR."""
    height, width = pixels.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    return to_8bit_bgr(pixels)


def crop(pixels: np.ndarray, x: int, y: int, width: int, height: int, out_width: int, out_height: int) -> np.ndarray:
    """The region (x, y, width, height) of the image, clipped to it, resized to out_width x out_height (8-bit BGR)."""
    full_height, full_width = pixels.shape[:2]
    x0, y0 = min(max(0, x), full_width - 1), min(max(0, y), full_height - 1)
    x1, y1 = min(full_width, max(x0 + 1, x + width)), min(full_height, max(y0 + 1, y + height))
    region = pixels[y0:y1, x0:x1]
    shrinking = out_width < region.shape[1]
    resized = cv2.resize(
        region, (out_width, out_height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_NEAREST
    )
    return to_8bit_bgr(resized)


class Thumbnails:
    """Thumbnails made on first request and kept in the studio's cache folder, keyed by file, size and time.

    A changed file (other size or modification time) gets a new thumbnail; nothing is ever written
    beside the user's files.
    """

    def __init__(self, folder: str):
        self.folder = os.path.join(folder, "thumbnails")

    def get(self, path: str) -> bytes:
        """The JPEG thumbnail of an image file (made now if not cached); ValueError if it cannot be decoded."""
        stat = os.stat(path)
        key = f"{os.path.realpath(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\0{THUMBNAIL_HEIGHT}".encode(
            "utf-8", "surrogateescape"
        )
        digest = hashlib.sha256(key).hexdigest()
        cached = os.path.join(self.folder, digest[:2], digest + ".jpg")
        if os.path.isfile(cached):
            with open(cached, "rb") as handle:
                return handle.read()
        with open(path, "rb") as handle:
            pixels = decode_preview(handle.read(), THUMBNAIL_HEIGHT)
        height, width = pixels.shape[:2]
        scale = min(1.0, THUMBNAIL_HEIGHT / height, THUMBNAIL_MAX_WIDTH / width)  # a 20000 x 40 strip stays a strip
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        data = encode_jpeg(to_8bit_bgr(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)))
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=os.path.dirname(cached), suffix=".tmp", delete=False) as handle:
            handle.write(data)
        os.replace(handle.name, cached)
        return data
