"""pipeline.preview: one scan colorized in-process is what the pipeline writes, and fits the screen."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np

import pipeline
from models.registry import resolve_model
from pipeline.inference import load_checked_model
from pipeline.preview import colorize_preview, open_preview
from pipeline.records import read_metadata
from pipeline.scans import HintsFile, prepare_scan
from tests.conftest import color_photo, write_image

POINTS = [{"x": 30, "y": 20, "color": "#b22222", "radius": 12}, {"x": 200, "y": 10, "color": "#2e8b57"}]


def _scan_and_hints(tmp_path):
    gray = cv2.cvtColor(color_photo(40, 240, seed=3), cv2.COLOR_BGR2GRAY)
    scan = write_image(tmp_path / "scans" / "a.png", gray)
    hints = tmp_path / "hints" / "a.json"
    hints.parent.mkdir()
    hints.write_text(json.dumps({"points": POINTS}))
    return scan, hints


def test_a_preview_at_full_size_is_the_pipelines_result(tmp_path, hint_echo_model):
    scan_path, hints_path = _scan_and_hints(tmp_path)
    for options in ([], ["--vividness", "1.5", "--no_mirror_average"]):
        output = tmp_path / f"out{len(options)}"
        pipeline.run(
            ["--input", str(tmp_path / "scans"), "--output", str(output), "--model", str(hint_echo_model)]
            + ["--hints", str(tmp_path / "hints"), *options]
        )
        (row,) = read_metadata(str(output)).to_pylist()
        spec = resolve_model(str(hint_echo_model))
        data, hints_data = scan_path.read_bytes(), hints_path.read_bytes()
        scan = prepare_scan(str(scan_path), "a.png", "", data, hashlib.sha256(data).hexdigest(), spec.input_size, False)
        preview = colorize_preview(
            load_checked_model(spec),
            spec,
            open_preview(scan, max_side=240),
            HintsFile(str(hints_path), hints_data, "x"),
            vividness=1.5 if options else 1.0,
            mirror_average=not options,
        )
        written = cv2.imread(row["output_path"])
        assert preview.pixels.shape == written.shape
        assert np.abs(preview.pixels.astype(int) - written).max() <= 1
        assert preview.hint_delta_e2000 == row["hint_delta_e2000"]
        assert abs(preview.colorfulness - row["colorfulness"]) < 0.5


def test_a_preview_fits_the_screen_and_keeps_the_colors(tmp_path, hint_echo_model):
    scan_path, hints_path = _scan_and_hints(tmp_path)
    spec = resolve_model(str(hint_echo_model))
    data = scan_path.read_bytes()
    scan = prepare_scan(str(scan_path), "a.png", "", data, "", spec.input_size, False)
    model = load_checked_model(spec)
    opened = open_preview(scan, max_side=60)
    hinted = colorize_preview(model, spec, opened, HintsFile("h", hints_path.read_bytes(), ""))
    plain = colorize_preview(model, spec, opened, None)
    assert hinted.pixels.shape == plain.pixels.shape == (10, 60, 3)
    assert plain.hint_delta_e2000 is None and hinted.hint_delta_e2000 < 5.0
    b, g, r = hinted.pixels[5, 7].astype(int)  # (30, 20) of the scan: the red known color
    assert r > g + 20 and r > b + 20
    assert np.ptp(plain.pixels.astype(int), axis=-1).max() <= 1  # without hints the echo model's gray
