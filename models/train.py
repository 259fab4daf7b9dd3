"""Train a colorization model on any folder of color photos and export it for the pipeline.

    python -m models.train --data ../shared/data/train --val ../shared/data/val/people \
        --arch unet --epochs 12 --out runs/unet

Training resumes where it stopped when run again with the same --out (Keras
BackupAndRestore); the exported model and its model card land in --out and, with
--bundle, in models/bundled/ where the pipeline's registry finds them.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import logging
import os
import shlex
import shutil
import sys
import time
import zlib
from pathlib import Path

import keras
import numpy as np
from apache_beam.io.filesystems import FileSystems
from keras import layers

from models.architectures import (
    ANNEALED_MEAN_TEMPERATURE,
    ARCHITECTURES,
    ENCODERS,
    HINT_LAYERS,
    build_patchgan_discriminator,
)
from models.certainty import DOUBT_WEIGHT, laplace_nll, with_doubt
from models.color_classes import REBALANCE_MIX, RebalancedClassLoss, RebalancedL1, in_gamut_bins, rebalancing_weights
from models.degrade import degrade_lightness
from models.hints import HINTS_SHARE, no_hints, sample_hints
from models.losses import LOSSES, no_worse_than_automatic, with_overshoot
from models.registry import BUNDLED_DIR, file_sha256, load_keras_file, resolve_model
from models.sure_colors import SURE_BLEND, SURE_PREFIX, check_blend, median_and_sure_loss
from transforms.balance import without_cast
from transforms.codec import decode_scan, has_image_suffix, to_float_bgr
from transforms.lab import AB_SCALE, L_SCALE, bgr_to_lab
from transforms.letterbox import letterbox

logger = logging.getLogger("revivacolor.train")
AVERAGE_FILE = "average.weights.npz"
UNETS = ("unet", "unet_classes")  # the architectures with an ImageNet encoder


def list_images(sources: list[str]) -> list[str]:
    """Image files under folders (recursively), matching globs, local or gs://, sorted."""
    patterns = [source if any(c in source for c in "*?[") else source.rstrip("/") + "/**" for source in sources]
    files = {m.path for result in FileSystems.match(patterns) for m in result.metadata_list}
    return sorted(f for f in files if has_image_suffix(f))


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
    if not grids:
        raise ValueError(f"no readable photos among {len(files)} files")
    return np.stack(grids)


def balance_neutrals(grids: np.ndarray, strength: float) -> np.ndarray:
    """Training grids with strength times each photo's near-neutral cast taken out of its a/b targets (in place)."""
    for grid in grids:
        grid[..., 1:] = without_cast(grid[..., 0] * L_SCALE, grid[..., 1:] * AB_SCALE, strength) / AB_SCALE
    return grids


