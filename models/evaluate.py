"""Compare models on a folder of color photos, scored by the pipeline's own --evaluate.

    python -m models.evaluate --data ../shared/data/val/people --models gray autoencoder pix2pix unet

Each model colorizes the photos' luminance with the real pipeline; the table gives the
mean of every metric over the photos, and the model's inference speed on pre-decoded
256 x 256 batches (2 CPU cores unless a GPU is there).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import keras
import numpy as np

import pipeline
from models.registry import resolve_model
from pipeline.colorize import read_metadata

COLUMNS = ("psnr", "ssim", "mae", "psnr_ab", "ssim_ab", "mae_ab")


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
    summary.update({column: statistics.fmean(row[column] for row in rows) for column in COLUMNS})
    summary["images_per_s"] = inference_speed(model_name)
    return summary


def markdown_table(summaries: list[dict]) -> str:
    header = ("model", "version", "images", *COLUMNS, "images_per_s")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for summary in summaries:
        cells = [f"{summary[key]:.4f}" if isinstance(summary[key], float) else str(summary[key]) for key in header]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.evaluate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder of color photos")
    parser.add_argument("--models", nargs="+", default=["gray", "default"], help="bundled names or .keras paths")
    parser.add_argument("--out", default="runs/evaluate", help="where the colorized photos and tables go")
    args = parser.parse_args(argv)
    table = markdown_table([evaluate(args.data, name, Path(args.out)) for name in args.models])
    print(table)
    (Path(args.out) / "comparison.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
