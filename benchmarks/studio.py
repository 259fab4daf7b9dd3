"""What the hint studio costs: the gallery of a large archive, and the live preview of one scan.

    python -m benchmarks.studio gallery [--scans 50000] [--folder /tmp/revivacolor-gallery]
    python -m benchmarks.studio preview [--photo PATH] [--model default] [--threads 2]

`gallery` makes an archive of that many tiny scans (8 x 8 PNGs, 500 to a folder) with a table of
a night's results for it (one Parquet file, as a run writes), then measures, in this process, the
studio's start (listing the scans by the pipeline's rules), the first page of the gallery
through its web app (the table read), a page filtered by hints and sorted by hint_delta_e2000,
the first page's 60 thumbnails (scan and result) made cold and then from the cache, and the
process's memory (resident set before and after, and its peak).

`preview` measures the preview of the editor: the scan decoded and prepared once when it is
opened, its first preview (which also factorizes its spreading system once), then one preview
per change (a known color added) through the web app's own code, at screen size (1024), with
the model on `--threads` CPU threads, for the photo as it is and resized to 4000 x 3000 and
12,000 x 9,000. Wall time, median of the changes. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.records import METADATA_SCHEMA, metadata_row

REPOSITORY = Path(__file__).resolve().parent.parent
DEFAULT_PHOTO = REPOSITORY / "samples" / "gray" / "pyfeat_bwpicturehuman.jpg"
PER_FOLDER = 500


def rss_mb() -> float:
    """This process's current resident memory in MB (Linux)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # Linux gives kB


def make_archive(folder: Path, count: int) -> None:
    """`count` tiny scans under folder/scans, a table of a run over them under folder/out, a hint for every tenth."""
    scans, output, hints = folder / "scans", folder / "out", folder / "hints"
    if (folder / f".complete-{count}").exists():
        return
    rng = np.random.default_rng(0)
    tiny = [cv2.imencode(".png", rng.integers(0, 255, (8, 8), np.uint8))[1].tobytes() for _ in range(16)]
    rows = []
    for index in range(count):
        relative = f"box{index // PER_FOLDER:04d}/scan{index:06d}.png"
        path = scans / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(tiny[index % len(tiny)])
        hinted = index % 10 == 0
        if hinted:
            (hints / relative).parent.mkdir(parents=True, exist_ok=True)
            (hints / relative).with_suffix(".json").write_text(
                json.dumps({"points": [{"x": 1, "y": 1, "color": "#884422"}]})
            )
        failed = index % 97 == 0
        rows.append(
            metadata_row(
                source_path=str(path),
                output_path=None if failed else str(output / relative),
                status="error" if failed else "ok",
                error="not a readable image: ..." if failed else None,
                width=8,
                height=8,
                hints=1 if hinted else 0,
                hint_delta_e2000=float(rng.uniform(0, 20)) if hinted else None,
                colorfulness=float(rng.uniform(0, 60)),
            )
        )
        if not failed:
            (output / relative).parent.mkdir(parents=True, exist_ok=True)
            (output / relative).write_bytes(tiny[(index + 1) % len(tiny)])
    (output / "metadata").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=METADATA_SCHEMA), output / "metadata" / "part-benchmark.parquet")
    (folder / f".complete-{count}").touch()