class CropBatches(keras.utils.PyDataset):
    """(L, ab) batches as NumPy arrays, so `fit` runs them on any Keras backend (TensorFlow or JAX).

    Training batches are random crops and flips in a new order every epoch, a `damage_share`
    of them with old-photo damage on L; validation batches are the whole grids, undamaged.
    With `hints`, the input is (L, hints): sampled from the true colors for a `hint_share` of the
    training crops, none for the others and for
    validation (the automatic result is what the best epoch is chosen by). Every batch's
    randomness comes from (seed, epoch, batch index), so worker threads give the same batches
    in any order.
    """

    def __init__(
        self,
        grids: np.ndarray,
        crop: int,
        batch_size: int,
        training: bool,
        damage_share: float,
        hints: bool = False,
        seed: int = 0,
        workers: int = 1,
        hint_share: float = HINTS_SHARE,
    ):
        super().__init__(workers=workers)
        self.grids, self.crop, self.batch_size = grids, crop, batch_size
        self.training, self.damage_share, self.hints, self.seed = training, damage_share, hints, seed
        self.hint_share = hint_share
        self.epoch = 0

    def __len__(self) -> int:
        if self.training:
            return len(self.grids) // self.batch_size  # whole batches only: one compiled step shape
        return -(-len(self.grids) // self.batch_size)

    def on_epoch_end(self) -> None:
        self.epoch += 1

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, self.epoch, index])
        rows = np.arange(index * self.batch_size, min((index + 1) * self.batch_size, len(self.grids)))
        if self.training:
            rows = np.random.default_rng([self.seed, self.epoch]).permutation(len(self.grids))[rows]
        crops = [self.random_crop(self.grids[row], rng) if self.training else self.grids[row] for row in rows]
        lightness = np.stack([crop[:, :, :1] for crop in crops])
        ab = np.stack([crop[:, :, 1:] for crop in crops])
        if self.training and self.damage_share > 0:
            damaged = rng.random(len(lightness)) < self.damage_share
            lightness = np.stack(
                [degrade_lightness(image, rng) if hit else image for image, hit in zip(lightness, damaged, strict=True)]
            )
        if not self.hints:
            return lightness, ab
        hints = np.stack(
            [sample_hints(colors, rng, self.hint_share) if self.training else no_hints(colors) for colors in ab]
        )
        return (lightness, hints), ab

    def random_crop(self, grid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        top, left = rng.integers(0, grid.shape[0] - self.crop + 1), rng.integers(0, grid.shape[1] - self.crop + 1)
        crop = grid[top : top + self.crop, left : left + self.crop]
        return crop[:, ::-1] if rng.random() < 0.5 else crop


class EpochOfBatches(keras.callbacks.Callback):
    """Tells the training batches which epoch begins, so that a run resumed after a kill draws
    new crops, damage and hints rather than those of its first epochs again."""

    def __init__(self, batches: CropBatches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.epoch = epoch


class StopAfterMinutes(keras.callbacks.Callback):
    """Ends training at the first epoch end past a wall-clock budget (to compare models fairly)."""

    def __init__(self, minutes: float):
        super().__init__()
        self.deadline = time.monotonic() + 60 * minutes

    def on_epoch_end(self, epoch, logs=None):
        if time.monotonic() > self.deadline:
            logger.info("time budget reached after epoch %d", epoch + 1)
            self.model.stop_training = True


def logged_val_losses(path: Path) -> list[float]:
    """Each epoch's validation loss from a run's CSV log, over all its resumptions (Keras's history
    holds only the last one's); an epoch redone after a kill counts once, with its last value, and one
    without a validation loss (Keras's CSVLogger writes NA) not at all."""
    if not path.exists():
        return []
    with path.open(newline="") as log:
        rows = [row for row in csv.DictReader(log) if row.get("val_loss") not in (None, "", "NA")]
        by_epoch = {int(row["epoch"]): float(row["val_loss"]) for row in rows}
    return [by_epoch[epoch] for epoch in sorted(by_epoch)]


def read_average(path: Path) -> tuple[list[int], list[np.ndarray]]:
    """The epochs in a saved weight average, and the mean weights."""
    with np.load(path) as saved:
        return saved["epochs"].tolist(), [saved[f"w{index}"] for index in range(len(saved.files) - 1)]


class WeightAverage(keras.callbacks.Callback):
    """The mean of the weights at the end of each epoch from `first_epoch` (1-based) on: stochastic
    weight averaging (Izmailov et al., UAI 2018), which lands nearer the middle of a wide minimum
    than any one epoch does.

    The running mean and the epochs in it are saved at every epoch end, so a resumed run
    continues it (an epoch redone after a kill is not counted twice).
    """

    def __init__(self, first_epoch: int, path: Path):
        super().__init__()
        self.first_epoch, self.path = first_epoch, path
        self.mean: list[np.ndarray] | None = None
        self.epochs: list[int] = []

    def on_train_begin(self, logs=None):
        if self.path.exists():
            self.epochs, self.mean = read_average(self.path)

    def on_epoch_end(self, epoch, logs=None):
        number = epoch + 1
        if number < self.first_epoch or number in self.epochs:
            return
        weights = self.model.get_weights()
        count = len(self.epochs)
        self.mean = (
            weights
            if self.mean is None
            else [(m * count + w) / (count + 1) for m, w in zip(self.mean, weights, strict=True)]
        )
        self.epochs.append(number)
        np.savez(self.path, epochs=np.array(self.epochs), **{f"w{index}": w for index, w in enumerate(self.mean)})


def training_callbacks(
    out: Path, patience: int, max_minutes: float | None, average_from: int | None = None
) -> list[keras.callbacks.Callback]:
    """Resume after a kill, keep the best epoch (or average the epochs), stop early, log every epoch as CSV."""
    callbacks = [
        keras.callbacks.BackupAndRestore(str(out / "backup")),
        keras.callbacks.ModelCheckpoint(str(out / "best.weights.h5"), save_best_only=True, save_weights_only=True),
        keras.callbacks.EarlyStopping(patience=patience),
        keras.callbacks.CSVLogger(str(out / "log.csv"), append=True),
    ]
    if max_minutes:
        callbacks.append(StopAfterMinutes(max_minutes))
    if average_from:
        callbacks.append(WeightAverage(average_from, out / AVERAGE_FILE))
    return callbacks


def build_generator(args: argparse.Namespace, size: int | None, pretrained: bool = True) -> keras.Model:
    """The --arch generator at a size (None: any size, for training on crops) with its options.

    `pretrained=False` skips reading the ImageNet encoder weights where other weights replace them.
    """
    options = {
        "autoencoder": {"decoder_activation": args.decoder_activation},
        "unet": {
            "encoder": args.encoder,
            "hints": args.hints,
            "scene_context": args.scene_context,
            "certainty": args.certainty,
            "hint_attention": args.hint_attention,
            "hint_nearness": args.hint_nearness,
            "sure_blend": tuple(args.sure_blend) if args.sure_blend else None,
            "pretrained": pretrained,
        },
        "unet_classes": {"temperature": args.temperature, "encoder": args.encoder, "pretrained": pretrained},
    }.get(args.arch, {})
    return ARCHITECTURES[args.arch](size, **options)


def copy_matching_weights(source: keras.Model, target: keras.Model, required: str | None = None) -> None:
    """Start `target` from `source`: every layer of the same name and weight shapes (all of them for one --arch),
    and of a layer grown a weight (HintAttention's nearness) the weights it had. A second decoder's layer
    (`sure_` ...) the source lacks starts as the source's decoder layer of the same name without the prefix.

    So a unet_classes run can start from a trained unet's encoder and decoder; only its new head learns from zero.
    The `required` layer (the encoder, not loaded from ImageNet then) must be among them.
    """
    source_layers = {layer.name: layer for layer in source.layers}
    copied = []
    for layer in target.layers:
        match = source_layers.get(layer.name, source_layers.get(layer.name.removeprefix(SURE_PREFIX)))
        weights = match.get_weights() if match is not None else []
        if weights and [w.shape for w in weights] == [w.shape for w in layer.get_weights()]:
            layer.set_weights(weights)
            copied.append(layer.name)
        elif weights and not isinstance(layer, keras.Model):  # its own weights, each named once
            had = {weight.name: weight for weight in match.weights}
            shared = [(weight, had[weight.name]) for weight in layer.weights if weight.name in had]
            if shared and all(mine.shape == theirs.shape for mine, theirs in shared):
                for mine, theirs in shared:
                    mine.assign(theirs)
                copied.append(layer.name)
    if not copied or (required and required not in copied):
        raise ValueError(f"--init_from {source.name}: it has no {required or 'layer'} matching {target.name}")
    logger.info("initialized %d of %d layers from %s", len(copied), len(target.layers), source.name)


def rebalanced_loss(loss_class, grids: np.ndarray, mix: float):
    """A rebalanced loss (color classes, or L1), its class weights taken from the training photos' a/b."""
    ab_samples = grids[:, ::4, ::4, 1:].reshape(-1, 2) * AB_SCALE
    bins = in_gamut_bins()
    return loss_class(bins, rebalancing_weights(ab_samples, bins, mix))


def is_adversarial(args: argparse.Namespace) -> bool:
    return args.arch == "pix2pix" or args.adversarial


def learning_rate(args: argparse.Namespace, train_images: int):
    """--learning_rate, or with --cosine_decay a cosine from it down to zero over the whole run.

    A long run can then move far early on and settle at its end (Loshchilov and Hutter,
    "SGDR", ICLR 2017); the schedule follows the optimizer's step count, so a resumed run
    continues it.
    """
    if not args.cosine_decay or not train_images:
        return args.learning_rate
    steps = args.epochs * (train_images // args.batch_size)
    return keras.optimizers.schedules.CosineDecay(args.learning_rate, decay_steps=max(steps, 1))


def build_trainable(args: argparse.Namespace, train_grids: np.ndarray | None) -> tuple[keras.Model, keras.Model]:
    """The model `fit` trains and the generator inside it.

    The same model, except for an adversarial run (pix2pix, or --adversarial: the generator
    inside a GAN with a PatchGAN discriminator) and unet_classes (trained on its color-bin
    logits, exported with the annealed-mean decoding).
    """
    generator = build_generator(args, None, pretrained=not args.init_from)
    if args.init_from:
        source = load_keras_file(resolve_model(args.init_from).path)
        if args.fresh_decoder:
            encoder = f"{args.encoder}_encoder"
            generator.get_layer(encoder).set_weights(source.get_layer(encoder).get_weights())
        else:
            copy_matching_weights(source, generator, f"{args.encoder}_encoder" if args.arch in UNETS else None)
    if args.freeze_encoder:
        generator.get_layer(f"{args.encoder}_encoder").trainable = False  # its BatchNorm then keeps its statistics
    if args.hints_only:  # only the known-colors paths learn, and not their biases: without hints,
        for layer in generator.layers:  # their input is zero, and the model is exactly that of --init_from
            layer.trainable = layer.name.startswith(HINT_LAYERS)
            if layer.trainable and getattr(layer, "bias", None) is not None:
                layer.bias.trainable = False
    reconstruction = LOSSES[args.loss]
    if args.overshoot:
        reconstruction = with_overshoot(reconstruction, args.overshoot)
    rate = learning_rate(args, 0 if train_grids is None else len(train_grids))
    if args.certainty:
        if not args.train_colors:  # only the head learns: the colors stay those of --init_from
            for layer in generator.layers:
                layer.trainable = layer.name.startswith("certainty")
        median_and_doubt = [generator.get_layer("ab").output, generator.get_layer("certainty_log_scale").output]
        model = keras.Model(generator.input, layers.Concatenate(name="median_and_doubt")(median_and_doubt))
        loss = with_doubt(reconstruction) if args.train_colors else laplace_nll
        model.compile(optimizer=keras.optimizers.Adam(rate), loss=loss)
    elif args.sure_colors:
        median_and_sure = [generator.get_layer("ab").output, generator.get_layer(f"{SURE_PREFIX}ab").output]
        model = keras.Model(generator.input, layers.Concatenate(name="median_and_sure")(median_and_sure))
        loss = median_and_sure_loss(reconstruction, args.sure_colors)
        model.compile(optimizer=keras.optimizers.Adam(rate), loss=loss)
    elif args.arch == "unet_classes":
        model = keras.Model(generator.input, generator.get_layer("ab_logits").output, name="unet_class_logits")
        loss = reconstruction
        if train_grids is not None:
            loss = rebalanced_loss(RebalancedClassLoss, train_grids, args.rebalance_mix)
        model.compile(optimizer=keras.optimizers.Adam(rate), loss=loss)
    elif is_adversarial(args):
        from models.gan import Pix2Pix  # TensorFlow only: its train_step uses tf.GradientTape

        model = Pix2Pix(generator, build_patchgan_discriminator(None), args.l1_weight, reconstruction)
        model.compile(
            keras.optimizers.Adam(rate, beta_1=0.5),
            keras.optimizers.Adam(rate, beta_1=0.5),
        )
    elif args.no_worse:
        model = with_automatic_colors(generator)
        loss = no_worse_than_automatic(reconstruction, args.no_worse)
        model.compile(optimizer=keras.optimizers.Adam(rate), loss=loss)
    else:
        model = generator
        if args.rebalance_mix is not None and train_grids is not None:
            reconstruction = rebalanced_loss(RebalancedL1, train_grids, args.rebalance_mix)
        model.compile(optimizer=keras.optimizers.Adam(rate), loss=reconstruction)
    return model, generator


def with_automatic_colors(generator: keras.Model) -> keras.Model:
    """(L, hints) -> the generator's a/b with the hints and, beside them, without (its automatic colors),
    which --no_worse compares against."""
    lightness, hints = generator.inputs
    no_hints = layers.Lambda(keras.ops.zeros_like, name="no_hints")(hints)
    automatic = generator([lightness, no_hints])
    both = layers.Concatenate(name="hinted_and_automatic")([generator.outputs[0], automatic])
    return keras.Model(generator.inputs, both)


def export(generator: keras.Model, args: argparse.Namespace, card: dict) -> Path:
    """Rebuild the generator at the inference size with its trained weights; save .keras and its card."""
    exported = build_generator(args, args.size, pretrained=False)
    exported.set_weights(generator.get_weights())
    model_path = Path(args.out) / f"{card['name']}.keras"
    exported.save(model_path)
    card = dict(card, parameters=exported.count_params(), file=model_path.name, sha256=file_sha256(str(model_path)))
    model_path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return model_path


def share(text: str) -> float:
    """An argparse type: a share from 0 to 1."""
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", required=True, help="folders, globs or gs:// locations of color photos")
    parser.add_argument("--val", nargs="+", help="validation photos; default: 10%% of --data by file-name hash")
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES), default="unet")
    parser.add_argument("--loss", choices=sorted(LOSSES), default="mae", help="reconstruction loss on a/b")
    parser.add_argument("--encoder", choices=sorted(ENCODERS), default="mobilenet_v2", help="unet and unet_classes")
    parser.add_argument(
        "--temperature", type=float, default=ANNEALED_MEAN_TEMPERATURE, help="unet_classes: annealed-mean temperature"
    )
    parser.add_argument(
        "--rebalance_mix",
        type=float,
        default=None,
        help=f"share of the uniform prior in the color-rarity weights (1: none); unet_classes default {REBALANCE_MIX}, "
        "regressors (--loss mae) default: no weights",
    )
    parser.add_argument(
        "--freeze_encoder",
        action="store_true",
        help="unet, unet_classes: train the decoder (and hint paths) only; the encoder keeps its weights",
    )
    parser.add_argument(
        "--fresh_decoder",
        action="store_true",
        help="with --init_from: take only its encoder; the rest starts anew (models.train_trust's fold models)",
    )
    parser.add_argument(
        "--hints", action="store_true", help="unet: take known colors as a second input (trained on sampled hints)"
    )
    parser.add_argument(
        "--hint_attention",
        action="store_true",
        help="with --hints: also carry each known color to where the decoder's features match its own "
        "(models.hint_attention)",
    )
    parser.add_argument(
        "--hint_nearness",
        type=float,
        default=None,
        metavar="START",
        help="with --hint_attention: a far cell needs more likeness than a near one to take a known color "
        "(a learned penalty on the squared distance, the grid's side = 1, starting at START)",
    )
    parser.add_argument(
        "--hints_only",
        action="store_true",
        help="with --hints and --init_from: train the known-colors paths only (not their biases), so that without "
        "hints the model stays --init_from's",
    )
    parser.add_argument(
        "--hint_share",
        type=share,
        default=HINTS_SHARE,
        help=f"with --hints: the share of the training crops given known colors (default {HINTS_SHARE})",
    )
    parser.add_argument(
        "--no_worse",
        type=float,
        default=None,
        metavar="WEIGHT",
        help="with --hints: add WEIGHT times how much worse than the model's own automatic colors the known colors "
        "make each pixel to the loss (models.losses.no_worse_than_automatic)",
    )
    parser.add_argument(
        "--overshoot",
        type=float,
        default=None,
        metavar="WEIGHT",
        help="add WEIGHT times the chroma painted beyond the truth's to the loss: the model learns a lower quantile "
        "of chroma, little color where its training photos' colors spread (models.losses.with_overshoot)",
    )
    parser.add_argument(
        "--sure_colors",
        type=float,
        default=None,
        metavar="WEIGHT",
        help="unet: also train a second decoder for the colors the model is sure of (--loss plus WEIGHT times the "
        "chroma beyond the truth's) and blend it with the median by --sure_blend (models.sure_colors)",
    )
    parser.add_argument(
        "--sure_blend",
        type=float,
        nargs="+",
        default=None,
        metavar="NUMBER",
        help="with --sure_colors, LOWER UPPER GAIN [FAINT]: the median where the sure colors keep UPPER of its chroma "
        "or more, the sure colors "
        f"times GAIN where they keep LOWER or less (default {' '.join(map(str, SURE_BLEND))}), then FAINT units "
        "(CIELAB) times the blend's doubt (1 - its weight) off each pixel's chroma, none below zero (default 0); with "
        "--hint_attention, the median and no threshold wherever the known colors reach",
    )
    parser.add_argument(
        "--scene_context",
        action="store_true",
        help="unet: add the encoder's features averaged over the whole picture to every pixel's (Iizuka et al. 2016)",
    )
    parser.add_argument(
        "--certainty",
        action="store_true",
        help="unet: train only a head that predicts how sure each color is (Laplace likelihood) on --init_from's "
        "model; the exported chroma follows it (tools.fit_certainty fits how)",
    )
    parser.add_argument(
        "--train_colors",
        action="store_true",
        help="with --certainty: the colors learn too (by --loss; the encoder only without --freeze_encoder)",
    )
    parser.add_argument("--decoder_activation", choices=("relu", "leaky_relu"), default="relu", help="autoencoder")
    parser.add_argument(
        "--adversarial", action="store_true", help="train the --arch generator with the pix2pix objective (PatchGAN)"
    )
    parser.add_argument(
        "--l1_weight", type=float, default=100.0, help="adversarial runs: weight of the reconstruction loss"
    )
    parser.add_argument("--size", type=int, default=256, help="inference size of the exported model")
    parser.add_argument("--crop", type=int, default=192, help="training crop taken from the size x size grid")
    parser.add_argument("--epochs", type=int, default=12, help="0 exports the untrained model (the gray baseline)")
    parser.add_argument("--max_minutes", type=float, default=None, help="stop after this much training time")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--learning_rate", type=float, default=None, help="default 1e-3, adversarial 2e-4")
    parser.add_argument(
        "--cosine_decay", action="store_true", help="decay the learning rate along a cosine to zero over --epochs"
    )
    parser.add_argument("--patience", type=int, default=4, help="early stopping on validation loss")
    parser.add_argument(
        "--average_from",
        type=int,
        default=None,
        metavar="EPOCH",
        help="export the mean of the weights of every epoch from this one (1-based) on, not the best epoch",
    )
    parser.add_argument(
        "--damage_share",
        type=share,
        default=1.0,
        help="share of the training crops given old-photo damage (models/degrade.py); 0 trains on clean L",
    )
    parser.add_argument(
        "--neutral_balance",
        type=share,
        default=0.0,
        help="share of each training photo's near-neutral cast (transforms/balance.py) taken out of its targets",
    )
    parser.add_argument("--init_from", default=None, help="start from a bundled model's or a .keras file's weights")
    parser.add_argument("--out", required=True, help="run folder: checkpoints, CSV log, exported model")
    parser.add_argument("--name", default=None, help="model name in the registry (default: --arch)")
    parser.add_argument("--version", default="1")
    parser.add_argument("--bundle", action="store_true", help="also copy the model, card and log into models/bundled/")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.learning_rate is None:
        args.learning_rate = 2e-4 if is_adversarial(args) else 1e-3
    if is_adversarial(args) and keras.backend.backend() != "tensorflow":
        parser.error(f"adversarial training needs KERAS_BACKEND=tensorflow (this is {keras.backend.backend()})")
    if args.adversarial and args.arch == "unet_classes":
        parser.error("--adversarial trains a/b regressors; unet_classes is trained on its color classes")
    if args.freeze_encoder and args.arch not in UNETS:
        parser.error("--freeze_encoder is for unet and unet_classes")
    if args.fresh_decoder and not (args.init_from and args.arch in UNETS):
        parser.error("--fresh_decoder takes the encoder of --init_from: give it, with unet or unet_classes")
    if args.certainty and not args.init_from:
        parser.error("--certainty trains a head on a trained model: give --init_from")
    if args.hint_attention and not args.hints:
        parser.error("--hint_attention carries known colors: give --hints")
    if args.hint_nearness is not None and not args.hint_attention:
        parser.error("--hint_nearness is a term of --hint_attention: give it")
    if args.hints_only and not (args.hints and args.init_from):
        parser.error("--hints_only trains the known-colors paths of a trained model: give --hints and --init_from")
    if args.no_worse is not None and not args.hints:
        parser.error("--no_worse compares the colors with known colors to those without: give --hints")
    if args.no_worse is not None and (args.certainty or is_adversarial(args) or args.rebalance_mix is not None):
        parser.error(
            "--no_worse adds to the plain reconstruction loss: not with --certainty, --adversarial or --rebalance_mix"
        )
    if args.overshoot is not None and (args.arch == "unet_classes" or args.certainty or args.rebalance_mix is not None):
        parser.error(
            "--overshoot adds to an a/b reconstruction loss: not with unet_classes, --certainty or --rebalance_mix"
        )
    if args.sure_colors is not None and (
        args.arch != "unet"
        or args.certainty
        or args.overshoot is not None
        or args.no_worse is not None
        or args.hints_only
        or is_adversarial(args)
        or args.rebalance_mix is not None
    ):
        parser.error(
            "--sure_colors trains two unet decoders by --loss: not with --certainty, --overshoot, --no_worse, "
            "--hints_only, --adversarial or --rebalance_mix"
        )
    if args.sure_colors is not None and args.sure_colors <= 0:
        parser.error(f"--sure_colors WEIGHT must be above 0, not {args.sure_colors:g}")
    if args.sure_blend is not None and args.sure_colors is None:
        parser.error("--sure_blend blends the two answers of --sure_colors: give it")
    if args.sure_colors is not None:
        args.sure_blend = list(args.sure_blend or SURE_BLEND)
        if len(args.sure_blend) not in (3, 4):
            parser.error(f"--sure_blend takes LOWER UPPER GAIN and an optional FAINT, not {len(args.sure_blend)}")
        try:
            check_blend(*args.sure_blend)
        except ValueError as problem:
            parser.error(f"--sure_blend: {problem}")
    if args.train_colors and not args.certainty:
        parser.error("--train_colors is for --certainty (without it, every run trains the colors)")
    for flag in ("hints", "scene_context", "certainty"):
        if getattr(args, flag) and args.arch != "unet":
            parser.error(f"--{flag} is for --arch unet")
    if args.rebalance_mix is not None and args.arch != "unet_classes" and (args.loss != "mae" or is_adversarial(args)):
        parser.error("--rebalance_mix weights the mae loss of a non-adversarial regressor, or unet_classes' classes")
    if args.rebalance_mix is None and args.arch == "unet_classes":
        args.rebalance_mix = REBALANCE_MIX
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    history: dict = {}
    train_files = val_files = []
    train_grids = None
    if args.epochs > 0:
        files = list_images(args.data)
        train_files, val_files = (files, list_images(args.val)) if args.val else split_by_name(files, 10)
        logger.info("%d training and %d validation photos", len(train_files), len(val_files))
        train_grids = load_grids(train_files, args.size)
        if args.neutral_balance:
            train_grids = balance_neutrals(train_grids, args.neutral_balance)
    model, generator = build_trainable(args, train_grids)
    if train_grids is not None:
        workers = max(1, min(8, (os.cpu_count() or 2) // 2))  # threads that cut and damage the crops
        train = CropBatches(
            train_grids,
            args.crop,
            args.batch_size,
            True,
            args.damage_share,
            args.hints,
            args.seed,
            workers,
            args.hint_share,
        )
        val = CropBatches(load_grids(val_files, args.size), args.crop, args.batch_size, False, 0.0, args.hints)
        callbacks = training_callbacks(out, args.patience, args.max_minutes, args.average_from)
        callbacks.append(EpochOfBatches(train))
        history = model.fit(
            train,
            validation_data=val,
            epochs=args.epochs,
            callbacks=callbacks,
            verbose=1 if sys.stdout.isatty() else 2,
        ).history

    averaged_epochs, average_val_loss = [], None
    if args.average_from and train_grids is not None and (out / AVERAGE_FILE).exists():
        averaged_epochs, mean_weights = read_average(out / AVERAGE_FILE)
        model.set_weights(mean_weights)
        average_val_loss = float(model.evaluate(val, verbose=0, return_dict=True)["loss"])
        logger.info("exporting the mean of epochs %s: validation loss %.4f", averaged_epochs, average_val_loss)
    elif (out / "best.weights.h5").exists():  # the epoch with the lowest validation loss
        model.load_weights(str(out / "best.weights.h5"))
    name = args.name or args.arch
    val_losses = logged_val_losses(out / "log.csv") or history.get("val_loss", [])
    beyond = "chroma beyond the truth's"
    reconstruction = args.loss + (f" + {args.overshoot} * {beyond}" if args.overshoot else "")
    card = {
        "name": name,
        "version": args.version,
        "architecture": args.arch,
        "encoder": args.encoder if args.arch in ("unet", "unet_classes") else None,
        "input_size": args.size,
        "color_space": "CIELAB (D65, sRGB)",
        "input": "L / 100, letterboxed to input_size x input_size, shape (input_size, input_size, 1)"
        + ("; hints: known a/b / 128 and mask, shape (input_size, input_size, 3), zeros for none" * args.hints),
        "hints": args.hints,
        "output": "a/b / 128, shape (input_size, input_size, 2)",
        "annealed_mean_temperature": args.temperature if args.arch == "unet_classes" else None,
        "rebalance_mix": args.rebalance_mix,
        "loss": f"{reconstruction} + {DOUBT_WEIGHT} * Laplace negative log-likelihood of the certainty head"
        if args.train_colors
        else "Laplace negative log-likelihood of the certainty head (colors frozen)"
        if args.certainty
        else f"adversarial + {args.l1_weight} * ({reconstruction})"
        if is_adversarial(args)
        else f"{reconstruction} + {args.no_worse} * how much worse than the automatic colors hints make each pixel"
        if args.no_worse
        else f"{args.loss} on the median + ({args.loss} + {args.sure_colors} * {beyond}) on the sure colors"
        if args.sure_colors
        else {"unet_classes": f"class-rebalanced cross-entropy over {len(in_gamut_bins())} a/b bins"}.get(
            args.arch, f"color-rarity-weighted {args.loss}" if args.rebalance_mix is not None else reconstruction
        ),
        "initialized_from": args.init_from,
        "frozen_encoder": args.freeze_encoder,
        "fresh_decoder": args.fresh_decoder,
        "scene_context": args.scene_context,
        "certainty": args.certainty,
        "hint_attention": args.hint_attention,
        "hint_nearness": args.hint_nearness,
        "hints_only": args.hints_only,
        "no_worse": args.no_worse,
        "overshoot": args.overshoot,
        "sure_colors": args.sure_colors,
        "sure_blend": args.sure_blend,
        "hint_share": args.hint_share if args.hints else None,
        "damage_share": args.damage_share,
        "neutral_balance": args.neutral_balance,
        "training_data": args.data if train_files else None,
        "validation_data": (args.val or "10% of training data by file-name hash") if val_files else None,
        "training_images": len(train_files),
        "validation_images": len(val_files),
        "crop": args.crop,
        "epochs_run": len(val_losses),
        "best_val_loss": min(val_losses) if val_losses else None,
        "averaged_epochs": averaged_epochs or None,
        "val_loss_of_average": average_val_loss,
        "command": "python -m models.train " + shlex.join(sys.argv[1:] if argv is None else argv),
        "trained_on": datetime.date.today().isoformat(),
    }
    model_path = export(generator, args, card)
    logger.info("exported %s with its model card", model_path)
    if args.bundle:
        shutil.copy(model_path, BUNDLED_DIR / model_path.name)
        shutil.copy(model_path.with_suffix(".json"), BUNDLED_DIR / f"{name}.json")
        if (out / "log.csv").exists():
            shutil.copy(out / "log.csv", BUNDLED_DIR / f"{name}.log.csv")
        logger.info("bundled into %s", BUNDLED_DIR)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
