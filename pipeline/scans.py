"""A scan on its way through the pipeline, and where its files live."""

from __future__ import annotations

import os
import posixpath
import re
import time
from dataclasses import dataclass

import numpy as np
from apache_beam.io.filesystems import FileSystems

from transforms.color import (
    DEFAULT_MAX_PIXELS,
    FORMAT_EXTENSIONS,
    Letterbox,
    decode_scan,
    format_for_path,
    luminance,
    model_input,
)

_GLOB_CHARACTERS = re.compile(r"[*?\[]")


@dataclass
class Scan:
    """Everything the steps after inference need: the full-resolution L and how it was shrunk."""

    source_path: str
    relative_path: str
    source_sha256: str
    width: int
    height: int
    bit_depth: int
    input_channels: int
    lightness: np.ndarray  # full-resolution CIELAB L, float32 (H, W)
    model_input: np.ndarray  # (size, size, 1) float32
    letterbox: Letterbox
    truth_pixels: np.ndarray | None  # the decoded input itself, kept only for --evaluate
    seconds: float  # processing time spent on this scan so far


def input_pattern(input_location: str) -> str:
    """A FileSystems pattern for --input: a folder means every file below it, recursively."""
    if _GLOB_CHARACTERS.search(input_location):
        return input_location
    if input_location.endswith("/") or _is_directory(input_location):
        return input_location.rstrip("/") + "/**"
    return input_location


def _is_directory(location: str) -> bool:
    """A local folder; on object stores, which have no folders, a prefix with objects below it (not an object)."""
    if FileSystems.get_scheme(location) in (None, "file"):
        return os.path.isdir(location)
    below = FileSystems.match([location + "/**"], limits=[1])[0].metadata_list
    return bool(below) and not FileSystems.exists(location)


def input_base(input_location: str) -> str:
    """The folder that relative paths are taken from: the folder itself, or the part before the glob."""
    pattern = input_pattern(input_location)
    prefix = _GLOB_CHARACTERS.split(pattern, maxsplit=1)[0]
    return prefix if prefix.endswith("/") and prefix != pattern else posixpath.dirname(prefix) + "/"


def relative_path(path: str, base: str) -> str:
    """`path` relative to `base`, with forward slashes, never leaving `base`."""
    relative = path[len(base) :] if path.startswith(base) else posixpath.basename(path)
    parts = [part for part in relative.replace("\\", "/").split("/") if part not in ("", ".", "..")]
    return "/".join(parts)


def output_location(output: str, relative: str, image_format: str) -> str:
    """Where the colorized copy of `relative` goes: same relative path, extension of the format."""
    stem, dot, extension = relative.rpartition(".")
    name = stem if dot and "/" not in extension else relative
    return FileSystems.join(output.rstrip("/"), name + FORMAT_EXTENSIONS[image_format])


def ground_truth_location(ground_truth: str, relative: str) -> str | None:
    """The color original paired with a scan: same relative path, or same name with another extension."""
    exact = FileSystems.join(ground_truth.rstrip("/"), relative)
    if FileSystems.exists(exact):
        return exact
    stem = exact.rpartition(".")[0] if "." in relative.rpartition("/")[2] else exact
    if _GLOB_CHARACTERS.search(stem):
        return None
    matches = sorted(m.path for m in FileSystems.match([stem + ".*"])[0].metadata_list)
    return matches[0] if matches else None


def prepare_scan(
    source_path: str,
    relative: str,
    data: bytes,
    sha256: str,
    inference_size: int,
    keep_truth: bool,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Scan:
    """Decode a scan and make its model input; raises ValueError with a clear message for bad files."""
    started = time.perf_counter()
    decoded = decode_scan(data, max_pixels)
    lightness = luminance(decoded.pixels)
    grid, box = model_input(lightness, inference_size)
    return Scan(
        source_path=source_path,
        relative_path=relative,
        source_sha256=sha256,
        width=decoded.width,
        height=decoded.height,
        bit_depth=decoded.bit_depth,
        input_channels=decoded.input_channels,
        lightness=lightness,
        model_input=grid,
        letterbox=box,
        truth_pixels=decoded.pixels if keep_truth and decoded.pixels.ndim == 3 else None,
        seconds=time.perf_counter() - started,
    )


def chosen_format(relative: str, output_format: str | None) -> str:
    """--output_format if given, else the input's own format."""
    return output_format or format_for_path(relative)
