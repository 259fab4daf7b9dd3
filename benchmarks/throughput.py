"""How many scans per second the pipeline colorizes, against the model alone and a naive loop.

    python -m benchmarks.throughput --n 200 --workers 2 --json throughput.json

Each mode runs in its own subprocess (so memory peaks do not mix) on the same folder of
grayscale test scans: copies of the training photos made monochrome, cycled to reach N,
a few of them (`--large`) enlarged to 4000 x 3000. This is a measurement, not a test.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from transforms.codec import has_image_suffix

REPOSITORY = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPOSITORY.parent / "shared" / "data" / "train"
LARGE_SIZE = (4000, 3000)  # width, height of the "large scans"
MODES = ("model_only", "pipeline", "pipeline_shared", "pipeline_multiprocess", "pipeline_multithread", "naive")
PIPELINE_MODES = tuple(mode for mode in MODES if mode.startswith("pipeline"))
INCLUDES = {
    "model_only": "the pipeline's model call (pipeline.inference.predict_ab: each scan and its mirror image) on "
    "pre-decoded model inputs in batches of --batch_size, after one warm-up batch; excludes TF import, model load, "
    "decoding and writing (the machine's upper limit for this model)",
    "pipeline": "pipeline.run() on the DirectRunner in-process, wall time of the whole run: graph construction, "
    "reading, decoding, model load, inference, recombination, writing, Parquet table and report; "
    "excludes the TensorFlow/Beam import",
    "pipeline_shared": "as pipeline, with --direct_num_workers=WORKERS --direct_running_mode=multi_processing "
    "--model_copies=1: the worker processes share one model (Beam's multi_process_shared); includes starting them, "
    "their imports and the one model load",
    "pipeline_multiprocess": "as pipeline_shared with --model_copies=0 --inference_threads=(cores / WORKERS): "
    "a model in every worker process; includes each one's backend import and model load",
    "pipeline_multithread": "as pipeline, with --direct_num_workers=WORKERS --direct_running_mode=multi_threading: "
    "bundle threads in one process sharing one model",
    "naive": "a Python loop: read file, prepare_scan (decode, luminance, letterbox), predict_ab of 1 (and its mirror), "
    "finish_scan (restore a/b, recombine, quantize, encode), write; excludes TF import and model load "
    "(one warm-up prediction)",
}


def photo_paths(data: Path) -> list[Path]:
    """Every image below the data folder, sorted so the scan set is the same on every run."""
    paths = sorted(p for p in data.rglob("*") if has_image_suffix(p.name) and p.is_file())
    if not paths:
        raise FileNotFoundError(f"no images found under {data}")
    return paths


def gray_scan(photo: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """A monochrome copy of a color photo (the pipeline's real input), resized to (width, height) if given."""
    gray = cv2.imread(str(photo), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise ValueError(f"cannot read {photo}")
    return gray if size is None else cv2.resize(gray, size, interpolation=cv2.INTER_LINEAR)


def prepare_scans(data: Path, n: int, large: int, folder: Path) -> list[Path]:
    """N grayscale JPEG scans in `folder`: the first `large` ones 4000 x 3000, the rest photos cycled to reach N."""
    photos = photo_paths(data)
    folder.mkdir(parents=True, exist_ok=True)
    scans = []
    for index in range(n):
        photo = photos[index % len(photos)]
        size = LARGE_SIZE if index < large else None
        path = folder / f"scan{index:05d}.jpg"
        if not cv2.imwrite(str(path), gray_scan(photo, size), [cv2.IMWRITE_JPEG_QUALITY, 92]):
            raise OSError(f"cannot write {path}")
        scans.append(path)
    return scans


def peak_rss_mb() -> dict[str, float]:
    """Peak resident memory of this process and of its largest finished child (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"self_mb": round(own, 1), "largest_child_mb": round(children, 1), "peak_rss_mb": round(own + children, 1)}


def load_keras_model(model: str):
    """The model as the pipeline loads it (registry name or .keras path), with its spec and load time."""
    from models.registry import load_keras_file, resolve_model

    spec = resolve_model(model)
    started = time.perf_counter()
    loaded = load_keras_file(spec.path)
    return loaded, spec, time.perf_counter() - started


def measure_model_only(scans: list[Path], model: str, batch_size: int) -> dict:
    """The model alone on pre-decoded batches of the pipeline's own model input: the upper limit."""
    loaded, spec, load_seconds = load_keras_model(model)
    from pipeline.inference import model_batch, predict_ab

    inputs = [_prepared(path, spec.input_size).model_input for path in scans]
    batches = [
        model_batch(np.stack(inputs[i : i + batch_size]), spec.takes_hints) for i in range(0, len(inputs), batch_size)
    ]
    predict_ab(loaded, batches[0], mirror_average=True)  # warm-up: graph tracing is a one-time cost
    started = time.perf_counter()
    for batch in batches:
        predict_ab(loaded, batch, mirror_average=True)
    return {"seconds": time.perf_counter() - started, "model_load_seconds": load_seconds}


def _prepared(path: Path, input_size: int, output: Path | None = None):
    """The pipeline's Scan of one file (its sha256 is not computed: nothing here compares it)."""
    from pipeline.scans import prepare_scan  # here, not above: a mode's process imports only what it uses

    destination = str((output or path.parent) / path.name)
    return prepare_scan(str(path), path.name, destination, path.read_bytes(), "", input_size, keep_truth=False)


def measure_pipeline(scans: list[Path], model: str, batch_size: int, output: Path, extra: list[str]) -> dict:
    """The full pipeline through `pipeline.run`, DirectRunner, wall time of the whole run."""
    import keras  # noqa: F401 - imported before the clock starts: a one-time cost of any Python use

    import pipeline

    argv = ["--input", str(scans[0].parent), "--output", str(output), "--model", model]
    argv += ["--batch_size", str(batch_size), *extra]
    started = time.perf_counter()
    pipeline.run(argv)
    seconds = time.perf_counter() - started
    written = sum(1 for p in output.glob("*.jpg"))
    if written != len(scans):
        raise RuntimeError(f"the pipeline wrote {written} of {len(scans)} images")
    return {"seconds": seconds}


def measure_naive(scans: list[Path], model: str, output: Path) -> dict:
    """What a user would write: one file at a time, read, predict (batch of 1), write, with the pipeline's steps."""
    from pipeline.inference import model_batch, predict_ab
    from pipeline.scans import finish_scan

    loaded, spec, load_seconds = load_keras_model(model)
    predict_ab(
        loaded, model_batch(np.zeros((1, spec.input_size, spec.input_size, 1), np.float32), spec.takes_hints), True
    )
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for path in scans:
        scan = _prepared(path, spec.input_size, output)
        prediction = predict_ab(loaded, model_batch(scan.model_input[None], spec.takes_hints), True)[0]
        Path(scan.output_path).write_bytes(finish_scan(scan, prediction, "jpg").encoded)
    return {"seconds": time.perf_counter() - started, "model_load_seconds": load_seconds}


def steady_ips(output: Path) -> float | None:
    """Images/s between the first and the last image written: the rate once start-up costs are paid."""
    times = sorted(path.stat().st_mtime for path in output.glob("*.jpg"))
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else None


def pipeline_arguments(mode: str, workers: int) -> list[str]:
    """The Beam and RevivaColor options that make a pipeline mode."""
    processes = [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    if mode == "pipeline":
        return []
    if mode == "pipeline_shared":
        return [*processes, "--model_copies=1"]
    if mode == "pipeline_multiprocess":
        threads = max(1, (os.cpu_count() or 1) // workers)  # the cores shared out between the models
        return [*processes, "--model_copies=0", f"--inference_threads={threads}"]
    if mode == "pipeline_multithread":
        return [f"--direct_num_workers={workers}", "--direct_running_mode=multi_threading"]
    raise ValueError(f"unknown mode {mode}")


def measure(mode: str, scans: list[Path], model: str, batch_size: int, output: Path, workers: int) -> dict:
    """Run one mode in this process and return its timing, images/s and memory peak."""
    if mode == "model_only":
        result = measure_model_only(scans, model, batch_size)
    elif mode in PIPELINE_MODES:
        result = measure_pipeline(scans, model, batch_size, output, pipeline_arguments(mode, workers))
    elif mode == "naive":
        result = measure_naive(scans, model, output)
    else:
        raise ValueError(f"unknown mode {mode}")
    result.update(images=len(scans), ips=len(scans) / result["seconds"], **peak_rss_mb())
    if mode != "model_only":
        result["steady_ips"] = steady_ips(output)
    return result


def run_mode_subprocess(mode: str, scan_folder: Path, model: str, batch_size: int, work: Path, workers: int) -> dict:
    """One mode in a fresh Python process, so its memory peak and imports are its own."""
    result_file = work / f"{mode}.json"
    command = [sys.executable, "-m", "benchmarks.throughput", "--_mode", mode, "--_scans", str(scan_folder)]
    command += ["--model", model, "--batch_size", str(batch_size), "--workers", str(workers)]
    command += ["--_result", str(result_file)]
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")])),
    }
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    subprocess.run(command, check=True, env=environment, cwd=work)
    return json.loads(result_file.read_text())


def machine_facts() -> dict:
    """What the numbers depend on: CPU count, whether TensorFlow sees a GPU, versions."""
    probe = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    gpus = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=environment).stdout
    return {
        "cpu_count": os.cpu_count(),
        "gpu_visible": gpus.strip().splitlines()[-1:] not in ([], ["0"]),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def summarize(results: dict[str, dict], n: int, large: int, model: str, workers: int, facts: dict) -> dict:
    """The JSON report: top-level images/s per mode, peak memory, ratios, and what each number includes."""
    ips = {mode: results[mode]["ips"] for mode in results}
    best_pipeline = max(ips.get(mode, 0.0) for mode in PIPELINE_MODES)
    return {
        "date": datetime.date.today().isoformat(),
        "n": n,
        "large": large,
        "model": model,
        "workers": workers,
        **{f"{mode}_ips": ips.get(mode) for mode in MODES},
        "peak_rss_mb": max(results[mode]["peak_rss_mb"] for mode in results),
        "peak_rss_mb_by_mode": {mode: results[mode]["peak_rss_mb"] for mode in results},
        "pipeline_best_ips": best_pipeline,
        "pipeline_best_over_model_only": best_pipeline / ips["model_only"] if ips.get("model_only") else None,
        "pipeline_best_over_naive": best_pipeline / ips["naive"] if ips.get("naive") else None,
        "modes": results,
        "includes": {mode: INCLUDES[mode].replace("WORKERS", str(workers)) for mode in results},
        "peak_rss_note": "ru_maxrss of the mode's process plus that of its largest child process "
        "(worker processes in multi_processing); an upper-bound-ish sum, not a sampled total",
        **facts,
    }


def table(summary: dict) -> str:
    """The summary as a Markdown table, one row per mode."""
    lines = [
        "| Mode | images/s | seconds | images/s first to last output | peak RSS (MB) |",
        "|---|---|---|---|---|",
    ]
    for mode, result in summary["modes"].items():
        steady = f"{result['steady_ips']:.2f}" if result.get("steady_ips") else "-"
        lines.append(
            f"| {mode} | {result['ips']:.2f} | {result['seconds']:.1f} | {steady} | {result['peak_rss_mb']:.0f} |"
        )
    lines.append("")
    lines.append(
        f"N={summary['n']} ({summary['large']} of them 4000x3000), model {summary['model']}, "
        f"{summary['workers']} worker processes or threads, "
        f"{summary['cpu_count']} CPUs, GPU visible: {summary['gpu_visible']}, {summary['date']}"
    )
    for key in ("pipeline_best_over_model_only", "pipeline_best_over_naive"):
        if summary[key] is not None:
            lines.append(f"{key}: {summary[key]:.2f}")
    return "\n".join(lines)


def benchmark(
    data: Path, n: int, large: int, model: str, batch_size: int, modes: tuple[str, ...], workers: int
) -> dict:
    """Prepare the scans once, run every mode in its own subprocess, summarize."""
    with tempfile.TemporaryDirectory(prefix="revivacolor-bench-") as temporary:
        work = Path(temporary)
        prepare_scans(data, n, min(large, n), work / "scans")
        results = {mode: run_mode_subprocess(mode, work / "scans", model, batch_size, work, workers) for mode in modes}
    return summarize(results, n, min(large, n), model, workers, machine_facts())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="number of scans (default 200)")
    parser.add_argument("--large", type=int, default=3, help="how many of the N are 4000 x 3000 (default 3)")
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="folder of photos (default ../shared/data/train)"
    )
    parser.add_argument("--model", default="default", help="bundled model name or .keras path")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument(
        "--workers", type=int, default=2, help="worker processes (or threads) of the multi-worker modes (default 2)"
    )
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument("--_mode", choices=MODES, help=argparse.SUPPRESS)  # internal: one mode, in a subprocess
    parser.add_argument("--_scans", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--_result", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args._mode:
        scans = sorted(args._scans.glob("*.jpg"))
        output = args._result.parent / f"out-{args._mode}"
        result = measure(args._mode, scans, args.model, args.batch_size, output, args.workers)
        args._result.write_text(json.dumps(result))
        return 0
    summary = benchmark(args.data, args.n, args.large, args.model, args.batch_size, tuple(args.modes), args.workers)
    print(table(summary))
    for mode, text in summary["includes"].items():
        print(f"  {mode}: {text}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
