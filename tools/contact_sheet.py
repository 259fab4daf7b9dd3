"""A before/after contact sheet: each scan beside its colorization, as one PNG.

python -m tools.contact_sheet --input ../shared/data/demo/gray --model default --out docs/contact_sheet.png

With `--vividness 0.5 1 1.5` there is one result per vividness; with `--hints DIR` one more
shows the model given the known colors in DIR (each point ringed in its color); with
`--evaluate` the inputs are color photos: the first picture is their luminance (what the
model sees) and the last the photo itself.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
from apache_beam.io.filesystems import FileSystems

import pipeline
from pipeline.records import STATUS_OK, read_metadata
from transforms.codec import decode_preview


def thumbnail(path: str, height: int, gray: bool = False, hinted_row: dict | None = None) -> np.ndarray:
    """A picture `height` pixels high; `gray` shows its luminance; a `hinted_row` has its hint points ringed."""
    with FileSystems.open(path) as handle:
        bgr = decode_preview(handle.read(), height)
    scale = height / bgr.shape[0]
    small = cv2.resize(bgr, (max(1, round(bgr.shape[1] * scale)), height), interpolation=cv2.INTER_AREA)
    if gray:
        small = cv2.cvtColor(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if hinted_row:
        full_scale = small.shape[1] / hinted_row["width"]
        for point in json.loads(Path(hinted_row["hints_path"]).read_text())["points"]:
            center = (round(point["x"] * full_scale), round(point["y"] * full_scale))
            color = tuple(int(point["color"][i : i + 2], 16) for i in (5, 3, 1))
            radius = max(4, round(point.get("radius", 0) * full_scale))
            cv2.circle(small, center, radius, color, -1, cv2.LINE_AA)
            cv2.circle(small, center, radius, (255, 255, 255), 1, cv2.LINE_AA)
    return small


def contact_sheet(rows: list[list[np.ndarray]], columns: int = 2, gap: int = 8) -> np.ndarray:
    """Tiles of pictures side by side (one tile per scan), `columns` tiles per row, on white."""
    height = rows[0][0].shape[0]
    spacer = np.full((height, gap // 2, 3), 255, np.uint8)
    tiles = [np.hstack([part for picture in pictures for part in (picture, spacer)][:-1]) for pictures in rows]
    width = max(tile.shape[1] for tile in tiles)
    tiles = [
        cv2.copyMakeBorder(t, gap, gap, gap, gap + width - t.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255))
        for t in tiles
    ]
    blank = np.full_like(tiles[0], 255)
    lines = [
        np.hstack(tiles[i : i + columns] + [blank] * (columns - len(tiles[i : i + columns])))
        for i in range(0, len(tiles), columns)
    ]
    return np.vstack(lines)


def colorize(
    input_location: str, model: str, output: str, hints: str | None, vividness: float = 1.0
) -> dict[str, dict]:
    """The pipeline's ok rows by source path."""
    argv = ["--input", input_location, "--output", output, "--model", model, "--output_format", "png"]
    pipeline.run(argv + ["--vividness", str(vividness)] + (["--hints", hints] if hints else []))
    return {row["source_path"]: row for row in read_metadata(output).to_pylist() if row["status"] == STATUS_OK}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.contact_sheet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--model", default="default")
    parser.add_argument("--out", required=True, help="PNG or JPEG file to write")
    parser.add_argument("--height", type=int, default=256, help="height of each thumbnail")
    parser.add_argument("--columns", type=int, default=2, help="scans side by side")
    parser.add_argument("--vividness", type=float, nargs="+", default=[1.0], help="a result for each value")
    parser.add_argument("--hints", default=None, help="also show the model given these known colors")
    parser.add_argument("--evaluate", action="store_true", help="the inputs are color photos: show their gray")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as output:
        results = [colorize(args.input, args.model, f"{output}/{v}", None, v) for v in args.vividness]
        hinted = colorize(args.input, args.model, f"{output}/hinted", args.hints) if args.hints else {}
        rows = []
        for source in sorted(results[0]):
            pictures = [thumbnail(source, args.height, gray=args.evaluate)]
            pictures += [thumbnail(result[source]["output_path"], args.height) for result in results]
            if source in hinted:
                row = hinted[source]
                pictures.append(thumbnail(row["output_path"], args.height, hinted_row=row if row["hints"] else None))
            if args.evaluate:
                pictures.append(thumbnail(source, args.height))
            rows.append(pictures)
        cv2.imwrite(args.out, contact_sheet(rows, args.columns))
    print(f"wrote {args.out} ({len(rows)} scans)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
