"""A scan on its way through the pipeline, and where its files live."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import posixpath
import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from apache_beam.io.filesystems import FileSystems

from pipeline.archival import NO_METADATA, Colorization, SourceMetadata, read_source_metadata, write_archival_metadata
from transforms.codec import (
    FORMAT_EXTENSIONS,
    DecodedScan,
    decode_scan,
    encode_pixels,
    format_for_path,
    has_image_suffix,
    output_bit_depth,
    quantize,
)
from transforms.hints import Hint, hint_delta_e2000, hint_grid, parse_hints, spread_known_colors
from transforms.icc import UnusableProfile, lightness_profile, output_profile, profile_description, profile_lightness
from transforms.lab import RgbSpace, recombine_luminance, row_strips
from transforms.letterbox import Letterbox, ab_rows, model_input
from transforms.metrics import Colorfulness

_GLOB_CHARACTERS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Scan:
    """Everything the steps after inference need: the decoded scan and how its L was shrunk.

    Frozen: Beam's elements are not changed once emitted; a step that adds to `seconds` makes a new Scan.
    """

    source_path: str
    relative_path: str
    output_path: str  # where its colorized copy goes
    source_sha256: str
    width: int
    height: int
    bit_depth: int
    input_channels: int
    pixels: np.ndarray  # the decoded scan (its L is worked out again, strip by strip, when it is colorized)
    model_input: np.ndarray  # (size, size, 1) float32
    letterbox: Letterbox
    truth_pixels: np.ndarray | None  # the decoded input itself, kept only for --evaluate
    seconds: float  # processing time spent on this scan so far
    earlier_claims: tuple[str, ...] = ()  # output files its receipt claimed before this run
    hints: tuple[Hint, ...] = ()  # known colors from its hints file
    hints_path: str | None = None  # that file, when there is one
    hints_sha256: str | None = None
    model_hints: np.ndarray | None = None  # (size, size, 3) hint input for a model that takes one
    icc_profile: bytes | None = None  # the embedded profile its lightness is read through; None: sRGB
    icc_description: str | None = None  # the embedded profile's description, used or not
    source_metadata: SourceMetadata = NO_METADATA  # its EXIF, IPTC and XMP, carried into the output
    warnings: tuple[str, ...] = ()  # what could not be kept as it was, for its row

    def lightness(self, rows: slice | tuple = slice(None)) -> np.ndarray:
        """CIELAB L of some of the scan's pixels (default all), through its own ICC profile."""
        return profile_lightness(self.pixels[rows], self.icc_profile)


SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini"})  # written into folders by Windows


def is_scan_file(relative: str) -> bool:
    """Whether a file under --input is a scan: an image extension, no hidden (dot) file or folder, no system file.

    Everything else (`.DS_Store`, `notes.txt`, `Thumbs.db`, ...) is skipped without being read.
    """
    parts = relative.split("/")
    return (
        has_image_suffix(relative)
        and not any(part.startswith(".") for part in parts)
        and parts[-1].lower() not in SYSTEM_FILES
    )


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


def printable_path(path: str) -> str:
    """A path as valid UTF-8 text: bytes of a name that is not UTF-8 (old Latin-1 CD-ROMs) become `\\xff`.

    Python lists such names with surrogate characters, which no table, log, JSON receipt or
    Cloud Storage name can hold; the file itself is still read under its real name.
    """
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def output_name(relative: str, output_format: str | None) -> str:
    """The colorized copy's relative path: the input's own, its extension changed only if the format changes.

    `a.tif` and `a.jpeg` keep their names; `a.tif` with --output_format png, or `a.gif` (written as PNG),
    becomes `a.png`.
    """
    image_format = chosen_format(relative, output_format)
    stem, dot, extension = relative.rpartition(".")
    # format_for_path falls back to PNG for extensions it cannot write back: only .png itself is kept as PNG
    if dot and "/" not in extension and format_for_path(relative) == image_format:
        if image_format != "png" or extension.lower() == "png":
            return relative
    name = stem if dot and "/" not in extension else relative
    return name + FORMAT_EXTENSIONS[image_format]


def colliding_names(relatives: Iterable[str], output_format: str | None) -> dict[str, str]:
    """The output names of the inputs whose output name is another input's too: each keeps its whole name.

    `a.tif` and `a.tiff` under --output_format png would both become `a.png`; they become `a.tif.png` and
    `a.tiff.png`. Worked out over the whole list of inputs, so the names do not depend on the order in
    which files are processed. Such names (the whole relative path plus the format's extension) differ
    from each other, so repeating until no name is taken twice ends with every input under its own name.
    """
    names = {relative: output_name(relative, output_format) for relative in relatives}
    renamed: dict[str, str] = {}
    while True:
        taken = Counter(names.values())
        clashing = [relative for relative, name in names.items() if taken[name] > 1 and relative not in renamed]
        if not clashing:
            return renamed
        for relative in clashing:
            renamed[relative] = names[relative] = relative + FORMAT_EXTENSIONS[chosen_format(relative, output_format)]


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


