"""Known colors: the hints file format, its mapping onto the model's grid, and the pipeline's --hints."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import pipeline
from pipeline.records import read_metadata
from tests.conftest import color_photo, write_image
from transforms.hints import Hint, hex_to_ab, hint_grid, parse_hints, spread_known_colors
from transforms.lab import AB_SCALE, bgr_to_lab
from transforms.letterbox import Letterbox, letterbox

RED = "#b22222"


def hints_json(*points: dict) -> bytes:
    return json.dumps({"points": list(points)}).encode()


def test_a_hint_color_keeps_only_its_chroma():
    a, b = hex_to_ab(RED)
    lab = bgr_to_lab(np.array([[[0x22 / 255, 0x22 / 255, 0xB2 / 255]]], np.float32))[0, 0]
    assert (a, b) == pytest.approx((lab[1], lab[2]), abs=1e-4)
    assert hex_to_ab("#808080") == pytest.approx((0.0, 0.0), abs=1e-3)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"points": [], "extra": 1}', '{"points": [...]} and nothing else'),
        (hints_json({"x": 1, "y": 1, "color": RED, "size": 3}), "unknown keys ['size']"),
        (hints_json({"x": 1, "color": RED}), "missing ['y']"),
        (hints_json({"x": 100, "y": 1, "color": RED}), "(100, 1) is outside the 100x50 scan"),
        (hints_json({"x": -1, "y": 1, "color": RED}), "outside"),
        (hints_json({"x": 1, "y": 1, "color": "red"}), 'color must be "#rrggbb"'),
        (hints_json({"x": 1, "y": 1, "color": "#12345"}), 'color must be "#rrggbb"'),
        (hints_json({"x": "1", "y": 1, "color": RED}), "x must be a number"),
        (hints_json({"x": True, "y": 1, "color": RED}), "x must be a number"),
        (hints_json({"x": 1, "y": 1, "color": RED, "radius": -2}), "radius must not be negative"),
        (hints_json(3), "point 0: expected an object"),
        (hints_json(*[{"x": 1, "y": 1, "color": RED}] * 10_001), "10001 points, more than the 10000"),
    ],
)
def test_a_malformed_hints_file_names_its_problem(document, problem):
    with pytest.raises(ValueError, match=None) as raised:
        parse_hints(document, 100, 50)
    assert problem in str(raised.value)


def test_hints_land_where_the_letterbox_puts_their_scan_pixels():
    """For scans far from square, each point's model pixel is the one its scan pixel is shrunk into."""
    rng = np.random.default_rng(0)
    for width, height in ((1000, 90), (70, 1300), (257, 256), (20, 20)):
        for _ in range(25):
            x, y = int(rng.integers(width)), int(rng.integers(height))
            marked = np.zeros((height, width), np.float32)
            marked[y, x] = 1.0
            shrunk, box = letterbox(marked, 64)
            grid = hint_grid((Hint(x + 0.7, y + 0.2, 0.0, 10.0, -20.0),), box, width, height, 64)
            assert grid[..., 2].sum() == 1
            row, column = np.argwhere(grid[..., 2])[0]
            inside = shrunk[box.top : box.top + box.height, box.left : box.left + box.width]
            assert inside[row - box.top, column - box.left] == inside.max() > 0, (width, height, x, y)
            assert grid[row, column, :2] * AB_SCALE == pytest.approx((10.0, -20.0))


def test_a_disc_hint_marks_every_model_pixel_within_its_radius():
    box = letterbox(np.zeros((100, 400), np.float32), 64)[1]
    grid = hint_grid((Hint(200, 50, 50.0, 5.0, 5.0),), box, 400, 100, 64)
    # 50 scan pixels are 8 model pixels: a disc of about pi * 8^2 model pixels
    assert 180 < grid[..., 2].sum() < 220


