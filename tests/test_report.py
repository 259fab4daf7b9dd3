"""The HTML report: tables, comparison of models, gallery selection, and a real browser loading it."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from PIL import Image

import pipeline
from pipeline.records import STATUS_OK, metadata_row
from pipeline.report import (
    Run,
    histograms,
    render_report,
    select_gallery,
    shown_names,
    summary_table,
    warnings_table,
    write_report,
)
from tests.conftest import color_photo, write_image

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=10000",
]


@pytest.fixture(scope="module")
def evaluated_runs(tmp_path_factory, tiny_model):
    """Two runs over the same color photos (a tiny model and the gray baseline), with one broken file
    and one written with a warning (a TIFF of two pages)."""
    folder = tmp_path_factory.mktemp("report")
    for index in range(2):
        write_image(folder / "photos" / f"photo{index}.jpg", color_photo(40 + 10 * index, 60, seed=index))
    pages = [Image.fromarray(color_photo(60, 60, seed=seed)[:, :, ::-1]) for seed in (2, 3)]
    pages[0].save(folder / "photos" / "pages.tif", save_all=True, append_images=pages[1:])
    (folder / "photos" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    outputs = []
    for model in (str(tiny_model), "gray"):
        output = folder / f"out-{model.rsplit('/', 1)[-1]}"
        pipeline.run(["--input", str(folder / "photos"), "--output", str(output), "--model", model, "--evaluate"])
        outputs.append(output)
    return outputs


def test_every_run_writes_a_report_with_summary_errors_warnings_and_gallery(evaluated_runs):
    report = (evaluated_runs[0] / "report.html").read_text()
    for table in ('id="summary"', 'id="errors"', 'id="warnings"', 'id="gallery"'):
        assert table in report
    assert "broken.jpg" in report and "delta_e2000 (mean)" in report and "psnr (median)" in report
    assert "<tr><td>ok, with warnings</td><td>1</td></tr>" in report
    warnings = re.search(r'<table id="warnings">(.*?)</table>', report).group(1)
    assert "pages.tif" in warnings and "a TIFF of 2 pages: only the first was colorized" in warnings
    assert report.count("data:image/jpeg;base64,") == 3 * 3  # scan, result and ground truth of 3 photos


def test_comparison_report_has_a_column_per_model(evaluated_runs, tmp_path):
    destination = write_report([str(output) for output in evaluated_runs], str(tmp_path / "compare.html"))
    report = open(destination).read()
    assert "tiny vtest" in report and "gray v1" in report
    header = re.search(r'<table id="summary"><tr>(.*?)</tr>', report).group(1)
    assert header.count("<th>") == 3  # metric, tiny, gray
    assert report.count("data:image/jpeg;base64,") == 3 * 4  # scan, two results, ground truth


def test_large_runs_show_the_worst_the_best_and_a_sample():
    keys = [f"f{i:03d}" for i in range(300)]
    score = {key: float(i) for i, key in enumerate(keys)}
    chosen = select_gallery(keys, score, extremes=10, sample=5)
    assert len(chosen) == 25 and chosen[:10] == keys[:10] and chosen[10:20] == keys[-10:]
    assert chosen == select_gallery(keys, score, extremes=10, sample=5)  # the same sample every time
    assert select_gallery(keys[:20], score, extremes=10, sample=5) == keys[:20]


def test_warnings_are_listed_escaped_and_a_run_without_them_says_so():
    rows = [
        {"status": "ok", "source_path": "a<b>.tif", "warnings": "a TIFF of 3 pages: only the first was colorized"},
        {"status": "ok", "source_path": "plain.jpg", "warnings": None},
        {"status": "ok", "source_path": "old.jpg"},  # a table written before the column existed
        {"status": "error", "source_path": "bad.jpg", "error": "file is empty (0 bytes)", "warnings": None},
    ]
    run = Run(output="out", model="m", rows=rows)
    warnings = warnings_table([run])
    assert "a&lt;b&gt;.tif" in warnings and "3 pages" in warnings and "plain.jpg" not in warnings
    assert "<tr><td>ok, with warnings</td><td>1</td></tr>" in summary_table([run])
    assert warnings_table([Run(output="out", model="m", rows=rows[1:])]) == '<p id="warnings">No warnings.</p>'
    many = [{"status": "ok", "source_path": f"{i}.bmp", "warnings": "BMP holds no ICC profile"} for i in range(502)]
    listed = warnings_table([Run(output="out", model="m", rows=many)])
    assert listed.count("<tr><td>m</td>") == 500 and "And 2 more" in listed and "501.bmp" not in listed


def test_summary_says_over_how_many_files_each_metric_was_taken():
    rows = [
        {"status": "ok", "psnr": 20.0, "colorfulness": 30.0},
        {"status": "ok", "psnr": None, "colorfulness": 40.0},
        {"status": "ok", "psnr": None, "colorfulness": 50.0},
    ]
    table = summary_table([Run(output="out", model="m", rows=rows)])
    assert "<tr><td>psnr (n)</td><td>1</td></tr>" in table
    assert "<tr><td>colorfulness (n)</td><td>3</td></tr>" in table


def test_histograms_have_labelled_axes_and_no_heading_without_them():
    def run(*psnr: float) -> Run:
        rows = [metadata_row(source_path=f"/s/{i}.png", status=STATUS_OK, psnr=v) for i, v in enumerate(psnr)]
        return Run(output="out", model="m", rows=rows)

    figure = histograms([run(20.0, 25.0)])
    assert figure.startswith("<h2>Distributions</h2>") and ">files</text>" in figure and ">psnr</text>" in figure
    assert histograms([run(20.0)]) == ""
    assert "Distributions" not in render_report([run(20.0)])


def test_gallery_names_files_by_their_path_below_the_shared_folder():
    paths = ["/archive/scans/box1/001.tif", "/archive/scans/box2/001.tif", "gs://b/x/box3/a.tif"]
    assert shown_names(paths[:2]) == {paths[0]: "box1/001.tif", paths[1]: "box2/001.tif"}
    assert shown_names(paths[2:]) == {paths[2]: "a.tif"}
    assert shown_names(paths)[paths[2]] == paths[2]  # nothing shared: the whole path


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.skip("Chromium is not installed here and run_tests.sh could not install Debian's chromium")


def test_report_opens_in_chromium_with_every_image_loaded(evaluated_runs, tmp_path):
    report = evaluated_runs[0] / "report.html"
    dom = subprocess.run(
        [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", report.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    images = re.search(r'data-images="(\d+)"', dom)
    loaded = re.search(r'data-images-loaded="(\d+)"', dom)
    assert images and loaded, "the report's load script did not run"
    assert int(images.group(1)) == 9 and loaded.group(1) == images.group(1)
    for table in ('id="summary"', 'id="errors"', 'id="warnings"', 'id="gallery"'):
        assert table in dom
