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
MAX_POINTS_PER_FILE = 10_000  # far more than anyone marks by hand; a file of millions would stall the scan's worker


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
    if len(document["points"]) > MAX_POINTS_PER_FILE:
        raise ValueError(f"{len(document['points'])} points, more than the {MAX_POINTS_PER_FILE} a hints file may hold")
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


# How known colors spread (`spread_known_colors`): each pixel's share of a hint falls by a factor
# 1 / (1 + SCREENING) a step along L's regions (little enough that a region fills; what leaks through
# an edge fades beyond it, though a narrow region along the edge, 16 to 24 model pixels wide, still
# takes about 40 % of the correction, and regions two edges away almost none); a share of at least
# FULL_SHARE (what a lone point in a flat region gives about 50 model pixels away) takes the whole
# correction, less a correspondingly smaller part of it. Both fitted on the validation sets with 1 to 30 points
# (docs/models.md, "Known colors"): 0.1 beat 0.2 at every count, more or less screening lost.
SCREENING = 3e-4
FULL_SHARE = 0.1


def _affinities(lightness: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, columns, weights) of the 3 x 3 neighbour affinities of Levin, Lischinski and Weiss (2004).

    Each pixel's weights over its neighbours sum to 1 and fall with the difference of L, on the
    scale of L's own variation around it: colors flow along a region and stop at its edges.
    """
    height, width = lightness.shape
    padded = np.pad(lightness, 1, mode="edge")
    index = np.pad(np.arange(height * width).reshape(height, width), 1, constant_values=-1)
    offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    neighbours = np.stack([padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] for dy, dx in offsets])
    ids = np.stack([index[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] for dy, dx in offsets])
    window = np.concatenate([neighbours, lightness[None]])
    variance = window.var(axis=0) * 0.6
    squared = (neighbours - lightness[None]) ** 2
    closest = np.where(ids >= 0, squared, np.inf).min(axis=0)
    variance = np.maximum(np.maximum(variance, closest / np.log(100.0)), 2e-6)
    weights = np.where(ids >= 0, np.exp(-squared / variance[None]), 0.0)
    weights /= weights.sum(axis=0, keepdims=True)
    rows = np.broadcast_to(np.arange(height * width).reshape(height, width), ids.shape)
    valid = ids >= 0
    return rows[valid], ids[valid], weights[valid]


def spreading_solver(lightness: np.ndarray, box: Letterbox):
    """The factorized system of `spread_known_colors` for one scan's letterboxed L (scipy's `splu`).

    It depends on L alone: a scan whose known colors change (the studio's preview) factorizes it once.
    """
    from scipy.sparse import csr_matrix, identity
    from scipy.sparse.linalg import splu

    inside = lightness[box.top : box.top + box.height, box.left : box.left + box.width].reshape(box.height, box.width)
    rows, columns, weights = _affinities(inside.astype(np.float64))
    count = box.height * box.width
    neighbours = csr_matrix((weights, (rows, columns)), shape=(count, count))
    return splu((identity(count, format="csr") * (1.0 + SCREENING) - neighbours).tocsc())


def spread_known_colors(
    prediction: np.ndarray, lightness: np.ndarray, hints: np.ndarray, box: Letterbox, solver=None
) -> np.ndarray:
    """The prediction (size, size, 2) with every known color met and its correction spread along L.

    The model learns to use hints, but only approximately; what it leaves between a hint and
    its own prediction there is spread over the hint's region with the neighbour affinities of
    Levin et al.'s colorization by optimization, on the letterboxed grid inside the scan:
    the corrections and the hints' mask each diffuse along L (a screened system: every pixel
    the L-weighted mean of its neighbours, less a little), and their ratio is each pixel's
    affinity-weighted mean correction, taken whole near the hints and fading far from them.
    `solver`: the system already factorized for this L (`spreading_solver`).
    """
    inside = (slice(box.top, box.top + box.height), slice(box.left, box.left + box.width))
    mask = hints[inside][..., 2]
    if not mask.any():
        return prediction
    if solver is None:
        solver = spreading_solver(lightness, box)
    sources = np.concatenate([(hints[inside][..., :2] - prediction[inside]) * mask[..., None], mask[..., None]], -1)
    spread = solver.solve(sources.reshape(mask.size, 3).astype(np.float64)).reshape(*mask.shape, 3)
    correction = spread[..., :2] / np.maximum(spread[..., 2:], FULL_SHARE)
    result = prediction.copy()
    result[inside] += correction.astype(prediction.dtype)
    return result
