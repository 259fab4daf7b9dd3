"""The package as users get it: the sdist and the wheel each install into a fresh virtual environment
and colorize the bundled samples from the installed copy, not from this source tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = {
    f"models/bundled/{name}.{ext}" for name in ("unet", "autoencoder", "pix2pix", "gray") for ext in ("keras", "json")
}
SAMPLES = sorted(path.name for path in (ROOT / "samples" / "gray").iterdir())


def _run(command: list, cwd: Path, **environment: str) -> subprocess.CompletedProcess:
    """Run without this tree's PYTHONPATH, so only what the command is given can be imported."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", **environment)
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Path]:
    """A wheel built from the source tree, and one built from the sdist (what `pip install SDIST` does)."""
    work = tmp_path_factory.mktemp("dist")
    source = work / "source"  # a clean copy of what git sees: no build/, .venv, data/ or runs/ of this checkout
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    for name in filter(None, listed.stdout.decode().split("\0")):
        if (ROOT / name).is_file():  # not a file deleted but still in the index
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    _run([sys.executable, "setup.py", "-q", "sdist", "--dist-dir", work / "sdist"], source)
    (sdist,) = (work / "sdist").glob("revivacolor-*.tar.gz")
    names = {name.split("/", 1)[1] for name in tarfile.open(sdist).getnames() if "/" in name}
    assert {"setup.py", "README.md", "MANIFEST.in", "Dockerfile", "samples/SOURCES.md"} <= names
    assert BUNDLED <= names and {f"samples/gray/{name}" for name in SAMPLES} <= names

    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    _run([*pip_wheel, "-w", work / "from-tree", source], work)
    _run([*pip_wheel, "-w", work / "from-sdist", sdist], work)
    built = {kind: next((work / f"from-{kind}").glob("revivacolor-*.whl")) for kind in ("tree", "sdist")}
    for wheel in built.values():
        names = set(zipfile.ZipFile(wheel).namelist())
        assert BUNDLED <= names and "pipeline/__main__.py" in names and "transforms/lab.py" in names
        assert "transforms/profiles/Gray.icc" in names  # read by transforms.icc at run time
        assert {"studio/__main__.py", "studio/static/index.html", "studio/static/studio.js"} <= names
    return built


@pytest.mark.parametrize("kind", ["tree", "sdist"])
def test_installed_package_colorizes_the_samples(wheels, kind, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], tmp_path)
    python = venv / "bin" / "python"
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheels[kind]], tmp_path)

    # The heavy dependencies come from this environment's site-packages, on PYTHONPATH only: as a site
    # directory its editable-install finder would put the source tree back on the path.
    dependencies = sysconfig.get_path("purelib")
    workdir = tmp_path / "cwd"  # not the source tree, so `python -m` cannot import from it
    workdir.mkdir()
    where = _run(
        [python, "-c", "import pipeline, models.registry as r; print(pipeline.__file__); print(r.BUNDLED_DIR)"],
        workdir,
        PYTHONPATH=dependencies,
    ).stdout.split()
    assert all(Path(path).is_relative_to(venv) for path in where), where

    scans = shutil.copytree(ROOT / "samples" / "gray", tmp_path / "scans")
    output = tmp_path / "out"
    run = _run(
        [python, "-m", "pipeline", "--input", scans, "--output", output, "--model", "default"],
        workdir,
        PYTHONPATH=dependencies,
    )
    assert f"{len(SAMPLES)} colorized now, 0 done before, 0 skipped (not images), 0 failed" in run.stdout
    written = (path.name for path in output.glob("*.*") if path.name != "report.html" and path.name[0] != ".")
    assert sorted(written) == SAMPLES  # beside them, the report and the hidden .revivacolor bookkeeping
    assert (output / "report.html").is_file() and list((output / "metadata").glob("*.parquet"))
    studio = _run([venv / "bin" / "revivacolor", "studio", "--help"], workdir, PYTHONPATH=dependencies)
    assert "usage: revivacolor studio" in studio.stdout and "--hints" in studio.stdout
