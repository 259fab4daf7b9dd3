"""A self-contained HTML evaluation report built from one or more output folders' Parquet tables.

    python -m pipeline.report OUTPUT [OUTPUT ...] [--out report.html]

One folder gives a summary (counts of ok, error and warned; for every metric, over how many files
it was taken, its mean and median), the error rows, the warned rows, histograms and a gallery (scan,
result, ground truth; files by their path below the folder they share) sortable by any
metric. Several folders (runs of different models over the same scans) give one
report with a column per model and their results side by side. Thumbnails are
embedded, and large runs show only the worst, the best and a random sample, so the
file stays a few MB.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from apache_beam.io.filesystems import FileSystems

from pipeline.records import STATUS_OK, read_metadata
from transforms.codec import decode_preview
from transforms.metrics import METRIC_NAMES

REPORT_METRICS = (*METRIC_NAMES, "colorfulness", "hints", "hint_delta_e2000")
LOWER_IS_BETTER = {"mae", "mse", "mae_ab", "mse_ab", "delta_e2000", "skin_delta_e2000", "hint_delta_e2000"}
SORT_METRIC_PREFERENCE = ("delta_e2000", "psnr", "colorfulness")  # the gallery's default order, worst first
THUMBNAIL_HEIGHT = 160
FILE_TABLE_ROWS = 500  # errors or warnings listed in the report; the rest are counted


@dataclass
class Run:
    """One output folder: its model and its metadata rows."""

    output: str
    model: str
    rows: list[dict]

    @property
    def ok_rows(self) -> list[dict]:
        return [row for row in self.rows if row["status"] == STATUS_OK]


def load_run(output: str) -> Run:
    rows = read_metadata(output).to_pylist()
    models = sorted({f"{row['model']} v{row['model_version']}" for row in rows if row["model"]})
    return Run(output=output, model=", ".join(models) or output, rows=rows)


def thumbnail_data_uri(path: str | None, height: int = THUMBNAIL_HEIGHT, gray: bool = False) -> str | None:
    """A small JPEG of any image the pipeline reads, as a data: URI; None if it cannot be read.

    `gray` shows only the luminance: what the model saw of a color photo under --evaluate.
    """
    if not path:
        return None
    try:
        with FileSystems.open(path) as handle:
            bgr = decode_preview(handle.read(), height)
    except Exception:  # noqa: BLE001 - a missing picture must not cost the whole report
        return None
    if gray:
        bgr = cv2.cvtColor(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    width = max(1, round(bgr.shape[1] * height / bgr.shape[0]))
    small = cv2.resize(bgr, (min(width, 4 * height), height), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode() if ok else None


def _values(rows: Sequence[dict], metric: str) -> list[float]:
    return [row[metric] for row in rows if row.get(metric) is not None and np.isfinite(row[metric])]


def _format(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def summary_table(runs: Sequence[Run]) -> str:
    """Counts, then mean and median of every metric, one column per run."""
    header = "".join(f"<th>{html.escape(run.model)}</th>" for run in runs)
    lines = [
        f"<tr><td>files</td>{''.join(f'<td>{len(run.rows)}</td>' for run in runs)}</tr>",
        f"<tr><td>ok</td>{''.join(f'<td>{len(run.ok_rows)}</td>' for run in runs)}</tr>",
        f"<tr><td>error</td>{''.join(f'<td>{len(run.rows) - len(run.ok_rows)}</td>' for run in runs)}</tr>",
        f"<tr><td>ok, with warnings</td>{''.join(f'<td>{_warned(run)}</td>' for run in runs)}</tr>",
    ]
    for metric in REPORT_METRICS:
        per_run = [_values(run.ok_rows, metric) for run in runs]
        if not any(per_run):
            continue
        # Metrics need a ground truth, colorfulness does not: each says over how many files it was taken.
        lines.append(f"<tr><td>{metric} (n)</td>{''.join(f'<td>{len(values)}</td>' for values in per_run)}</tr>")
        for name, reduce in (("mean", statistics.fmean), ("median", statistics.median)):
            cells = "".join(f"<td>{_format(reduce(values)) if values else ''}</td>" for values in per_run)
            better = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
            lines.append(f'<tr><td title="{better}">{metric} ({name})</td>{cells}</tr>')
    return f'<table id="summary"><tr><th>metric</th>{header}</tr>{"".join(lines)}</table>'


def _warned(run: Run) -> int:
    return sum(1 for row in run.ok_rows if row.get("warnings"))


def errors_table(runs: Sequence[Run]) -> str:
    """The files that failed, with their errors."""
    rows = [(run.model, row, row["error"] or "") for run in runs for row in run.rows if row["status"] != STATUS_OK]
    return _file_table("errors", "error", rows, "No errors.")


def warnings_table(runs: Sequence[Run]) -> str:
    """The files written with a warning (a profile, metadata or pages that could not be kept as they were)."""
    rows = [(run.model, row, row["warnings"]) for run in runs for row in run.ok_rows if row.get("warnings")]
    return _file_table("warnings", "warnings", rows, "No warnings.")


def _file_table(table_id: str, column: str, rows: list[tuple[str, dict, str]], empty: str) -> str:
    """Model, file and `column` of each row, the first FILE_TABLE_ROWS of them: a night where every scan
    fails or warns alike must not make the report as large as its table, which holds them all."""
    if not rows:
        return f'<p id="{table_id}">{empty}</p>'
    cells = "".join(
        f"<tr><td>{html.escape(model)}</td><td>{html.escape(row['source_path'])}</td><td>{html.escape(text)}</td></tr>"
        for model, row, text in rows[:FILE_TABLE_ROWS]
    )
    table = f'<table id="{table_id}"><tr><th>model</th><th>file</th><th>{column}</th></tr>{cells}</table>'
    if len(rows) <= FILE_TABLE_ROWS:
        return table
    more = len(rows) - FILE_TABLE_ROWS
    return f"{table}<p>And {more} more: the metadata table's <code>{column}</code> column has them all.</p>"


def histogram_svg(values: Sequence[float], metric: str, title: str, bins: int = 20) -> str:
    """A small inline SVG histogram: the metric along the x axis, the number of files up the y axis."""
    counts, edges = np.histogram(values, bins=bins)
    left, width, height = 28, 320, 120
    bar, peak = width / bins, max(int(counts.max()), 1)
    bars = "".join(
        f'<rect x="{left + i * bar:.1f}" y="{height - 100 * c / peak:.1f}" '
        f'width="{bar - 1:.1f}" height="{100 * c / peak:.1f}">'
        f"<title>{edges[i]:.3g} to {edges[i + 1]:.3g}: {c}</title></rect>"
        for i, c in enumerate(counts)
    )
    middle = height - 50
    axes = (
        f'<text x="{left - 4}" y="{height - 100 + 10}" text-anchor="end">{peak}</text>'
        f'<text x="{left - 4}" y="{height}" text-anchor="end">0</text>'
        f'<text x="10" y="{middle}" transform="rotate(-90 10 {middle})" text-anchor="middle">files</text>'
        f'<text x="{left}" y="{height + 14}">{edges[0]:.3g}</text>'
        f'<text x="{left + width}" y="{height + 14}" text-anchor="end">{edges[-1]:.3g}</text>'
        f'<text x="{left + width / 2}" y="{height + 14}" text-anchor="middle">{html.escape(metric)}</text>'
    )
    return (
        f'<figure><svg width="{left + width}" height="{height + 18}" role="img" aria-label="{html.escape(title)}">'
        f"{bars}{axes}</svg><figcaption>{html.escape(title)}</figcaption></figure>"
    )


def histograms(runs: Sequence[Run]) -> str:
    """The distributions of CIEDE2000 and PSNR, with their heading; nothing where no run has two values of either."""
    figures = [
        histogram_svg(values, metric, f"{metric}, {run.model}")
        for metric in ("delta_e2000", "psnr")
        for run in runs
        if len(values := _values(run.ok_rows, metric)) > 1
    ]
    return f'<h2>Distributions</h2><div class="histograms">{"".join(figures)}</div>' if figures else ""


def shown_names(paths: Sequence[str]) -> dict[str, str]:
    """Each path as the gallery shows it: relative to the folder all of them share (`box1/001.tif`)."""
    folders = [path.split("/")[:-1] for path in paths]
    shared = 0
    while folders and all(len(parts) > shared and parts[shared] == folders[0][shared] for parts in folders):
        shared += 1
    return {path: "/".join(path.split("/")[shared:]) for path in paths}


def select_gallery(keys: list[str], score: dict[str, float], extremes: int, sample: int, seed: int = 0) -> list[str]:
    """All keys when few; otherwise the worst and best `extremes` by score and a random sample of the rest."""
    if len(keys) <= 2 * extremes + sample:
        return keys
    ranked = sorted((key for key in keys if key in score), key=score.__getitem__)
    chosen = ranked[:extremes] + ranked[-extremes:]
    rest = sorted(set(keys) - set(chosen))
    return chosen + random.Random(seed).sample(rest, min(sample, len(rest)))


def _default_sort_metric(runs: Sequence[Run]) -> str | None:
    return next((m for m in SORT_METRIC_PREFERENCE if any(_values(run.ok_rows, m) for run in runs)), None)


def gallery(runs: Sequence[Run], extremes: int, sample: int) -> str:
    """Rows of thumbnails (scan, each run's result, ground truth) with their metrics, sortable."""
    by_source = [{row["source_path"]: row for row in run.rows} for run in runs]
    keys = sorted(set().union(*by_source))
    sort_metric = _default_sort_metric(runs)
    score = {}  # ascending = worst first, judged on the first run
    for key, row in by_source[0].items():
        if sort_metric and _values([row], sort_metric):
            score[key] = -row[sort_metric] if sort_metric in LOWER_IS_BETTER else row[sort_metric]
    chosen = select_gallery(keys, score, extremes, sample)
    names = shown_names(keys)
    metrics = [m for m in REPORT_METRICS if any(_values(run.ok_rows, m) for run in runs)]
    header = "<th>scan</th>" + "".join(f"<th>{html.escape(run.model)}</th>" for run in runs) + "<th>ground truth</th>"
    sorter = "".join(f'<option value="{m}"{" selected" if m == sort_metric else ""}>{m}</option>' for m in metrics)
    body = []
    for key in chosen:
        rows = [source.get(key) for source in by_source]
        first = next(row for row in rows if row)
        truth = next((row["ground_truth_path"] for row in rows if row and row["ground_truth_path"]), None)
        cells = [_image_cell(key, html.escape(names[key]), gray=truth == key)]
        for row in rows:
            if row is None or row["status"] != STATUS_OK:
                cells.append(f'<td class="error">{html.escape(row["error"] if row else "not in this run")}</td>')
                continue
            caption = " ".join(f"{m}={_format(row.get(m))}" for m in metrics if row.get(m) is not None)
            cells.append(_image_cell(row["output_path"], html.escape(caption), overlay=hint_marks(row)))
        cells.append(_image_cell(truth, "") if truth else "<td></td>")
        data = " ".join(
            f'data-{m.replace("_", "-")}="{first.get(m) if first.get(m) is not None else ""}"' for m in metrics
        )
        body.append(f"<tr {data}>{''.join(cells)}</tr>")
    note = f"{len(chosen)} of {len(keys)} files" + (
        "" if len(chosen) == len(keys) else ": the worst, the best and a random sample"
    )
    return (
        f'<p>{note}. Sort by <select id="sort">{sorter}</select> '
        f'<label><input type="checkbox" id="best-first"> best first</label></p>'
        f'<table id="gallery"><thead><tr>{header}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def hint_marks(row: dict) -> str:
    """An SVG laid over a result's thumbnail: a ring in each known color where its hints file put it."""
    if not row.get("hints") or not row.get("hints_path"):
        return ""
    try:
        with FileSystems.open(row["hints_path"]) as handle:
            points = json.loads(handle.read())["points"]
        width, height = row["width"], row["height"]
        smallest = 0.025 * max(width, height)  # a point stays visible on a thumbnail
        rings = "".join(
            f'<circle cx="{float(p["x"]) + 0.5}" cy="{float(p["y"]) + 0.5}" '
            f'r="{max(float(p.get("radius", 0)), smallest)}" fill="{html.escape(str(p["color"]))}" '
            f'stroke="white" stroke-width="{smallest / 3}"/>'
            for p in points
        )
    except Exception:  # noqa: BLE001 - a hints file changed since the run must not cost the report
        return ""
    return f'<svg viewBox="0 0 {width} {height}" preserveAspectRatio="none">{rings}</svg>'


def _image_cell(path: str | None, caption: str, gray: bool = False, overlay: str = "") -> str:
    uri = thumbnail_data_uri(path, gray=gray)
    image = (
        f'<span class="shot"><img src="{uri}" alt="{html.escape(path or "")}">{overlay}</span>'
        if uri
        else "(unreadable)"
    )
    return f"<td>{image}<br><small>{caption}</small></td>"


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}#summary td{text-align:right}
#summary td:first-child{text-align:left}img{height:160px}small{color:#555}.error{color:#a00}
.histograms{display:flex;flex-wrap:wrap;gap:1em}.shot{position:relative;display:inline-block}
.shot svg{position:absolute;left:0;top:0;width:100%;height:100%}rect{fill:#4a7ab0}svg text{font-size:11px;fill:#555}
"""
_SCRIPT = """
const lowerIsBetter = new Set(%s);
function sortGallery() {
  const metric = document.getElementById('sort').value, best = document.getElementById('best-first').checked;
  const key = 'data-' + metric.replaceAll('_', '-'), body = document.querySelector('#gallery tbody');
  const value = r => { const v = r.getAttribute(key); return v === '' || v === null ? NaN : parseFloat(v); };
  const rows = [...body.rows].sort((a, b) => {
    const x = value(a), y = value(b);
    if (isNaN(x) || isNaN(y)) return isNaN(x) - isNaN(y);
    const worstFirst = lowerIsBetter.has(metric) ? y - x : x - y;
    return best ? -worstFirst : worstFirst;
  });
  rows.forEach(r => body.appendChild(r));
}
document.getElementById('sort')?.addEventListener('change', sortGallery);
document.getElementById('best-first')?.addEventListener('change', sortGallery);
window.addEventListener('load', () => {
  const images = [...document.images];
  document.body.dataset.images = images.length;
  document.body.dataset.imagesLoaded = images.filter(i => i.complete && i.naturalWidth > 0).length;
});
if (document.getElementById('sort')) sortGallery();
"""


def render_report(runs: Sequence[Run], extremes: int = 24, sample: int = 24) -> str:
    """The whole report as one HTML string."""
    title = "RevivaColor report: " + " vs ".join(run.model for run in runs)
    script = _SCRIPT % sorted(LOWER_IS_BETTER)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p>Outputs: {', '.join(html.escape(run.output) for run in runs)}</p>"
        f"<h2>Summary</h2>{summary_table(runs)}<h2>Errors</h2>{errors_table(runs)}"
        f"<h2>Warnings</h2>{warnings_table(runs)}"
        f"{histograms(runs)}<h2>Gallery</h2>{gallery(runs, extremes, sample)}"
        f"<script>{script}</script></body></html>"
    )


def write_report(outputs: Sequence[str], destination: str, extremes: int = 24, sample: int = 24) -> str:
    """Build the report of one or more output folders and write it to `destination`."""
    document = render_report([load_run(output) for output in outputs], extremes, sample)
    with FileSystems.create(destination, mime_type="text/html") as handle:
        handle.write(document.encode("utf-8"))
    return destination


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("outputs", nargs="+", help="output folders of pipeline runs (one per model to compare)")
    parser.add_argument("--out", default=None, help="report file (default: FIRST_OUTPUT/report.html)")
    parser.add_argument("--extremes", type=int, default=24, help="worst and best files shown in a large gallery")
    parser.add_argument("--sample", type=int, default=24, help="random files shown besides them")
    args = parser.parse_args(argv)
    destination = args.out or FileSystems.join(args.outputs[0].rstrip("/"), "report.html")
    print(f"wrote {write_report(args.outputs, destination, args.extremes, args.sample)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
