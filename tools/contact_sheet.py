"""A before/after contact sheet: each scan beside its colorization, as one PNG.

python -m tools.contact_sheet --input ../shared/data/demo/gray --model default --out docs/contact_sheet.png
"""

from __future__ import annotations

import argparse
import tempfile

import cv2
import numpy as np
from apache_beam.io.filesystems import FileSystems

import pipeline
from pipeline.records import STATUS_OK, read_metadata
from transforms.codec import decode_preview


def thumbnail(path: str, height: int) -> np.ndarray:
    with FileSystems.open(path) as handle:
        bgr = decode_preview(handle.read(), height)
    width = max(1, round(bgr.shape[1] * height / bgr.shape[0]))
    return cv2.resize(bgr, (width, height), interpolation=cv2.INTER_AREA)


def contact_sheet(pairs: list[tuple[str, str]], height: int = 256, columns: int = 2, gap: int = 8) -> np.ndarray:
    """Tiles of (scan | colorized) pairs, `columns` pairs per row, on white."""
    tiles = [
        np.hstack([thumbnail(before, height), np.full((height, gap // 2, 3), 255, np.uint8), thumbnail(after, height)])
        for before, after in pairs
    ]
    width = max(tile.shape[1] for tile in tiles)
    tiles = [
        cv2.copyMakeBorder(t, gap, gap, gap, gap + width - t.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255))
        for t in tiles
    ]
    blank = np.full_like(tiles[0], 255)
    rows = [
        np.hstack(tiles[i : i + columns] + [blank] * (columns - len(tiles[i : i + columns])))
        for i in range(0, len(tiles), columns)
    ]
    return np.vstack(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.contact_sheet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--model", default="default")
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--height", type=int, default=256, help="height of each thumbnail")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as output:
        pipeline.run(["--input", args.input, "--output", output, "--model", args.model, "--output_format", "png"])
        rows = sorted(read_metadata(output).to_pylist(), key=lambda row: row["source_path"])
        pairs = [(row["source_path"], row["output_path"]) for row in rows if row["status"] == STATUS_OK]
        cv2.imwrite(args.out, contact_sheet(pairs, args.height))
    print(f"wrote {args.out} ({len(pairs)} scans)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
