"""The hint studio in a real browser (Debian's chromium through chromium-driver and Selenium), started by its command.

Open the gallery, open a scan, click three known colors, give them colors, see the preview turn
those colors there, undo and redo, save, check the file, step to the next scan by keyboard, and
run the pipeline with --hints to find the colors in its result.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import write_image
from tests.test_studio import GREEN, RED, make_archive, run_pipeline
from transforms.hints import hex_to_ab
from transforms.lab import bgr_to_lab

BLUE = "#1f4fb4"
POINTS = [(30, 20, RED), (120, 10, GREEN), (200, 30, BLUE)]
ROOT = Path(__file__).resolve().parent.parent


def _browser() -> tuple[str, str]:
    chromium = next((path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("chromium and chromium-driver are not installed here (run_tests.sh installs them when root)")
    return chromium, driver


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def studio_address(tmp_path, hint_echo_model):
    """`python -m studio` on a tiny archive (run once by the pipeline); the address it prints."""
    root = make_archive(tmp_path)
    run_pipeline(root, hint_echo_model)
    command = [sys.executable, "-m", "studio", "--input", root / "scans", "--hints", root / "hints"]
    command += ["--output", root / "out", "--model", hint_echo_model, "--port", str(_free_port())]
    command += ["--cache_dir", tmp_path / "cache"]
    server = subprocess.Popen(
        [str(part) for part in command], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        lines = []
        while not any(line.startswith("open ") for line in lines):
            line = server.stdout.readline()
            assert line, f"the studio stopped: {lines} {server.stderr.read()}"
            lines.append(line)
        address = re.search(r"open (http://\S+)", lines[-1]).group(1)
        assert address.startswith("http://127.0.0.1:") and "?key=" in address
        yield address, root
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = _browser()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1500,1000",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for drivers online
    chrome = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    chrome.set_script_timeout(30)
    yield chrome
    chrome.quit()


def wait_for(browser, script: str, timeout: float = 30.0):
    """Poll a JavaScript expression until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = browser.execute_script("return " + script)
        if value:
            return value
        time.sleep(0.1)
    message = browser.execute_script("return document.getElementById('message').textContent")
    raise AssertionError(f"timed out waiting for {script} (message: {message!r})")


def on_screen(browser, x: int, y: int) -> tuple[int, int]:
    """Where the editor shows the center of scan pixel (x, y), in the window."""
    left, top = browser.execute_script(
        "const v = window.studio.state.view, box = document.getElementById('scan-view').getBoundingClientRect();"
        "return [box.left + arguments[0] * v.scale + v.x, box.top + arguments[1] * v.scale + v.y]",
        x + 0.5,
        y + 0.5,
    )
    return round(left), round(top)


def click_scan_pixel(browser, x: int, y: int) -> None:
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    actions = ActionBuilder(browser)
    actions.pointer_action.move_to_location(*on_screen(browser, x, y))
    actions.pointer_action.click()
    actions.perform()


def drag_scan_pixel(browser, start: tuple[int, int], end: tuple[int, int]) -> None:
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    actions = ActionBuilder(browser)
    actions.pointer_action.move_to_location(*on_screen(browser, *start))
    actions.pointer_action.pointer_down()
    actions.pointer_action.move_to_location(*on_screen(browser, *end))
    actions.pointer_action.pointer_up()
    actions.perform()


