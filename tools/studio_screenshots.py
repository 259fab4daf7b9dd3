"""The screenshots of docs/hints.md: the studio's gallery and editor in headless chromium, small PNGs.

    python -m tools.studio_screenshots --input samples/gray --hints HINTS --output OUTPUT --scan NAME [--out docs]

Starts `python -m studio` on the folders (a pipeline run's --output, so the gallery has results),
opens the gallery, then the editor of `--scan` with its hints file, waits for the preview,
and writes docs/studio_gallery.png and docs/studio_editor.png (reduced to 256 colors).
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image


def _wait(browser, script: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not browser.execute_script("return " + script):
        if time.monotonic() > deadline:
            raise TimeoutError(script)
        time.sleep(0.2)


def _save(png: bytes, path: Path, width: int) -> None:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image = image.resize((width, round(image.height * width / image.width)), Image.LANCZOS)
    image.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"{path}: {image.width} x {image.height}, {path.stat().st_size // 1024} kB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.studio_screenshots", description=__doc__.split("\n\n")[0])
    for name in ("--input", "--hints", "--output", "--scan"):
        parser.add_argument(name, required=True)
    parser.add_argument("--model", default="default")
    parser.add_argument("--port", default="8799")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    arguments = parser.parse_args(argv)

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    command = [sys.executable, "-m", "studio", "--input", arguments.input, "--hints", arguments.hints]
    command += ["--output", arguments.output, "--model", arguments.model, "--port", arguments.port]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1720,860", "--hide-scrollbars"):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))
    try:
        line = ""
        while not line.startswith("open "):
            line = server.stdout.readline()
            if not line:
                raise RuntimeError("the studio did not start")
        browser.get(re.search(r"open (\S+)", line).group(1))
        images = "[...document.querySelectorAll('.card img')]"
        _wait(browser, f"{images}.length > 0 && {images}.every(i => i.complete && i.naturalWidth > 0)")
        _save(browser.get_screenshot_as_png(), arguments.out / "studio_gallery.png", 1000)
        browser.execute_script("window.studio.openScan(arguments[0])", arguments.scan)
        _wait(browser, "document.getElementById('preview-view').dataset.version >= 1")
        browser.execute_script("window.studio.select(0)")
        _save(browser.get_screenshot_as_png(), arguments.out / "studio_editor.png", 1000)
    finally:
        browser.quit()
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
