"""Milliseconds of each per-scan step, for a small and a large scan, and of the model per image.

    python -m benchmarks.steps [--photo PATH] [--threads N]

Where `benchmarks.throughput` says how fast the whole pipeline is, this says which step
costs what: the pipeline's `prepare_scan` (decode, lightness, model input) and `finish_scan`
(a/b upsampling, recombination, quantization, encoding), whole and in parts, colorfulness,
and spreading 10 known colors (`spread_known_colors`, only for scans with a hints file),
each on a real photo made gray and resized to 640 x 480 and to 4000 x 3000 (CPU time of
this process, median of several runs), then the default model's CPU and wall time per
image in batches of 1 and 8. A measurement, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.throughput import DEFAULT_DATA, gray_scan, load_keras_model, photo_paths
from pipeline.inference import limit_cpu_threads, model_batch, predict_ab
from pipeline.scans import finish_scan, prepare_scan
from transforms.codec import decode_scan, encode_pixels, quantize
from transforms.hints import Hint, hint_grid, spread_known_colors
from transforms.lab import luminance, recombine_luminance
from transforms.letterbox import model_input, restore_ab
from transforms.metrics import colorfulness

SIZES = ((640, 480), (4000, 3000))


def cpu_ms(step, repeats: int) -> float:
    """Median CPU milliseconds (all threads of this process) of `step()`, after one warm-up call."""
    step()
    times = []
    for _ in range(repeats):
        started = time.process_time()
        step()
        times.append((time.process_time() - started) * 1000)
    return statistics.median(times)


def step_costs(photo: Path, size: tuple[int, int], model, input_size: int) -> dict[str, float]:
    """CPU ms of every step of one scan of `size` (width, height), with the model's real prediction.

    `prepare_scan` and `finish_scan` are the pipeline's two steps around the model; the rows
    between them are their parts.
    """
    width, height = size
    data = cv2.imencode(".jpg", gray_scan(photo, size), [cv2.IMWRITE_JPEG_QUALITY, 92])[1].tobytes()

    def prepare():
        return prepare_scan("scan.jpg", "scan.jpg", "out/scan.jpg", data, "", input_size, keep_truth=False)

    scan = prepare()
    takes_hints = len(model.inputs) == 2
    prediction = predict_ab(model, model_batch(scan.model_input[None], takes_hints), mirror_average=True)[0]
    rng = np.random.default_rng(0)
    ten_hints = tuple(Hint(rng.uniform(0, width), rng.uniform(0, height), 0.0, 20.0, -10.0) for _ in range(10))
    hints = hint_grid(ten_hints, scan.letterbox, width, height, input_size)
    lightness = luminance(scan.pixels)
    ab = restore_ab(prediction, scan.letterbox, height, width)
    colorized = finish_scan(scan, prediction, "jpg", keep_float=True).colorized
    pixels = quantize(colorized, 8)
    repeats = 7 if width * height < 1e6 else 3
    return {
        "prepare_scan": cpu_ms(prepare, repeats),
        "decode": cpu_ms(lambda: decode_scan(data), repeats),
        "luminance": cpu_ms(lambda: luminance(scan.pixels), repeats),
        "model_input": cpu_ms(lambda: model_input(lightness, input_size), repeats),
        "finish_scan": cpu_ms(lambda: finish_scan(scan, prediction, "jpg"), repeats),
        "restore_ab": cpu_ms(lambda: restore_ab(prediction, scan.letterbox, height, width), repeats),
        "recombine_luminance": cpu_ms(lambda: recombine_luminance(lightness, ab), repeats),
        "quantize": cpu_ms(lambda: quantize(colorized, 8), repeats),
        "encode_jpg": cpu_ms(lambda: encode_pixels(pixels, "jpg"), repeats),
        "colorfulness": cpu_ms(lambda: colorfulness(pixels), repeats),
        "spread_known_colors": cpu_ms(
            lambda: spread_known_colors(prediction, scan.model_input, hints, scan.letterbox), repeats
        ),
    }


def model_costs(model, input_size: int) -> dict[str, dict[str, float]]:
    """CPU and wall milliseconds per image of the pipeline's model call (with the mirror image), batches of 1 and 8."""
    costs = {}
    for batch_size in (1, 8):
        lightness = np.random.default_rng(0).random((batch_size, input_size, input_size, 1), np.float32)
        batch = model_batch(lightness, len(model.inputs) == 2)
        predict_ab(model, batch, mirror_average=True)
        calls = max(3, 48 // batch_size)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            predict_ab(model, batch, mirror_average=True)
        images = calls * batch_size
        costs[f"batch {batch_size}"] = {
            "cpu_ms_per_image": (time.process_time() - cpu) * 1000 / images,
            "wall_ms_per_image": (time.perf_counter() - wall) * 1000 / images,
        }
    return costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.steps", description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, help="photo to use (default: the first under ../shared/data/train)")
    parser.add_argument("--model", default="default", help="bundled model name or .keras path")
    parser.add_argument("--threads", type=int, default=0, help="TensorFlow CPU threads (0: its default)")
    args = parser.parse_args(argv)
    limit_cpu_threads(args.threads)
    model, spec, _ = load_keras_model(args.model)
    photo = args.photo or photo_paths(DEFAULT_DATA)[0]
    for size in SIZES:
        steps = step_costs(photo, size, model, spec.input_size)
        print(f"{size[0]}x{size[1]}: " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in steps.items()))
    for batch, cost in model_costs(model, spec.input_size).items():
        print(
            f"model {spec.name}, {batch}, threads {args.threads or 'default'}: "
            f"{cost['cpu_ms_per_image']:.1f} CPU ms / image, {cost['wall_ms_per_image']:.1f} ms wall / image"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
