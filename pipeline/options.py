"""Command-line options of the colorization pipeline (every other Beam option passes through)."""

from __future__ import annotations

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

from transforms.codec import PEAK_BYTES_PER_PIXEL
from transforms.icc import OUTPUT_PROFILES

OUTPUT_FORMATS = ("png", "jpg", "tiff")
MAX_VIVIDNESS = 3.0


def positive_int(text: str) -> int:
    """An argparse type: a whole number above 0."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number above 0, not {text}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def vividness_factor(text: str) -> float:
    """An argparse type: a chroma scale from 0 (gray) to MAX_VIVIDNESS."""
    value = float(text)
    if not 0.0 <= value <= MAX_VIVIDNESS:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_VIVIDNESS:g}, not {text}")
    return value


class ColorizeOptions(PipelineOptions):
    """What to colorize, where to write it, with which model, and how to score it."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        parser.add_argument(
            "--input",
            required=True,
            help="Folder (searched recursively), glob or single file of scans; local or gs://.",
        )
        parser.add_argument(
            "--output",
            required=True,
            help="Folder for the colorized images (same relative paths) and metadata/*.parquet.",
        )
        parser.add_argument(
            "--model",
            default="default",
            help="A bundled model name (default, or one listed in docs/models.md) or a path to a .keras file (local or gs://).",
        )
        parser.add_argument(
            "--output_format",
            choices=OUTPUT_FORMATS,
            default=None,
            help="Format of the colorized images; default: the input's own format (PNG where it cannot be written).",
        )
        parser.add_argument(
            "--ground_truth",
            default=None,
            help="Folder of color originals paired with the scans by relative path; enables the metrics.",
        )
        parser.add_argument(
            "--hints",
            default=None,
            help="Folder of known colors, local or gs://: for the scan box1/x.tif, box1/x.json holds "
            '{"points": [{"x": 120, "y": 340, "color": "#8a2b1f"}, ...]} (see the README). Scans without '
            "a hints file are colorized automatically; a bad hints file is an error row.",
        )
        parser.add_argument(
            "--vividness",
            type=vividness_factor,
            default=1.0,
            help="Scale the model's colors (their chroma): 1 as the model predicts them, below 1 paler, "
            "above 1 more vivid, 0 gray. Lightness stays the scan's own and colors stay inside sRGB.",
        )
        parser.add_argument(
            "--no_mirror_average",
            dest="mirror_average",
            action="store_false",
            help="Colorize each scan once. By default the model also colors the scan's mirror image and the "
            "two are averaged: colors the model is sure of stay, where the two disagree (a guess) the color "
            "fades toward gray (half the speed of the model step).",
        )
        parser.add_argument(
            "--output_profile",
            choices=tuple(OUTPUT_PROFILES),
            default="srgb",
            help="Color space of the colorized images, embedded as their ICC profile: srgb, or adobe-rgb or "
            "prophoto for 16-bit TIFF/PNG masters (colors kept inside that space, lightness the scan's own). "
            "Not with --evaluate or --ground_truth, which score in sRGB.",
        )
        parser.add_argument(
            "--c2pa_cert",
            default=None,
            help="PEM certificate chain (signing certificate first), local or gs://: with --c2pa_key, every output "
            "gets a signed C2PA manifest (Content Credentials; docs/archival.md). Default: nothing is signed.",
        )
        parser.add_argument(
            "--c2pa_key",
            default=None,
            help="PEM private key (unencrypted) of the --c2pa_cert signing certificate, local or gs://.",
        )
        parser.add_argument(
            "--evaluate",
            action="store_true",
            help="The inputs are color photos: colorize their luminance and score the result against them.",
        )
        parser.add_argument(
            "--max_pixels",
            type=positive_int,
            default=None,
            help="Refuse, from the file header and before decoding, images with more pixels than this: one "
            f"error row instead of an exhausted memory. Default: what a quarter of the worker machine's memory "
            f"holds at {PEAK_BYTES_PER_PIXEL} bytes per pixel.",
        )
        parser.add_argument(
            "--overwrite",
            action="store_true",
            help="Colorize every file again. By default a rerun into the same --output skips the files "
            "an earlier (possibly interrupted) run finished, when their source is unchanged.",
        )
        parser.add_argument(
            "--batch_size",
            type=positive_int,
            default=8,
            help="Largest number of scans the model sees at once.",
        )
        parser.add_argument(
            "--inference_threads",
            type=non_negative_int,
            default=0,
            help="CPU threads TensorFlow may use per worker process (default 0: its own choice, every core). "
            "With several worker processes on one machine, cores / processes keeps them from fighting.",
        )
        parser.add_argument(
            "--model_copies",
            type=non_negative_int,
            default=1,
            help="Copies of the model per worker machine, shared by all its worker processes (default 1: one "
            "on the GPU however many processes do the per-scan work). 0: a copy in every worker process.",
        )
        parser.add_argument(
            "--include_all_files",
            action="store_true",
            help="Try every file under --input as a scan. By default only image files are read (by extension); "
            "other files, hidden (dot) files and folders, Thumbs.db and desktop.ini are skipped and counted.",
        )
        parser.add_argument(
            "--verbose",
            action="store_true",
            help="Show what is normally kept quiet: tracebacks of errors, and TensorFlow's and Beam's own messages.",
        )
