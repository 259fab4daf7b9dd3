"""Compare models on a folder of color photos, scored by the pipeline's own --evaluate.

    python -m models.evaluate --data ../shared/data/val/people --models gray autoencoder pix2pix unet --record

Each model colorizes the photos' luminance with the real pipeline; the table gives the
mean of every metric over the photos, and the model's inference speed on pre-decoded
256 x 256 batches (2 CPU cores unless a GPU is there).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import keras
import numpy as np

import pipeline
from models.registry import BUNDLED_DIR, resolve_model
from pipeline.colorize import read_metadata

COLUMNS = ("psnr", "ssim", "mae", "psnr_ab", "ssim_ab", "mae_ab", "delta_e2000", "skin_delta_e2000", "colorfulness")


def inference_speed(model_name: str, batch_size: int = 8, batches: int = 5) -> float:
    """Images per second of the model alone on random batches at its input size (after a warm-up)."""
    spec = resolve_model(model_name)
    model = keras.saving.load_model(spec.path, compile=False, safe_mode=True)
    batch = np.random.default_rng(0).random((batch_size, spec.input_size, spec.input_size, 1), np.float32)
    model.predict_on_batch(batch)
    started = time.perf_counter()
    for _ in range(batches):
        model.predict_on_batch(batch)
    return batch_size * batches / (time.perf_counter() - started)


def evaluate(data: str, model_name: str, out: Path) -> dict:
    """Mean metrics of one model over `data`, colorized by the pipeline with --evaluate."""
    output = out / model_name.replace("/", "_")
    pipeline.run(
        ["--input", data, "--output", str(output), "--model", model_name, "--evaluate", "--output_format", "png"]
    )
    rows = [row for row in read_metadata(str(output)).to_pylist() if row["status"] == "ok" and row["psnr"] is not None]
    spec = resolve_model(model_name)
    summary = {"model": spec.name, "version": spec.version, "images": len(rows)}
    for column in COLUMNS:  # skin_delta_e2000 only over photos with a face found
        values = [row[column] for row in rows if row[column] is not None]
        summary[column] = statistics.fmean(values) if values else None
    summary["images_per_s"] = inference_speed(model_name)
    return summary


def record_in_card(model_name: str, data: str, summary: dict) -> None:
    """Store a bundled model's scores in its card (the card, not the model file, so the sha256 stands)."""
    card_path = BUNDLED_DIR / f"{resolve_model(model_name).name}.json"
    card = json.loads(card_path.read_text())
    card["validation_metrics"] = {"data": data, **{k: v for k, v in summary.items() if k not in ("model", "version")}}
    card_path.write_text(json.dumps(card, indent=2) + "\n")


def markdown_table(summaries: list[dict]) -> str:
    header = ("model", "version", "images", *COLUMNS, "images_per_s")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for summary in summaries:
        cells = [f"{summary[key]:.4g}" if isinstance(summary[key], float) else str(summary[key]) for key in header]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder of color photos")
    parser.add_argument("--models", nargs="+", default=["gray", "default"], help="bundled names or .keras paths")
    parser.add_argument("--out", default="runs/evaluate", help="where the colorized photos and tables go")
    parser.add_argument("--record", action="store_true", help="write the results into the bundled models' cards")
    args = parser.parse_args(argv)
    summaries = [evaluate(args.data, name, Path(args.out)) for name in args.models]
    table = markdown_table(summaries)
    if args.record:
        for name, summary in zip(args.models, summaries, strict=True):
            record_in_card(name, args.data, summary)
    print(table)
    (Path(args.out) / "comparison.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