def scan_with_hints(folder: Path, name: str, points: list[dict] | None, width: int = 240, height: int = 40) -> None:
    gray = cv2.cvtColor(color_photo(height, width, seed=3), cv2.COLOR_BGR2GRAY)
    write_image(folder / "scans" / "box" / f"{name}.png", gray)
    if points is not None:
        (folder / "hints" / "box").mkdir(parents=True, exist_ok=True)
        (folder / "hints" / "box" / f"{name}.json").write_text(json.dumps({"points": points}))


def run_with_hints(folder: Path, model: Path, *extra: str) -> dict[str, dict]:
    output = folder / "out"
    pipeline.run(
        ["--input", str(folder / "scans"), "--output", str(output), "--model", str(model)]
        + ["--hints", str(folder / "hints"), *extra]
    )
    return {Path(row["source_path"]).stem: row for row in read_metadata(str(output)).to_pylist()}


def test_the_pipeline_puts_hint_colors_on_the_scan_and_scores_them(tmp_path, hint_echo_model):
    """Through the real pipeline, a wide scan's result has the hinted chroma at the hints, and says how close."""
    points = [{"x": 30, "y": 20, "color": RED, "radius": 12}, {"x": 200, "y": 10, "color": "#2e8b57", "radius": 12}]
    scan_with_hints(tmp_path, "with", points)
    scan_with_hints(tmp_path, "without", None)
    rows = run_with_hints(tmp_path, hint_echo_model)

    assert rows["with"]["status"] == "ok" and rows["with"]["hints"] == 2
    assert rows["with"]["hints_path"].endswith("hints/box/with.json")
    assert rows["with"]["hint_delta_e2000"] < 2.0
    result = bgr_to_lab(cv2.imread(rows["with"]["output_path"]).astype(np.float32) / 255)
    for point in points:
        wanted = hex_to_ab(point["color"])
        assert result[point["y"], point["x"], 1:] == pytest.approx(wanted, abs=4.0)
    assert rows["without"]["status"] == "ok" and rows["without"]["hints"] == 0
    assert rows["without"]["hint_delta_e2000"] is None
    without = cv2.imread(rows["without"]["output_path"])
    assert np.ptp(without.astype(int), axis=-1).max() <= 1  # no hints: the echo model's gray


def test_a_bad_hints_file_is_an_error_row_and_a_changed_one_redoes_the_scan(tmp_path, hint_echo_model):
    scan_with_hints(tmp_path, "bad", [{"x": 999, "y": 1, "color": RED}])
    scan_with_hints(tmp_path, "good", [{"x": 5, "y": 5, "color": RED}])
    rows = run_with_hints(tmp_path, hint_echo_model)
    assert rows["bad"]["status"] == "error" and not (tmp_path / "out" / "box" / "bad.png").exists()
    assert "hints file" in rows["bad"]["error"] and "outside the 240x40 scan" in rows["bad"]["error"]
    first_seconds = rows["good"]["seconds"]

    assert run_with_hints(tmp_path, hint_echo_model)["good"]["seconds"] == first_seconds  # done before
    (tmp_path / "hints" / "box" / "good.json").write_text(json.dumps({"points": []}))
    rows = run_with_hints(tmp_path, hint_echo_model)
    assert rows["good"]["hints"] == 0 and rows["good"]["seconds"] != first_seconds


def test_hints_with_a_model_that_takes_none_stop_the_run(tmp_path, tiny_model):
    scan_with_hints(tmp_path, "a", [{"x": 5, "y": 5, "color": RED}])
    with pytest.raises(ValueError, match="--hints needs a model that takes known colors"):
        run_with_hints(tmp_path, tiny_model)


def test_the_report_marks_the_hints_on_the_result(tmp_path, hint_echo_model):
    scan_with_hints(tmp_path, "a", [{"x": 30, "y": 20, "color": RED}, {"x": 100, "y": 5, "color": "#2e8b57"}])
    run_with_hints(tmp_path, hint_echo_model)
    report = (tmp_path / "out" / "report.html").read_text()
    assert report.count("<circle") == 2 and f'fill="{RED}"' in report and 'viewBox="0 0 240 40"' in report
    assert '<option value="hint_delta_e2000"' in report