def measure_gallery(folder: Path, count: int) -> dict:
    """Seconds and memory of the studio's start, first page and first page's thumbnails on `count` scans."""
    from starlette.testclient import TestClient

    from models.registry import resolve_model
    from studio.app import create_app
    from studio.archive import Archive
    from studio.cli import served_hosts
    from studio.session import Studio

    started = time.perf_counter()
    make_archive(folder, count)
    made = time.perf_counter() - started
    spec = resolve_model("default")  # the model itself is not loaded: the gallery does not use it
    results = {"scans": count, "archive_made_s": round(made, 1), "rss_before_mb": round(rss_mb(), 1)}
    with tempfile.TemporaryDirectory(prefix="revivacolor-studio-cache-") as cache:
        started = time.perf_counter()
        archive = Archive(str(folder / "scans"), str(folder / "hints"), str(folder / "out"))
        results["start_s"] = round(time.perf_counter() - started, 2)
        studio = Studio(archive, spec, None, cache)
        client = TestClient(
            create_app(studio, "k", 8765, served_hosts("127.0.0.1", 8765)), base_url="http://127.0.0.1:8765"
        )
        headers = {"X-Studio-Key": "k"}
        started = time.perf_counter()
        page = client.get("/api/scans", params={"limit": 60}, headers=headers).json()
        results["first_page_s"] = round(time.perf_counter() - started, 2)
        assert page["total"] == count, page.get("error")
        started = time.perf_counter()
        client.get("/api/scans", params={"limit": 60, "sort": "hint_delta_e2000", "show": "hinted"}, headers=headers)
        results["sorted_filtered_page_s"] = round(time.perf_counter() - started, 2)
        for label in ("thumbnails_cold_s", "thumbnails_cached_s"):
            started = time.perf_counter()
            for item in page["items"]:
                for kind in ("scan", "result"):
                    client.get("/api/thumbnail", params={"path": item["relative"], "kind": kind}, headers=headers)
            results[label] = round(time.perf_counter() - started, 2)
        results["rss_after_mb"] = round(rss_mb(), 1)
        results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    results["time_to_first_page_s"] = round(results["start_s"] + results["first_page_s"], 2)
    return results


PREVIEW_SIZES = (None, (4000, 3000), (12000, 9000))  # None: the photo's own size


def measure_preview(
    photo: Path, model_name: str, threads: int, changes: int = 5, sizes: tuple = PREVIEW_SIZES
) -> list[dict]:
    """Seconds to open a scan and per preview, for the photo resized to each of `sizes` (width, height)."""
    from models.registry import resolve_model
    from pipeline.inference import limit_cpu_threads, load_checked_model
    from pipeline.preview import warm_up
    from studio.archive import Archive
    from studio.images import encode_jpeg
    from studio.session import Studio

    limit_cpu_threads(threads)
    spec = resolve_model(model_name)
    model = load_checked_model(spec)
    gray = cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE)
    warm_up(model, spec)  # as the studio does at start
    results = []
    with tempfile.TemporaryDirectory(prefix="revivacolor-studio-preview-") as work:
        for size in sizes:
            scan = gray if size is None else cv2.resize(gray, size, interpolation=cv2.INTER_CUBIC)
            folder = Path(work) / f"{scan.shape[1]}x{scan.shape[0]}"
            (folder / "scans").mkdir(parents=True)
            cv2.imwrite(str(folder / "scans" / "scan.jpg"), scan, [cv2.IMWRITE_JPEG_QUALITY, 92])
            studio = Studio(Archive(str(folder / "scans"), str(folder / "hints")), spec, model, work)
            started = time.perf_counter()
            studio.describe("scan.jpg")
            opened = time.perf_counter() - started
            rng = np.random.default_rng(0)
            points, times = [], []
            started = time.perf_counter()
            studio.preview("scan.jpg", points, 1024)  # also factorizes the scan's spreading system
            first = time.perf_counter() - started
            for _ in range(changes):
                x, y = int(rng.integers(scan.shape[1])), int(rng.integers(scan.shape[0]))
                points.append({"x": x, "y": y, "color": f"#{int(rng.integers(1 << 24)):06x}"})
                started = time.perf_counter()
                encode_jpeg(studio.preview("scan.jpg", points, 1024).pixels)
                times.append(time.perf_counter() - started)
            results.append(
                {
                    "scan": f"{scan.shape[1]}x{scan.shape[0]}",
                    "open_s": round(opened, 2),
                    "first_preview_s": round(first, 2),
                    "preview_median_s": round(statistics.median(times), 3),
                    "preview_max_s": round(max(times), 3),
                    "peak_rss_mb": round(peak_rss_mb(), 1),
                }
            )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.studio", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    gallery = commands.add_parser("gallery", help="the gallery of a large archive")
    gallery.add_argument("--scans", type=int, default=50_000)
    gallery.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "revivacolor-gallery")
    preview = commands.add_parser("preview", help="the editor's live preview")
    preview.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    preview.add_argument("--model", default="default")
    preview.add_argument("--threads", type=int, default=2)
    arguments = parser.parse_args(argv)
    if arguments.command == "gallery":
        print(json.dumps(measure_gallery(arguments.folder / str(arguments.scans), arguments.scans), indent=2))
    else:
        results = measure_preview(arguments.photo, arguments.model, arguments.threads)
        print(json.dumps({"threads": arguments.threads, "photo": arguments.photo.name, "scans": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
