"""One scan colorized in this process, exactly as the pipeline colorizes it, at a size for the screen.

For front ends (the hint studio): the same model input, known colors, model call, vividness,
mirror averaging, spreading and recombination as a pipeline run, only the final recombination
at a reduced size, so what a preview shows is what the next run writes at the scan's resolution.
A scan is opened once (`open_preview`: its reduced copy, the factorized spreading system) and
then colorized with one set of known colors after another, each in a fraction of a second.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from models.registry import ModelSpec
from pipeline.inference import model_batch, predict_ab
from pipeline.scans import (
    HintsFile,
    Scan,
    colorize_scan,
    prepare_scan,
    scan_hint_delta_e2000,
    spread_hints,
    with_hints,
)
from transforms.hints import spreading_solver


@dataclass(frozen=True)
class PreviewScan:
    """A scan (from `prepare_scan`, without hints) ready for previews: its copy at screen size, and its spreading."""

    scan: Scan
    reduced: Scan  # the scan at screen size: its pixels, width and height reduced, the model input the same
    solver: object  # `spreading_solver` of its model input


@dataclass(frozen=True)
class Preview:
    """A colorized scan at screen size, with what the table would say about the full-size result."""

    pixels: np.ndarray  # uint8 BGR, at most `max_side` pixels on its longer side
    colorfulness: float  # of this reduced copy
    hint_delta_e2000: float | None  # at the scan's own resolution, as the table records it


def warm_up(model, spec: ModelSpec, mirror_average: bool = True) -> None:
    """One preview of a small near-white scan with a saturated known color, which sRGB cannot show there.

    The first builds the model's graph and the recombination's chroma table (seconds each), so
    the first preview a user waits for does not.
    """
    blank = cv2.imencode(".png", np.full((8, 8), 250, np.uint8))[1].tobytes()
    scan = prepare_scan("blank.png", "blank.png", "", blank, "", spec.input_size, keep_truth=False)
    hints = HintsFile("blank.json", b'{"points": [{"x": 1, "y": 1, "color": "#ff00ff", "radius": 8}]}', "")
    colorize_preview(model, spec, open_preview(scan, 8), hints if spec.takes_hints else None, 1.0, mirror_average)


def open_preview(scan: Scan, max_side: int) -> PreviewScan:
    """What every preview of `scan` at `max_side` pixels (its longer side) shares."""
    scale = min(1.0, max_side / max(scan.width, scan.height))
    width, height = max(1, round(scan.width * scale)), max(1, round(scan.height * scale))
    pixels = scan.pixels
    if (width, height) != (scan.width, scan.height):
        pixels = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA)
    reduced = dataclasses.replace(scan, pixels=pixels, width=width, height=height)
    return PreviewScan(scan, reduced, spreading_solver(scan.model_input, scan.letterbox))


def colorize_preview(
    model,
    spec: ModelSpec,
    opened: PreviewScan,
    hints_file: HintsFile | None,
    vividness: float = 1.0,
    mirror_average: bool = True,
) -> Preview:
    """The opened scan colorized with `hints_file`'s known colors, at its reduced size.

    A hints file the pipeline would refuse raises its ValueError here too.
    """
    scan = opened.scan if hints_file is None else with_hints(opened.scan, hints_file)
    inputs = model_batch(scan.model_input[None], spec.takes_hints, [scan.model_hints])
    prediction = spread_hints(scan, predict_ab(model, inputs, mirror_average)[0] * vividness, opened.solver)
    colorized, colorfulness, _ = colorize_scan(opened.reduced, prediction, 8, keep_float=False)
    return Preview(colorized, colorfulness, scan_hint_delta_e2000(scan, prediction))