def test_hints_are_read_from_cloud_storage(bucket, hint_echo_model, tmp_path):
    scan_with_hints(tmp_path, "a", [{"x": 30, "y": 20, "color": RED, "radius": 12}])
    scan_with_hints(tmp_path, "b", [{"x": 30, "y": 20, "color": "blue"}])
    for path in sorted(tmp_path.rglob("*.*")):
        bucket.blob(path.relative_to(tmp_path).as_posix()).upload_from_filename(str(path))
    root = f"gs://{bucket.name}"
    pipeline.run(
        ["--input", f"{root}/scans", "--output", f"{root}/out", "--model", str(hint_echo_model)]
        + ["--hints", f"{root}/hints"]
    )
    rows = {Path(row["source_path"]).stem: row for row in read_metadata(f"{root}/out").to_pylist()}
    assert rows["a"]["hints"] == 1 and rows["a"]["hints_path"] == f"{root}/hints/box/a.json"
    assert rows["a"]["hint_delta_e2000"] < 2.0
    assert rows["b"]["status"] == "error" and f"hints file {root}/hints/box/b.json" in rows["b"]["error"]


def test_hint_coordinates_are_those_of_the_scan_as_displayed(tmp_path, hint_echo_model):
    """A JPEG stored 80 x 60 with EXIF orientation 6 is displayed 60 wide and 80 high: hints follow the display."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    for name, point in (("upright", {"x": 50, "y": 70}), ("stored", {"x": 70, "y": 10})):
        path = tmp_path / "scans" / "box" / f"{name}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(color_photo(60, 80)[:, :, 0]).save(path, exif=exif)
        (tmp_path / "hints" / "box").mkdir(parents=True, exist_ok=True)
        (tmp_path / "hints" / "box" / f"{name}.json").write_text(json.dumps({"points": [dict(point, color=RED)]}))
    rows = run_with_hints(tmp_path, hint_echo_model)
    assert rows["upright"]["status"] == "ok" and (rows["upright"]["width"], rows["upright"]["height"]) == (60, 80)
    assert "(70, 10) is outside the 60x80 scan" in rows["stored"]["error"]


def test_a_known_color_is_met_at_its_point_and_spreads_over_its_region_not_across_edges():
    """A dark left half and a light right half, a hint in the left: the left takes it, the right keeps the model's."""
    rng = np.random.default_rng(0)
    lightness = np.where(np.arange(96) < 48, 0.3, 0.8)[None, :].repeat(64, 0)
    lightness = (lightness + rng.normal(0, 0.005, lightness.shape)).astype(np.float32)[..., None]
    prediction = np.full((96, 96, 2), 0.05, np.float32)  # the model's own color everywhere
    hints = np.zeros((96, 96, 3), np.float32)
    hints[30, 10] = (0.3, -0.2, 1.0)
    box = Letterbox(16, 0, 64, 96)  # the scan is 64 rows of the 96 x 96 grid
    grid = np.zeros((96, 96, 1), np.float32)
    grid[16:80] = lightness
    result = spread_known_colors(prediction, grid, hints, box)
    assert result[30, 10] == pytest.approx((0.3, -0.2))
    assert result[70, 40] == pytest.approx((0.3, -0.2), abs=0.01)  # same region, 50 pixels away
    # across the edge a little leaks: about a tenth of the correction 12 pixels past it (FULL_SHARE 0.1, fitted
    # on the validation photos, takes a small share's correction more fully than 0.2 did, which left half that)
    assert result[30, 60] == pytest.approx((0.05, 0.05), abs=0.04)
    assert np.all(result[:16] == prediction[:16])  # the letterbox's border is left alone
    assert spread_known_colors(prediction, grid, np.zeros_like(hints), box) is prediction