def type_into(browser, element_id: str, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    field = browser.find_element("id", element_id)
    field.clear()
    field.send_keys(text, Keys.TAB)


def preview_ab(browser, x: int, y: int) -> np.ndarray:
    rgb = browser.execute_script("return window.studio.previewColorAt(arguments[0], arguments[1])", x, y)
    return bgr_to_lab(np.array([[rgb[::-1]]], np.float32) / 255)[0, 0, 1:]


def test_an_archivist_marks_three_known_colors_and_the_pipeline_uses_them(studio_address, browser, hint_echo_model):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    address, root = studio_address
    browser.get(address)
    wait_for(browser, "document.querySelectorAll('.card').length === 3")
    names = browser.execute_script("return [...document.querySelectorAll('.card')].map(c => c.dataset.relative)")
    assert names == ["box/a.png", "box/b.png", "c.png"]
    assert "outside the 80x60 scan" in browser.find_element("css selector", '[data-relative="box/b.png"]').text
    loaded = "[...document.querySelectorAll('.card img')].filter(i => i.complete && i.naturalWidth > 0).length"
    assert wait_for(browser, f"{loaded} === 3 && {loaded}")  # a's scan and result, b's scan; not broken c.png
    wait_for(browser, """document.querySelector('[data-relative="c.png"]').textContent.includes('cannot be shown')""")

    browser.find_element("css selector", '[data-relative="box/a.png"]').click()
    wait_for(browser, "document.getElementById('preview-view').dataset.version >= 1")
    for x, y, _ in POINTS:
        assert np.abs(preview_ab(browser, x, y)).max() < 3  # the echo model without hints: gray

    for x, y, color in POINTS:
        click_scan_pixel(browser, x, y)
        type_into(browser, "color-text", color)
        type_into(browser, "radius", "8")  # discs: the echo model colors only the model pixels it is given
    expected = [{"x": x, "y": y, "color": color, "radius": 8} for x, y, color in POINTS]
    assert browser.execute_script("return window.studio.state.points") == expected

    ActionChains(browser).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()  # undo the radius
    assert "radius" not in browser.execute_script("return window.studio.state.points")[-1]
    ActionChains(browser).key_down(Keys.CONTROL).key_down(Keys.SHIFT).send_keys("z").key_up(Keys.SHIFT).key_up(
        Keys.CONTROL
    ).perform()
    assert browser.execute_script("return window.studio.state.points") == expected
    drag_scan_pixel(browser, (30, 20), (36, 24))  # drag a point, then undo the move
    assert browser.execute_script("return window.studio.state.points[0]") == dict(expected[0], x=36, y=24)
    ActionChains(browser).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()
    assert browser.execute_script("return window.studio.state.points") == expected

    shown = json.dumps(json.dumps(expected, separators=(",", ":")))  # as the page's JSON.stringify writes them
    wait_for(browser, f"document.getElementById('preview-view').dataset.points === {shown}")
    for x, y, color in POINTS:
        wanted = np.array(hex_to_ab(color))
        assert np.linalg.norm(preview_ab(browser, x, y) - wanted) < 0.2 * np.linalg.norm(wanted), color

    browser.find_element("id", "save").click()
    wait_for(browser, "document.getElementById('message').textContent.startsWith('saved 3 known colors')")
    saved = json.loads((root / "hints" / "box" / "a.json").read_text())
    assert saved == {"points": expected}

    wait_for(browser, "document.querySelectorAll('#palette button').length === 3")  # the archive's colors
    assert wait_for(browser, "window.studio.state.region && window.studio.state.region.key") == "0,0,240,40"

    ActionChains(browser).send_keys(Keys.PAGE_DOWN).perform()  # the next scan: its malformed hints file shown
    wait_for(browser, "document.getElementById('scan-name').textContent.startsWith('box/b.png')")
    assert "outside the 80x60 scan" in browser.find_element("id", "hints-error").text

    reference = write_image(root / "reference.png", np.full((20, 30, 3), (40, 90, 200), np.uint8))  # BGR
    browser.find_element("id", "reference-file").send_keys(str(reference))
    wait_for(browser, "document.getElementById('reference').height === 20")
    ActionChains(browser).move_to_element(browser.find_element("id", "reference")).click().perform()
    wait_for(browser, "document.getElementById('color-text').value === '#c85a28'")  # the eyedropper's color

    rows = run_pipeline(root, hint_echo_model)
    assert rows["a.png"]["status"] == "ok" and rows["a.png"]["hints"] == 3
    result = bgr_to_lab(cv2.imread(rows["a.png"]["output_path"]).astype(np.float32) / 255)
    for x, y, color in POINTS:
        assert result[y, x, 1:] == pytest.approx(hex_to_ab(color), abs=6.0), color