def hints_location(hints: str, relative: str) -> str:
    """The hints file of a scan: the same relative path under the hints folder, ending in .json."""
    stem, dot, extension = relative.rpartition(".")
    return FileSystems.join(hints.rstrip("/"), (stem if dot and "/" not in extension else relative) + ".json")


@dataclass(frozen=True)
class HintsFile:
    """A scan's hints file as read: where, its bytes, and their sha256 (a changed file redoes the scan)."""

    location: str
    data: bytes
    sha256: str


def read_hints_file(hints: str | None, relative: str) -> HintsFile | None:
    """A scan's hints file, or None when it has none (it is then colorized automatically)."""
    if hints is None:
        return None
    location = hints_location(hints, relative)
    if not FileSystems.exists(location):
        return None
    with FileSystems.open(location) as handle:
        data = handle.read()
    return HintsFile(location, data, hashlib.sha256(data).hexdigest())


def prepare_scan(
    source_path: str,
    relative: str,
    output_path: str,
    data: bytes,
    sha256: str,
    inference_size: int,
    keep_truth: bool,
    max_pixels: int | None = None,
    hints_file: HintsFile | None = None,
) -> Scan:
    """Decode a scan and make its model input (with its hints file's known colors, if any).

    Raises ValueError with a clear message for bad files, a bad hints file included: a scan is
    never colorized without the hints its user asked for.
    """
    started = time.perf_counter()
    decoded = decode_scan(data, max_pixels)
    icc_profile, icc_description, profile_warnings = input_profile(decoded)
    source_metadata = read_source_metadata(data, decoded.turned_upright)
    grid, box = model_input(profile_lightness(decoded.pixels, icc_profile), inference_size)
    scan = Scan(
        source_path=source_path,
        relative_path=relative,
        output_path=output_path,
        source_sha256=sha256,
        width=decoded.width,
        height=decoded.height,
        bit_depth=decoded.bit_depth,
        input_channels=decoded.input_channels,
        pixels=decoded.pixels,
        model_input=grid,
        letterbox=box,
        truth_pixels=decoded.pixels if keep_truth and decoded.pixels.ndim == 3 else None,
        seconds=0.0,
        icc_profile=icc_profile,
        icc_description=icc_description,
        source_metadata=source_metadata,
        warnings=profile_warnings + source_metadata.warnings + _images_left_out(decoded),
    )
    if hints_file is not None:
        scan = with_hints(scan, hints_file)
    return dataclasses.replace(scan, seconds=time.perf_counter() - started)


def _images_left_out(decoded: DecodedScan) -> tuple[str, ...]:
    """A warning for a multi-page TIFF or an animation: its colorized copy holds only the first image."""
    if decoded.pages > 1:
        return (f"a TIFF of {decoded.pages} pages: only the first was colorized",)
    return ("an animation: only its first frame was colorized",) if decoded.animated else ()


def with_hints(scan: Scan, hints_file: HintsFile) -> Scan:
    """The scan with a hints file's known colors, on the model's grid too; ValueError naming the file's problem."""
    try:
        hints = parse_hints(hints_file.data, scan.width, scan.height)
    except ValueError as error:
        raise ValueError(f"hints file {hints_file.location}: {error}") from error
    return dataclasses.replace(
        scan,
        hints=hints,
        hints_path=hints_file.location,
        hints_sha256=hints_file.sha256,
        model_hints=hint_grid(hints, scan.letterbox, scan.width, scan.height, scan.model_input.shape[0]),
    )


def input_profile(decoded: DecodedScan) -> tuple[bytes | None, str | None, tuple[str, ...]]:
    """The profile to read a scan's lightness through (None: sRGB), its description, and any warning.

    A profile that cannot be used leaves the scan read as sRGB, as one without a profile, and says why.
    """
    if decoded.icc_profile is None:
        return None, None, ()
    try:
        description = profile_description(decoded.icc_profile)
    except UnusableProfile as error:
        return None, None, (f"{error}: read as sRGB",)
    try:
        return lightness_profile(decoded.icc_profile, 1 if decoded.pixels.ndim == 2 else 3), description, ()
    except UnusableProfile as error:
        return None, description, (f"{error}: read as sRGB",)


def chosen_format(relative: str, output_format: str | None) -> str:
    """--output_format if given, else the input's own format."""
    return output_format or format_for_path(relative)


