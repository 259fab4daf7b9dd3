"""Train a colorization model on any folder of color photos and export it for the pipeline.

    python -m models.train --data ../shared/data/train --val ../shared/data/val/people \
        --arch unet --epochs 12 --out runs/unet

Training resumes where it stopped when run again with the same --out (Keras
BackupAndRestore); the exported model and its model card land in --out and, with
--bundle, in models/bundled/ where the pipeline's registry finds them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import shutil
import sys
import zlib
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from apache_beam.io.filesystems import FileSystems

from models.architectures import ARCHITECTURES
from models.registry import BUNDLED_DIR, file_sha256
from transforms.color import AB_SCALE, L_SCALE, bgr_to_lab, decode_scan, letterbox, to_float_bgr

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"}
logger = logging.getLogger("revivacolor.train")


def list_images(sources: list[str]) -> list[str]:
    """Image files under folders (recursively) or matching globs, sorted for reproducibility."""
    patterns = [source if any(c in source for c in "*?[") else source.rstrip("/") + "/**" for source in sources]
    files = {m.path for result in FileSystems.match(patterns) for m in result.metadata_list}
    return sorted(f for f in files if Path(f).suffix.lower() in IMAGE_SUFFIXES)


def split_by_name(files: list[str], val_percent: int) -> tuple[list[str], list[str]]:
    """Deterministic train/validation split: a file's name hash decides, whatever the order."""
    val = {f for f in files if zlib.crc32(Path(f).name.encode()) % 100 < val_percent}
    return [f for f in files if f not in val], [f for f in files if f in val]


def load_lab_grid(path: str, size: int) -> np.ndarray:
    """One photo letterboxed to size x size as (L / 100, a / 128, b / 128), float32."""
    with FileSystems.open(path) as handle:
        scan = decode_scan(handle.read())
    grid, _ = letterbox(to_float_bgr(scan.pixels), size)
    lab = bgr_to_lab(grid)
    return np.concatenate([lab[:, :, :1] / L_SCALE, lab[:, :, 1:] / AB_SCALE], axis=-1)


def load_grids(files: list[str], size: int) -> np.ndarray:
    grids = []
    for path in files:
        try:
            grids.append(load_lab_grid(path, size))
        except ValueError as error:
            logger.warning("skipping %s: %s", path, error)
    return np.stack(grids)


def make_dataset(grids: np.ndarray, crop: int, batch_size: int, training: bool) -> tf.data.Dataset:
    """(L, ab) batches; training batches are random crops with random horizontal flips."""
    dataset = tf.data.Dataset.from_tensor_slices(grids)
    if training:
        dataset = dataset.shuffle(len(grids), seed=0, reshuffle_each_iteration=True)
        dataset = dataset.map(
            lambda g: tf.image.random_flip_left_right(tf.image.random_crop(g, (crop, crop, 3))),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    dataset = dataset.map(lambda g: (g[:, :, :1], g[:, :, 1:]))
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def write_model_card(model_path: Path, card: dict) -> Path:
    card = dict(card, file=model_path.name, sha256=file_sha256(str(model_path)))
    card_path = model_path.with_suffix(".json")
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return card_path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", required=True, help="folders or globs of color photos")
    parser.add_argument("--val", nargs="+", help="validation folders; default: 10%% of --data by name hash")
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default="unet")
    parser.add_argument("--size", type=int, default=256, help="inference size of the exported model")
    parser.add_argument("--crop", type=int, default=192, help="training crop taken from the size x size grid")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--patience", type=int, default=4, help="early stopping on validation loss")
    parser.add_argument("--out", required=True, help="run folder: checkpoints, CSV log, exported model")
    parser.add_argument("--name", default=None, help="model name in the registry (default: --arch)")
    parser.add_argument("--version", default="1")
    parser.add_argument("--bundle", action="store_true", help="also copy the model and card into models/bundled/")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = args.name or args.arch

    files = list_images(args.data)
    train_files, val_files = (files, list_images(args.val)) if args.val else split_by_name(files, 10)
    logger.info("%d training and %d validation photos", len(train_files), len(val_files))
    train = make_dataset(load_grids(train_files, args.size), args.crop, args.batch_size, training=True)
    val = make_dataset(load_grids(val_files, args.size), args.crop, args.batch_size, training=False)

    model = ARCHITECTURES[args.arch](None)
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), loss="mae")
    history = model.fit(
        train,
        validation_data=val,
        epochs=args.epochs,
        callbacks=[
            keras.callbacks.BackupAndRestore(str(out / "backup")),
            keras.callbacks.ModelCheckpoint(str(out / "best.weights.h5"), save_best_only=True, save_weights_only=True),
            keras.callbacks.EarlyStopping(patience=args.patience),
            keras.callbacks.CSVLogger(str(out / "log.csv"), append=True),
        ],
        verbose=2,
    )

    exported = ARCHITECTURES[args.arch](args.size)
    exported.load_weights(str(out / "best.weights.h5"))
    model_path = out / f"{name}.keras"
    exported.save(model_path)
    val_losses = history.history.get("val_loss", [])
    card = {
        "name": name,
        "version": args.version,
        "architecture": args.arch,
        "parameters": exported.count_params(),
        "input_size": args.size,
        "color_space": "CIELAB (OpenCV, D65, sRGB)",
        "input": "L / 100, letterboxed to input_size x input_size, shape (input_size, input_size, 1)",
        "output": "a/b / 128 through tanh, shape (input_size, input_size, 2)",
        "loss": "mae",
        "training_data": args.data,
        "validation_data": args.val or "10% of training data by file-name hash",
        "training_images": len(train_files),
        "validation_images": len(val_files),
        "crop": args.crop,
        "epochs_run": len(val_losses),
        "best_val_mae_ab_over_128": min(val_losses) if val_losses else None,
        "command": "python -m models.train " + " ".join(sys.argv[1:] if argv is None else argv),
        "trained_on": datetime.date.today().isoformat(),
    }
    card_path = write_model_card(model_path, card)
    logger.info("exported %s and %s", model_path, card_path)
    if args.bundle:
        shutil.copy(model_path, BUNDLED_DIR / model_path.name)
        shutil.copy(card_path, BUNDLED_DIR / card_path.name)
        shutil.copy(out / "log.csv", BUNDLED_DIR / f"{name}.log.csv")
        logger.info("bundled into %s", BUNDLED_DIR)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
