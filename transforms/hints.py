"""Known colors ("hints"): an archivist's colors for points of a scan, read, checked and put on the model's grid.

A hints file is JSON: `{"points": [{"x": 120, "y": 340, "color": "#8a2b1f", "radius": 6}, ...]}`.
`x`, `y` are pixel coordinates in the scan as displayed (EXIF orientation applied), origin top
left; `color` is the intended sRGB color, of which only the chroma (a, b) is used: the scan keeps
its own lightness; `radius` (pixels, optional, default 0) marks a disc instead of a point.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np

from transforms.lab import AB_SCALE, bgr_to_lab, recombine_luminance
from transforms.letterbox import Letterbox
from transforms.metrics import delta_e2000

HINT_CHANNELS = 3  # a / 128, b / 128 (0 where nothing is known) and the mask (1 where a color is known)
_HEX_COLOR = re.compile(r"#([0-9a-fA-F]{6})")
_POINT_KEYS = {"x", "y", "color", "radius"}


@dataclass(frozen=True)
class Hint:
    """One known color: a point (or disc) of the scan and the CIELAB chroma it should have."""

    x: float
    y: float
    radius: float
    a: float
    b: float


def hex_to_ab(color: str) -> tuple[float, float]:
    """The CIELAB a, b of an sRGB color written `#rrggbb`."""
    rgb = [int(color[i : i + 2], 16) / 255.0 for i in (1, 3, 5)]
    lab = bgr_to_lab(np.array([[rgb[::-1]]], np.float32))[0, 0]
    return float(lab[1]), float(lab[2])


def _number(point: dict, key: str, index: int) -> float:
    value = point[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise ValueError(f"point {index}: {key} must be a number, not {json.dumps(value)}")
    return float(value)


def parse_hints(data: bytes, width: int, height: int) -> tuple[Hint, ...]:
    """The hints of one file for a scan of width x height; ValueError naming the first problem found."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"not valid JSON: {error}") from error
    if not isinstance(document, dict) or set(document) != {"points"} or not isinstance(document["points"], list):
        raise ValueError('expected {"points": [...]} and nothing else')
    hints = []
    for index, point in enumerate(document["points"]):
        if not isinstance(point, dict):
            raise ValueError(f"point {index}: expected an object with x, y and color")
        unknown, missing = set(point) - _POINT_KEYS, {"x", "y", "color"} - set(point)
        if unknown or missing:
            problem = f"unknown keys {sorted(unknown)}" if unknown else f"missing {sorted(missing)}"
            raise ValueError(f"point {index}: {problem} (keys: x, y, color, radius)")
        x, y = _number(point, "x", index), _number(point, "y", index)
        radius = _number(point, "radius", index) if "radius" in point else 0.0
        if not (0 <= x < width and 0 <= y < height):
            raise ValueError(f"point {index}: ({x:g}, {y:g}) is outside the {width}x{height} scan")
        if radius < 0:
            raise ValueError(f"point {index}: radius must not be negative")
        color = point["color"]
        if not isinstance(color, str) or not _HEX_COLOR.fullmatch(color):
            raise ValueError(f'point {index}: color must be "#rrggbb", not {json.dumps(color)}')
        hints.append(Hint(x, y, radius, *hex_to_ab(color)))
    return tuple(hints)


def hint_grid(hints: tuple[Hint, ...], box: Letterbox, width: int, height: int, size: int) -> np.ndarray:
    """The model's hint input (size, size, 3) for a scan letterboxed by `box`.

    A point lands on the model pixel that covers its scan pixel, exactly as the letterbox
    resizes the scan (pixel centers scaled by the box's own size per axis); a disc marks
    every model pixel whose center lies within its radius, and always the center's pixel.
    """
    grid = np.zeros((size, size, HINT_CHANNELS), np.float32)
    scale_x, scale_y = box.width / width, box.height / height
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    for hint in hints:
        center_x = box.left + (np.floor(hint.x) + 0.5) * scale_x
        center_y = box.top + (np.floor(hint.y) + 0.5) * scale_y
        inside = np.hypot((columns - center_x) / scale_x, (rows - center_y) / scale_y) <= hint.radius
        inside[min(int(center_y), box.top + box.height - 1), min(int(center_x), box.left + box.width - 1)] = True
        grid[inside] = (hint.a / AB_SCALE, hint.b / AB_SCALE, 1.0)
    return grid


def hint_delta_e2000(lightness: np.ndarray, ab_at: np.ndarray, hints: tuple[Hint, ...]) -> float:
    """Mean CIEDE2000 between the result and the hinted colors at the hint points.

    `lightness` (N,) is the scan's L and `ab_at` (N, 2) the result's a/b at each hint's pixel.
    The hinted color is taken at the scan's own lightness, as the pipeline uses it, and the
    result as it is written: put back within sRGB (`recombine_luminance`).
    """
    lightness = np.asarray(lightness, np.float32).reshape(1, -1)
    result = bgr_to_lab(recombine_luminance(lightness, np.asarray(ab_at, np.float32).reshape(1, -1, 2)))[0]
    wanted = np.array([(0.0, hint.a, hint.b) for hint in hints], np.float32)
    wanted[:, 0] = lightness[0]
    return float(delta_e2000(result, wanted).mean())
