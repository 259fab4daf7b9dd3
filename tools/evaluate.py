"""Compare models on a folder of color photos, scored by the pipeline's own --evaluate.

    python -m tools.evaluate --data data/corpus/val/scenes data/corpus/val/people --models gray unet default

Each model colorizes the photos' luminance with the real pipeline; a table per data
folder gives the mean of every metric over the photos, the colorfulness of the results
as a share of the originals', on how many photos the model beats the gray picture
(CIEDE2000; gray is colored for it when it is not among the models), the chroma it paints on the originals' neutral
pixels (the cast) and on their vivid ones, the color the model paints on blank scans
and its inference speed on pre-decoded batches at its input size (on the GPU when
TensorFlow sees one).
With `--hints N [N ...]`, each model that takes known colors is run again with N points per
photo whose colors are read from the original (`--hints` files, as a user writes them), a
row for each N: the CIEDE2000 at the points, the whole picture's CIEDE2000 and PSNR against
no hints, the share of photos the hints made worse, and what they did to faces far from them.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
from pathlib import Path

import cv2
import keras
import numpy as np

import pipeline
from models.hints import CLICKS_PER_OBJECT, object_clicks
from models.registry import BUNDLED_DIR, ModelSpec, load_keras_file, resolve_model
from pipeline.inference import model_batch, predict_ab
from pipeline.records import STATUS_OK, read_metadata
from pipeline.scans import hints_location, input_base, is_scan_file, relative_path
from transforms.codec import decode_scan, quantize, to_float_bgr
from transforms.lab import AB_SCALE, bgr_to_lab
from transforms.metrics import chroma_by_truth, detect_faces, far_skin_change

COLUMNS = ("psnr", "ssim", "mae", "psnr_ab", "ssim_ab", "mae_ab", "delta_e2000", "skin_delta_e2000", "colorfulness")
CHROMA_COLUMNS = ("cast", "vivid_chroma", "vivid_chroma_truth")  # transforms.metrics.chroma_by_truth
GRAY = "gray"


def inference_speed(model: keras.Model, spec: ModelSpec, batch_size: int = 8, batches: int = 5) -> float:
    """Images per second of the model alone on random batches at its input size (after a warm-up)."""
    lightness = np.random.default_rng(0).random((batch_size, spec.input_size, spec.input_size, 1), np.float32)
    batch = model_batch(lightness, spec.takes_hints)
    model.predict_on_batch(batch)
    started = time.perf_counter()
    for _ in range(batches):
        model.predict_on_batch(batch)
    return batch_size * batches / (time.perf_counter() - started)


BLANK_LEVELS = (0.2, 0.35, 0.5, 0.65, 0.8, 0.95)  # L / 100 of the blank scans


def blank_chroma(model: keras.Model, spec: ModelSpec) -> float:
    """The 99th percentile of the CIELAB chroma the model paints on blank scans (flat L at BLANK_LEVELS).

    A blank scan holds no evidence of any color, so whatever a model paints there it also
    paints on empty walls and skies: the blotches of the contact sheets, in one number
    (0 is gray; about 10 is a visible tint). Mirror-averaged, as the pipeline colors.
    """
    blank = np.ones((len(BLANK_LEVELS), spec.input_size, spec.input_size, 1), np.float32)
    blank *= np.array(BLANK_LEVELS, np.float32)[:, None, None, None]
    ab = predict_ab(model, model_batch(blank, spec.takes_hints), mirror_average=True) * AB_SCALE
    return float(np.percentile(np.hypot(ab[..., 0], ab[..., 1]), 99))


@functools.cache
def model_probes(model_name: str) -> dict[str, float]:
    """The model alone, outside the pipeline: its color on blank scans and its speed.

    Neither depends on the data folder, the hints or the pipeline's options, so each model
    is loaded and probed once per run, however many rows it has.
    """
    spec = resolve_model(model_name)
    model = load_keras_file(spec.path)
    return {"blank_chroma": blank_chroma(model, spec), "images_per_s": inference_speed(model, spec)}


def image_lab(path: str) -> np.ndarray:
    """An image file's CIELAB, float (sRGB, D65)."""
    return bgr_to_lab(to_float_bgr(decode_scan(Path(path).read_bytes()).pixels))


