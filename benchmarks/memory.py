"""Peak memory per pixel of colorizing one large scan with the pipeline.

    python -m benchmarks.memory --megapixels 24 --kind gray8

Makes a synthetic scan (smooth gradients with detail, so encoders work as on a photo) and a
tiny one, colorizes each with `pipeline.run` in a fresh Python process on the DirectRunner,
and prints both processes' peak RSS: their difference over the large scan's pixels is the
cost per pixel of a scan (the tiny run pays the imports and the model). A measurement, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

KINDS = {
    "gray8": (1, np.uint8, ".jpg"),
    "gray16": (1, np.uint16, ".tif"),
    "rgb8": (3, np.uint8, ".jpg"),
    "rgb16": (3, np.uint16, ".tif"),
}
_RUN = """
import json, resource, sys
import pipeline
pipeline.run(["--input", sys.argv[1], "--output", sys.argv[2], "--model", sys.argv[3]])
print(json.dumps({"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def synthetic_scan(width: int, height: int, kind: str) -> np.ndarray:
    """A deterministic picture of the given size and kind: gradients, rings and a little noise."""
    channels, dtype, _ = KINDS[kind]
    peak = np.iinfo(dtype).max
    x = np.linspace(0, 6 * np.pi, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 4 * np.pi, height, dtype=np.float32)[:, None]
    gray = 0.5 + 0.25 * np.sin(x) * np.cos(y) + 0.2 * np.sin(np.hypot(x - 9, y - 6) * 3)
    noise = np.random.default_rng(0).normal(0, 0.02, (height, width)).astype(np.float32)
    plane = (np.clip(gray + noise, 0, 1) * peak).astype(dtype)
    return plane if channels == 1 else cv2.merge([plane, np.flipud(plane), np.fliplr(plane)])


def peak_rss_of_run(scans: Path, output: Path, model: str) -> int:
    """Peak RSS in bytes of a fresh process that colorizes `scans` (the code on this process's path and cwd)."""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", _RUN, str(scans), str(output), model],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_rss_bytes"]


def measure(megapixels: float, kind: str, model: str) -> dict:
    """Peak RSS of a tiny and of a large scan's run, and the difference per pixel of the large scan."""
    height = int((megapixels * 1e6 * 3 / 4) ** 0.5)
    width = int(height * 4 / 3)
    suffix = KINDS[kind][2]
    with tempfile.TemporaryDirectory(prefix="revivacolor-memory-") as work:
        folder = Path(work)
        peaks = {}
        for name, size in (("tiny", (64, 48)), ("large", (width, height))):
            scan = folder / name / f"scan{suffix}"
            scan.parent.mkdir()
            if not cv2.imwrite(str(scan), synthetic_scan(*size, kind)):
                raise OSError(f"cannot write {scan}")
            peaks[name] = peak_rss_of_run(scan.parent, folder / f"{name}-out", model)
    pixels = width * height
    return {
        "kind": kind,
        "width": width,
        "height": height,
        "megapixels": round(pixels / 1e6, 1),
        "peak_rss_mb_tiny": round(peaks["tiny"] / 2**20),
        "peak_rss_mb_large": round(peaks["large"] / 2**20),
        "bytes_per_pixel": round((peaks["large"] - peaks["tiny"]) / pixels, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megapixels", type=float, default=24.0, help="size of the large scan (4:3)")
    parser.add_argument("--kind", choices=sorted(KINDS), nargs="+", default=["gray8"], help="sample type(s)")
    parser.add_argument("--model", default="gray", help="a bundled model name or .keras path (its size is constant)")
    args = parser.parse_args(argv)
    for kind in args.kind:
        print(json.dumps(measure(args.megapixels, kind, args.model)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
