"""Fit how a certainty model's chroma follows its own doubt, on validation photos.

    python -m tools.fit_certainty --model runs/unet_v8_certainty/unet.keras \
        --data data/corpus/val/scenes data/corpus/val/people --out runs/unet_v8/unet.keras

A model trained with `models.train --certainty` predicts each pixel's median a/b and how far
off it expects them to be; `models.certainty.ConfidentChroma` maps the ratio of the two to a
gain on the chroma through three numbers (threshold, softness, max_gain). Each curve of a
grid is tried on every photo's luminance at the model's input size, mirror-averaged and put
back within sRGB as the pipeline does, and scored against the photo: mean CIEDE2000, the cast on
neutral pixels, the chroma on vivid ones and the colorfulness share, per data folder. The
chosen curve paints the least cast among those whose CIEDE2000 on the first folder is within the
spread between training seeds of the best, and that are no worse on any other folder than the
median itself (the curve that changes nothing); `--curve` sets one by hand.
The model is saved to `--out` with that curve, and its card beside it records the fit.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from models.certainty import PASS_THROUGH, ConfidentChroma
from models.registry import file_sha256, load_keras_file, resolve_model
from pipeline.inference import agreed_colors, model_batch
from pipeline.scans import is_scan_file
from transforms.codec import decode_scan, quantize, to_float_bgr
from transforms.lab import AB_SCALE, L_SCALE, bgr_to_lab, recombine_luminance
from transforms.letterbox import letterbox
from transforms.metrics import chroma_by_truth, colorfulness, delta_e2000

THRESHOLDS = (0.35, 0.5, 0.7, 1.0, 1.4, 2.0)
SOFTNESSES = (0.35, 0.7, 1.4)
MAX_GAINS = (1.0, 1.25, 1.5, 1.75, 2.0, 2.5)
CURVE_KEYS = ("threshold", "softness", "max_gain")
SEED_SPREAD = 0.05  # CIEDE2000 between training seeds of one recipe on val/scenes (docs/models.md): not a difference


@dataclass
class Photo:
    """One validation photo at the model's input size: its true Lab inside the letterbox, the model's view."""

    truth_lab: np.ndarray
    inside: tuple[slice, slice]
    truth_colorfulness: float


def read_photos(folder: str, size: int) -> tuple[list[Photo], np.ndarray]:
    """The photos under `folder` and the model's L input for each (n, size, size, 1)."""
    photos, inputs = [], []
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file() or not is_scan_file(path.relative_to(folder).as_posix()):
            continue
        grid, box = letterbox(to_float_bgr(decode_scan(path.read_bytes()).pixels), size)
        lab = bgr_to_lab(grid)
        inside = (slice(box.top, box.top + box.height), slice(box.left, box.left + box.width))
        photos.append(Photo(lab[inside], inside, colorfulness(quantize(grid[inside], 8))))
        inputs.append(lab[:, :, :1] / L_SCALE)
    return photos, np.stack(inputs).astype(np.float32)


def median_and_doubt(model: keras.Model, lightness: np.ndarray, takes_hints: bool) -> tuple[np.ndarray, np.ndarray]:
    """The model's median a/b and log doubt for each photo and its mirror image, stacked (2n, ...)."""
    probe = keras.Model(model.inputs, [model.get_layer("ab").output, model.get_layer("certainty_log_scale").output])
    doubled = np.concatenate([lightness, lightness[:, :, ::-1]])
    outputs = [probe.predict_on_batch(model_batch(doubled[i : i + 8], takes_hints)) for i in range(0, len(doubled), 8)]
    return tuple(np.concatenate([np.asarray(part[k]) for part in outputs]) for k in (0, 1))


def score(curve: tuple[float, float, float], photos: list[Photo], median: np.ndarray, doubt: np.ndarray) -> dict:
    """Mean CIEDE2000, cast, vivid chroma and colorfulness share of one curve over one folder's photos."""
    ab = np.asarray(keras.ops.convert_to_numpy(ConfidentChroma(*curve)([median, doubt])))
    count = len(photos)
    ab = agreed_colors(ab[:count], ab[count:, :, ::-1]) * AB_SCALE
    rows = []
    for photo, colors in zip(photos, ab, strict=True):
        result_bgr = recombine_luminance(photo.truth_lab[..., 0], colors[photo.inside])
        result_lab = bgr_to_lab(result_bgr)
        rows.append(
            {
                "delta_e2000": float(delta_e2000(result_lab, photo.truth_lab).mean()),
                "colorfulness": colorfulness(quantize(result_bgr, 8)),
                **chroma_by_truth(result_lab, photo.truth_lab),
            }
        )
    means = {
        key: statistics.fmean(row[key] for row in rows if row[key] is not None)
        for key in ("delta_e2000", "cast", "vivid_chroma", "vivid_chroma_truth")
    }
    truth = statistics.fmean(photo.truth_colorfulness for photo in photos)
    return {**means, "colorfulness_share": statistics.fmean(row["colorfulness"] for row in rows) / truth}


def choose(table: list[dict], folders: list[str]) -> dict:
    """The curve that paints the least cast among those as good as the best on the first folder (within
    SEED_SPREAD of its lowest CIEDE2000) and no worse than the pass-through on the others."""
    base = next(row for row in table if tuple(row[k] for k in CURVE_KEYS) == PASS_THROUGH)
    best = min(row[f"{folders[0]} delta_e2000"] for row in table)
    allowed = [
        row
        for row in table
        if row[f"{folders[0]} delta_e2000"] <= best + SEED_SPREAD
        and all(row[f"{folder} delta_e2000"] <= base[f"{folder} delta_e2000"] for folder in folders[1:])
    ]
    return min(allowed, key=lambda row: statistics.fmean(row[f"{folder} cast"] for folder in folders))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.fit_certainty", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a .keras model trained with models.train --certainty")
    parser.add_argument("--data", nargs="+", required=True, help="folders of color photos; the first is fitted on")
    parser.add_argument("--out", required=True, help="the .keras file to write, with its card beside it")
    parser.add_argument("--curve", nargs=3, type=float, metavar=CURVE_KEYS, help="use this curve; skip the choice")
    args = parser.parse_args(argv)

    spec = resolve_model(args.model)
    model = load_keras_file(spec.path)
    curves = [PASS_THROUGH, *itertools.product(THRESHOLDS, SOFTNESSES, MAX_GAINS)]
    if args.curve:
        curves = [PASS_THROUGH, tuple(args.curve)]
    table = [dict(zip(CURVE_KEYS, curve, strict=True)) for curve in curves]
    for folder in args.data:
        photos, lightness = read_photos(folder, spec.input_size)
        median, doubt = median_and_doubt(model, lightness, spec.takes_hints)
        for row, curve in zip(table, curves, strict=True):
            row.update({f"{folder} {key}": value for key, value in score(curve, photos, median, doubt).items()})
    chosen = table[-1] if args.curve else choose(table, args.data)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".fit.csv"), "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    model.get_layer("confident_ab").set_curve(*(chosen[key] for key in CURVE_KEYS))
    model.save(out)
    card_path = Path(spec.path).with_suffix(".json")
    card = json.loads(card_path.read_text()) if card_path.exists() else {"name": out.stem}
    card.update(
        certainty_curve={key: chosen[key] for key in CURVE_KEYS},
        certainty_fit={"data": args.data, "fitted_by": "python -m tools.fit_certainty", "scores": chosen},
        file=out.name,
        sha256=file_sha256(str(out)),
    )
    out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    for row in (table[0], chosen):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