def result_chroma(row: dict) -> dict[str, float | None]:
    """`chroma_by_truth` of one --evaluate row: its written result against its source, the original."""
    return chroma_by_truth(image_lab(row["output_path"]), image_lab(row["source_path"]))


HINT_LAYOUTS = ("random", "objects")
CLICK_GRID = 256  # --hint_layout objects: objects are found as in training, on the model's grid


def point_positions(
    pixels: np.ndarray, points: int, rng: np.random.Generator, layout: str
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of `points` known colors in a photo: at random, or as an archivist clicks
    (CLICKS_PER_OBJECT points on each object, the most training gives one: models.hints.object_clicks
    on the model's grid)."""
    height, width = pixels.shape[:2]
    if layout == "random":
        return rng.integers(height, size=points), rng.integers(width, size=points)
    scale = max(height, width) / CLICK_GRID
    grid = (max(1, round(width / scale)), max(1, round(height / scale)))
    ab = bgr_to_lab(cv2.resize(to_float_bgr(pixels), grid, interpolation=cv2.INTER_AREA))[..., 1:] / AB_SCALE
    rows, columns = object_clicks(ab, rng, objects=points, clicks=CLICKS_PER_OBJECT)

    def to_photo(cells: np.ndarray, size: int) -> np.ndarray:
        return np.minimum(((cells[:points] + 0.5) * scale).astype(int), size - 1)

    return to_photo(rows, height), to_photo(columns, width)


def write_sampled_hints(data: str, folder: Path, points: int, seed: int = 0, layout: str = "random") -> None:
    """A hints file for every photo under `data`: `points` pixels placed by `layout`, with their original colors."""
    rng = np.random.default_rng(seed)
    for path in sorted(Path(data).rglob("*")):
        relative = path.relative_to(data).as_posix()
        if not path.is_file() or not is_scan_file(relative):
            continue
        pixels = decode_scan(path.read_bytes()).pixels
        if pixels.ndim != 3:
            continue
        pixels = pixels[..., :3]  # BGR, without an alpha channel
        rows, columns = point_positions(pixels, points, rng, layout)
        colors = (pixels[rows, columns] >> (8 if pixels.dtype == np.uint16 else 0)).astype(int)
        document = {
            "points": [
                {"x": int(x), "y": int(y), "color": "#{:02x}{:02x}{:02x}".format(*bgr[::-1])}
                for x, y, bgr in zip(columns, rows, colors, strict=True)
            ]
        }
        location = Path(hints_location(str(folder), relative))
        location.parent.mkdir(parents=True, exist_ok=True)
        location.write_text(json.dumps(document))


def evaluate(
    data: str,
    model_name: str,
    out: Path,
    hints: Path | None = None,
    pipeline_args: tuple[str, ...] = (),
    hints_label: str = "hints",
) -> tuple[dict, dict[str, dict]]:
    """Mean metrics of one model over `data`, colorized by the pipeline with --evaluate (and --hints, and
    any other pipeline options, such as `--vividness 1.3`, which then name the row).

    Also returns each photo's row of the table, by source path, to compare runs photo by photo.
    """
    label = " ".join(pipeline_args)
    output = (
        out
        / Path(data).name
        / "_".join(
            [model_name.replace("/", "_")]
            + [hints_label.replace(" ", "_")] * bool(hints)
            + [arg.strip("-") for arg in pipeline_args]
        )
    )
    pipeline.run(
        ["--input", data, "--output", str(output), "--model", model_name, "--evaluate", "--output_format", "png"]
        + (["--hints", str(hints)] if hints else [])
        + list(pipeline_args)
    )
    rows = [
        row for row in read_metadata(str(output)).to_pylist() if row["status"] == STATUS_OK and row["psnr"] is not None
    ]
    spec = resolve_model(model_name)
    name = spec.name + (f" + {hints_label}" if hints else "") + (f" {label}" if label else "")
    summary = {"model": name, "version": spec.version, "images": len(rows)}
    for row in rows:
        row.update(result_chroma(row))
    for column in (*COLUMNS, *CHROMA_COLUMNS, "hint_delta_e2000"):  # skin, cast, vivid: photos that have them
        values = [row[column] for row in rows if row[column] is not None]
        summary[column] = statistics.fmean(values) if values else None
    truth_colorfulness = statistics.fmean(row["colorfulness_truth"] for row in rows)
    summary["colorfulness_share"] = summary["colorfulness"] / truth_colorfulness if truth_colorfulness else None
    summary.update(model_probes(model_name))
    return summary, {row["source_path"]: row for row in rows}


def share_better(rows: dict[str, dict], baseline: dict[str, dict]) -> float:
    """The share of photos whose CIEDE2000 is lower than the baseline's (the gray picture's, or no hints')."""
    return statistics.fmean(rows[path]["delta_e2000"] < baseline[path]["delta_e2000"] for path in rows)


def skin_bleed(hinted: dict[str, dict], automatic: dict[str, dict], hints: Path, data: str) -> float | None:
    """Mean `far_skin_change` over the photos with a face: what known colors did to the skin they were not on."""
    changes = []
    for path, row in hinted.items():
        truth = to_float_bgr(decode_scan(Path(path).read_bytes()).pixels)
        faces = detect_faces(quantize(truth, 8))
        if not faces:
            continue
        relative = relative_path(path, input_base(data))
        points = json.loads(Path(hints_location(str(hints), relative)).read_text())["points"]
        change = far_skin_change(
            bgr_to_lab(truth),
            image_lab(automatic[path]["output_path"]),
            image_lab(row["output_path"]),
            faces,
            [(point["x"], point["y"]) for point in points],
        )
        if change is not None:
            changes.append(change)
    return statistics.fmean(changes) if changes else None


def evaluate_models(
    data: str,
    model_names: list[str],
    out: Path,
    hint_counts: list[int] = (),
    variants: list[tuple[str, ...]] = (),
    hint_seeds: int = 1,
    hint_layout: str = "random",
) -> list[dict]:
    """Every model's summary on one folder, with its share of photos better than gray (gray is run for it
    when not among `model_names`).

    For each of `hint_counts`, a model that takes hints gets a row with that many known colors per
    photo, and beside its scores against the same model's without hints: `vs_no_hints` (its mean
    CIEDE2000 as a share), `psnr_gain` (dB), `worse_with_hints` (the share of photos that hints made
    worse) and `skin_bleed` (far_skin_change). With `hint_seeds` above 1 the points are drawn that
    many times (seeds 0, 1, ...) and the row is the mean over the drawings: with a photo or three of
    a folder, one drawing's points can fall on the photo's easiest or hardest pixels. `hint_layout`
    places them (`point_positions`). Each of
    `variants` (pipeline options) adds a row for every model but gray.
    """
    drawings = {}  # count -> one folder of hints files per drawing, written once for every model
    any_takes_hints = any(resolve_model(name).takes_hints for name in model_names)
    for count in hint_counts if any_takes_hints else ():
        drawings[count] = [
            out / "hints" / hint_layout / str(count) / f"seed{seed}" / Path(data).name for seed in range(hint_seeds)
        ]
        for seed, folder in enumerate(drawings[count]):
            write_sampled_hints(data, folder, count, seed, hint_layout)
    results = []  # (summary, [each run's rows by source path])
    for name in model_names:
        automatic = evaluate(data, name, out)
        results.append((automatic[0], [automatic[1]]))
        if name != GRAY:
            for variant in variants:
                summary, rows = evaluate(data, name, out, pipeline_args=variant)
                results.append((summary, [rows]))
        if resolve_model(name).takes_hints:
            results.extend(
                hinted(data, name, out, count, folders, automatic, hint_layout) for count, folders in drawings.items()
            )
    gray = next((runs[0] for (summary, runs) in results if summary["model"] == GRAY), None)
    if gray is None:  # the baseline of `better_than_gray`, colored for it (quickly) when not asked for as a row
        gray = evaluate(data, GRAY, out)[1]
    for summary, runs in results:
        summary["better_than_gray"] = statistics.fmean(share_better(rows, gray) for rows in runs)
    return [summary for summary, _ in results]


def hinted(
    data: str,
    name: str,
    out: Path,
    count: int,
    folders: list[Path],
    automatic: tuple[dict, dict[str, dict]],
    layout: str = "random",
) -> tuple[dict, list[dict[str, dict]]]:
    """One model's row with `count` known colors per photo, the mean over the drawings of the points in `folders`."""
    (baseline, baseline_rows), runs = automatic, []
    hints = f"{count} hints" + (f" on {layout}" if layout != "random" else "")
    for seed, folder in enumerate(folders):
        summary, rows = evaluate(data, name, out, folder, hints_label=f"{hints} seed {seed}")
        summary["vs_no_hints"] = summary["delta_e2000"] / baseline["delta_e2000"]
        summary["psnr_gain"] = summary["psnr"] - baseline["psnr"]
        summary["worse_with_hints"] = 1.0 - share_better(rows, baseline_rows)
        summary["skin_bleed"] = skin_bleed(rows, baseline_rows, folder, data)
        runs.append((summary, rows))
    several = f" ({len(folders)} drawings)" if len(folders) > 1 else ""
    merged = {"model": f"{resolve_model(name).name} + {hints}{several}"}
    for key in [key for key in runs[0][0] if key != "model"]:  # scores (floats) averaged; the rest as they are
        values = [summary[key] for summary, _ in runs if summary[key] is not None]
        merged[key] = statistics.fmean(values) if values and isinstance(values[0], float) else next(iter(values), None)
    return merged, [rows for _, rows in runs]


def record_in_card(model_name: str, summaries: dict[str, dict]) -> None:
    """Store a bundled model's scores, by data folder, in its card (not the model file: the sha256 stands)."""
    card_path = BUNDLED_DIR / f"{resolve_model(model_name).name}.json"
    card = json.loads(card_path.read_text())
    card["validation_metrics"] = {
        data: {k: v for k, v in summary.items() if k not in ("model", "version")} for data, summary in summaries.items()
    }
    card_path.write_text(json.dumps(card, indent=2) + "\n")


def markdown_table(summaries: list[dict]) -> str:
    header = (
        "model",
        "version",
        "images",
        *COLUMNS,
        *CHROMA_COLUMNS,
        "colorfulness_share",
        "better_than_gray",
        "blank_chroma",
        "images_per_s",
    )
    if any(summary.get("hint_delta_e2000") is not None for summary in summaries):
        header = (*header, "hint_delta_e2000", "vs_no_hints", "psnr_gain", "worse_with_hints", "skin_bleed")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for summary in summaries:
        values = [summary.get(key) for key in header]
        cells = [f"{v:.4g}" if isinstance(v, float) else "-" if v is None else str(v) for v in values]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", required=True, help="folders of color photos, a table for each")
    parser.add_argument("--models", nargs="+", default=[GRAY, "default"], help="bundled names or .keras paths")
    parser.add_argument("--out", default="runs/evaluate", help="where the colorized photos and tables go")
    parser.add_argument("--record", action="store_true", help="write the results into the bundled models' cards")
    parser.add_argument(
        "--hints",
        type=int,
        nargs="+",
        default=[],
        metavar="N",
        help="also run hint-taking models with N known colors per photo (a row for each N: 1 3 10 30 is a curve)",
    )
    parser.add_argument(
        "--hint_seeds",
        type=int,
        default=1,
        metavar="K",
        help="draw the --hints points K times (seeds 0 to K-1) and give each row the mean (default 1)",
    )
    parser.add_argument(
        "--hint_layout",
        choices=HINT_LAYOUTS,
        default="random",
        help="where the --hints points fall: at random (as research evaluates), or as an archivist clicks: "
        f"{CLICKS_PER_OBJECT} points on each object, on its own color (default random)",
    )
    parser.add_argument(
        "--vividness", type=float, nargs="+", default=[], help="also run each model at these vividness values"
    )
    parser.add_argument("--no_mirror_average", action="store_true", help="also run each model without mirror averaging")
    args = parser.parse_args(argv)
    if args.hint_seeds < 1:
        parser.error("--hint_seeds must be at least 1")
    variants = [("--vividness", str(value)) for value in args.vividness]
    variants += [("--no_mirror_average",)] * args.no_mirror_average
    results = {
        data: evaluate_models(
            data, args.models, Path(args.out), args.hints, variants, args.hint_seeds, args.hint_layout
        )
        for data in args.data
    }
    if args.record:
        for name in args.models:
            model = resolve_model(name).name
            record_in_card(
                name,
                {
                    data + (f" ({summary['model'].split(' + ')[1]})" if " + " in summary["model"] else ""): summary
                    for data, summaries in results.items()
                    for summary in summaries
                    if summary["model"] == model or summary["model"].startswith(f"{model} + ")
                },
            )
    tables = "\n".join(f"{data}\n\n{markdown_table(summaries)}\n" for data, summaries in results.items())
    print(tables)
    (Path(args.out) / "comparison.md").write_text(tables)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