def colorize_scan(
    scan: Scan, prediction: np.ndarray, bit_depth: int, keep_float: bool, space: RgbSpace | None = None
) -> tuple[np.ndarray, float, np.ndarray | None]:
    """The colorized scan as integers of `bit_depth`, its colorfulness, and (if asked) its float BGR.

    In sRGB, or in `space` (--output_profile); colorfulness is then taken on those values as they are.

    The predicted a/b are cut out of the letterbox and upsampled, put on the scan's own L and
    quantized, strip by strip (`row_strips`): every step works per pixel or per row, so the
    strips together are exactly the whole image, and only the result and one strip's temporaries
    are in memory; the float image (12 bytes a pixel) only when it is scored against a ground truth.
    """
    pixels = np.empty((scan.height, scan.width, 3), np.uint16 if bit_depth == 16 else np.uint8)
    colorized = np.empty(pixels.shape, np.float32) if keep_float else None
    colorfulness = Colorfulness(scan.height, scan.width)
    ab = ab_rows(prediction, scan.letterbox, scan.height, scan.width)
    for rows in row_strips(scan.height, scan.width):
        bgr = recombine_luminance(scan.lightness(rows), ab(rows), space)
        pixels[rows] = quantize(bgr, bit_depth)
        sample = colorfulness.sample(pixels[rows] if bit_depth == 8 else bgr, rows.start)
        colorfulness.add(sample if bit_depth == 8 else quantize(sample, 8))
        if colorized is not None:
            colorized[rows] = bgr
    return pixels, colorfulness.value(), colorized


@dataclass(frozen=True)
class FinishedScan:
    """A colorized scan, encoded in its output format (with its metadata, when it was given a Colorization)."""

    encoded: bytes
    colorfulness: float
    colorized: np.ndarray | None  # float BGR in [0, 1], only when asked for (to score it)
    hint_delta_e2000: float | None  # how far the result is from the known colors at their points
    metadata_kept: tuple[str, ...] = ()  # which of the scan's exif, iptc and xmp the file carries
    warnings: tuple[str, ...] = ()  # the scan's and the writing's


def scan_hint_delta_e2000(scan: Scan, prediction: np.ndarray) -> float | None:
    """CIEDE2000 between the result and each known color at its point, averaged (None without hints)."""
    if not scan.hints:
        return None
    ab = ab_rows(prediction, scan.letterbox, scan.height, scan.width)
    rows, columns = (np.array([int(getattr(hint, axis)) for hint in scan.hints]) for axis in ("y", "x"))
    lightness = profile_lightness(scan.pixels[rows, columns][None], scan.icc_profile)[0]
    ab_at = np.stack([ab(slice(row, row + 1))[0, column] for row, column in zip(rows, columns, strict=True)])
    return hint_delta_e2000(lightness, ab_at, scan.hints)


def spread_hints(scan: Scan, prediction: np.ndarray, solver=None) -> np.ndarray:
    """The model's prediction with the scan's known colors met and spread over their regions (if it has any).

    `solver`: `spreading_solver` of the scan's model input, when it is colorized more than once.
    """
    if scan.model_hints is None:
        return prediction
    return spread_known_colors(prediction, scan.model_input, scan.model_hints, scan.letterbox, solver)


def finish_scan(
    scan: Scan,
    prediction: np.ndarray,
    image_format: str,
    keep_float: bool = False,
    colorization: Colorization | None = None,
) -> FinishedScan:
    """The finishing step of every scan after the model: restore a/b, recombine with the scan's L, quantize, encode.

    `prediction` is the model's (size, size, 2) output for `scan.model_input`; the result keeps the
    scan's size and, where the format holds it, its bit depth (`output_bit_depth`). A scan's known
    colors are met and spread over their regions first (`spread_hints`). With a `colorization`,
    the file gets the scan's metadata, the ICC profile of `colorization.output_profile` (sRGB by
    default; a BMP, which holds no profile, is always sRGB) and the label (`pipeline.archival`).
    """
    prediction = spread_hints(scan, prediction)
    bit_depth = output_bit_depth(image_format, scan.bit_depth)
    warnings = scan.warnings
    wanted = colorization.output_profile if colorization is not None else "srgb"
    if wanted != "srgb" and image_format == "bmp":
        warnings += (f"BMP holds no ICC profile: written in sRGB, not {wanted}",)
    profile, space = output_profile(wanted if image_format != "bmp" else "srgb")
    pixels, colorfulness, colorized = colorize_scan(scan, prediction, bit_depth, keep_float, space)
    encoded = encode_pixels(pixels, image_format, profile if colorization is not None else None)
    del pixels  # only the file is written: the pixels (6 bytes a pixel at 16 bits) go before exiv2 copies it
    delta_e = scan_hint_delta_e2000(scan, prediction)
    if colorization is None:
        return FinishedScan(encoded, colorfulness, colorized, delta_e, warnings=warnings)
    archival = write_archival_metadata(
        encoded, image_format, scan.source_metadata, colorization, profile, (scan.width, scan.height)
    )
    return FinishedScan(archival.encoded, colorfulness, colorized, delta_e, archival.kept, warnings + archival.warnings)
