"""The hint studio's web app: gallery, editor API, saving, and the hostile requests a local server must refuse."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
from starlette.testclient import TestClient

import pipeline
from models.registry import resolve_model
from pipeline.inference import load_checked_model
from pipeline.records import read_metadata
from studio.app import create_app
from studio.archive import Archive
from studio.cli import parse_arguments, served_hosts
from studio.command import main as command_main
from studio.session import Studio, hints_document
from tests.conftest import color_photo, write_image
from transforms.hints import parse_hints

KEY = "test-key-0123456789"
PORT = 8765
ADDRESS = f"http://127.0.0.1:{PORT}"
RED, GREEN = "#b22222", "#2e8b57"


def make_archive(root: Path) -> Path:
    """scans/: two gray scans in box/, a broken one, files the pipeline skips, a symlink leading out; hints/:
    a malformed file for box/b.png; outside/: what nothing may serve. Returns root."""
    write_image(root / "scans" / "box" / "a.png", cv2.cvtColor(color_photo(40, 240, seed=3), cv2.COLOR_BGR2GRAY))
    write_image(root / "scans" / "box" / "b.png", cv2.cvtColor(color_photo(60, 80, seed=4), cv2.COLOR_BGR2GRAY))
    (root / "scans" / "c.png").write_bytes(b"not an image")
    (root / "scans" / "notes.txt").write_text("not a scan")
    write_image(root / "scans" / ".hidden" / "d.png", np.zeros((8, 8), np.uint8))
    write_image(root / "outside" / "secret.png", np.full((8, 8), 200, np.uint8))
    (root / "scans" / "link.png").symlink_to(root / "outside" / "secret.png")
    (root / "hints" / "box").mkdir(parents=True)
    (root / "hints" / "box" / "b.json").write_text(json.dumps({"points": [{"x": 999, "y": 1, "color": RED}]}))
    return root


def run_pipeline(root: Path, model: Path) -> dict[str, dict]:
    output = root / "out"
    pipeline.run(
        ["--input", str(root / "scans"), "--output", str(output), "--model", str(model), "--hints", str(root / "hints")]
    )
    return {Path(row["source_path"]).name: row for row in read_metadata(str(output)).to_pylist()}


def _files(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


@pytest.fixture(scope="module")
def archive(tmp_path_factory, hint_echo_model) -> Path:
    root = make_archive(tmp_path_factory.mktemp("studio"))
    run_pipeline(root, hint_echo_model)
    return root


@pytest.fixture(scope="module")
def echo_model(hint_echo_model):
    spec = resolve_model(str(hint_echo_model))
    return spec, load_checked_model(spec)


@pytest.fixture
def client(archive, echo_model, tmp_path) -> TestClient:
    spec, model = echo_model
    studio = Studio(
        Archive(str(archive / "scans"), str(archive / "hints"), str(archive / "out")), spec, model, str(tmp_path)
    )
    app = create_app(studio, KEY, PORT, served_hosts("127.0.0.1", PORT))
    client = TestClient(app, base_url=ADDRESS, raise_server_exceptions=False)
    client.cookies.set(f"revivacolor_studio_{PORT}", KEY)
    client.studio = studio
    client.cache = tmp_path
    return client


def write(client: TestClient, method: str, path: str, body, **headers) -> object:
    headers = {"X-Studio-Key": KEY, "Origin": ADDRESS, "Content-Type": "application/json", **headers}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.request(method, path, content=content, headers=headers)


def test_the_page_needs_the_printed_address_with_its_key(client):
    client.cookies.clear()
    for wrong in ({}, {"key": "guessed"}, {"key": "clé"}):
        refused = client.get("/", params=wrong)
        assert refused.status_code == 403 and "open the address" in refused.json()["error"]
    page = client.get("/", params={"key": KEY})
    assert page.status_code == 200 and f'content="{KEY}"' in page.text
    cookie = page.headers["set-cookie"]
    assert f"revivacolor_studio_{PORT}={KEY}" in cookie and "SameSite=strict" in cookie and "HttpOnly" in cookie
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert client.get("/static/studio.js").status_code == 200


def test_the_gallery_lists_the_pipelines_scans_with_their_rows(client):
    page = client.get("/api/scans").json()
    names = [item["relative"] for item in page["items"]]
    assert names == ["box/a.png", "box/b.png", "c.png"]  # no link.png (leads out), notes.txt or .hidden/
    items = {item["relative"]: item for item in page["items"]}
    assert items["box/a.png"]["row"]["status"] == "ok" and items["box/a.png"]["result"]
    assert items["box/b.png"]["hints_file"] and "outside the 80x60 scan" in items["box/b.png"]["row"]["error"]
    assert items["c.png"]["row"]["status"] == "error" and not items["c.png"]["result"]

    def shown(**params):
        return [item["relative"] for item in client.get("/api/scans", params=params).json()["items"]]

    assert shown(show="errors") == ["box/b.png", "c.png"]
    assert shown(show="hinted") == ["box/b.png"] and shown(show="unhinted") == ["box/a.png", "c.png"]
    assert shown(sort="status")[-1] == "box/a.png"
    assert shown(limit=1, offset=1) == ["box/b.png"]
    assert client.get("/api/neighbour", params={"path": "box/a.png", "step": 1}).json()["relative"] == "box/b.png"
    assert client.get("/api/neighbour", params={"path": "box/a.png", "step": -1}).json()["relative"] is None
    bad = client.get("/api/scans", params={"sort": "nonsense"})
    assert bad.status_code == 400 and "sort one of" in bad.json()["error"]


def test_thumbnails_are_made_lazily_in_the_studios_own_cache(client, archive):
    before = _files(archive)
    assert not list(client.cache.rglob("*.jpg"))
    for kind in ("scan", "result"):
        response = client.get("/api/thumbnail", params={"path": "box/a.png", "kind": kind})
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        thumbnail = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
        assert thumbnail.shape[:2] == (40, 240)  # within 640 x 160, never enlarged
    assert len(list(client.cache.rglob("*.jpg"))) == 2 and _files(archive) == before
    assert client.get("/api/thumbnail", params={"path": "c.png", "kind": "result"}).status_code == 404
    broken = client.get("/api/thumbnail", params={"path": "c.png"})
    assert broken.status_code == 400 and "not a readable image" in broken.json()["error"]


def test_the_editor_gets_reduced_copies_and_crops_never_the_file(client):
    scan = client.get("/api/scan", params={"path": "box/a.png"}).json()
    assert (scan["width"], scan["height"]) == (240, 40) and scan["hints"] == {
        "location": scan["hints"]["location"],
        "exists": False,
        "points": [],
        "error": None,
    }
    image = client.get("/api/image", params={"path": "box/a.png", "max": 120})
    assert cv2.imdecode(np.frombuffer(image.content, np.uint8), cv2.IMREAD_COLOR).shape == (20, 120, 3)
    region = client.get(
        "/api/region", params={"path": "box/a.png", "x": 10, "y": 5, "w": 20, "h": 10, "width": 80, "height": 40}
    )
    assert cv2.imdecode(np.frombuffer(region.content, np.uint8), cv2.IMREAD_COLOR).shape == (40, 80, 3)
    too_big = client.get("/api/image", params={"path": "box/a.png", "max": 100000})
    assert too_big.status_code == 400 and "max must be between" in too_big.json()["error"]


def test_a_malformed_hints_file_is_shown_with_its_error(client):
    hints = client.get("/api/hints", params={"path": "box/b.png"}).json()
    assert hints["exists"] and hints["points"] == []
    assert "hints file" in hints["error"] and "(999, 1) is outside the 80x60 scan" in hints["error"]


def test_the_preview_follows_the_points(client):
    points = [{"x": 30, "y": 20, "color": RED, "radius": 12}]
    response = write(client, "POST", "/api/preview", {"path": "box/a.png", "points": points, "max": 120})
    assert response.status_code == 200 and float(response.headers["x-hint-delta-e2000"]) < 5
    preview = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_COLOR)
    assert preview.shape == (20, 120, 3)
    b, g, r = preview[10, 15].astype(int)
    assert r > g + 20 and r > b + 20
    outside = write(client, "POST", "/api/preview", {"path": "box/a.png", "points": [{"x": 500, "y": 1, "color": RED}]})
    assert outside.status_code == 400 and "(500, 1) is outside the 240x40 scan" in outside.json()["error"]


def test_saving_writes_the_documented_format_and_the_next_run_redoes_only_that_scan(
    tmp_path, echo_model, hint_echo_model
):
    root = make_archive(tmp_path)
    first = run_pipeline(root, hint_echo_model)
    spec, model = echo_model
    studio = Studio(
        Archive(str(root / "scans"), str(root / "hints"), str(root / "out")), spec, model, str(tmp_path / "c")
    )
    client = TestClient(create_app(studio, KEY, PORT, served_hosts("127.0.0.1", PORT)), base_url=ADDRESS)
    points = [{"x": 10, "y": 10, "color": GREEN}, {"x": 70, "y": 50, "color": RED, "radius": 4}]
    saved = write(client, "PUT", "/api/hints", {"path": "box/b.png", "points": points})
    assert saved.status_code == 200, saved.text
    data = (root / "hints" / "box" / "b.json").read_bytes()
    assert data == hints_document(points) and json.loads(data) == {"points": points}
    assert data.startswith(b'{"points": [\n  {"x": 10, "y": 10, "color": "#2e8b57"},\n')
    assert len(parse_hints(data, 80, 60)) == 2
    assert not [path for path in (root / "hints").rglob("*") if path.name.startswith(".revivacolor-")]
    assert client.get("/api/palette", headers={"X-Studio-Key": KEY}).json()["colors"] == [GREEN, RED]

    rows = run_pipeline(root, hint_echo_model)
    assert rows["b.png"]["status"] == "ok" and rows["b.png"]["hints"] == 2
    assert rows["a.png"]["seconds"] == first["a.png"]["seconds"]  # done before: not redone


# The hostile cases: other sites, DNS rebinding, paths out of the folders, large bodies.


def test_another_host_name_is_refused_dns_rebinding(client):
    for path in ("/", "/api/scans", "/static/studio.js"):
        response = client.get(path, headers={"Host": f"evil.example:{PORT}"}, params={"key": KEY})
        assert response.status_code == 421 and "unexpected Host header" in response.json()["error"]
    response = write(client, "PUT", "/api/hints", {"path": "box/a.png", "points": []}, Host=f"evil.example:{PORT}")
    assert response.status_code == 421


def test_reading_needs_the_key_and_writing_needs_it_in_a_header_with_a_matching_origin(client, archive):
    client.cookies.clear()
    for path in (
        "/api/scans",
        "/api/thumbnail?path=box/a.png",
        "/api/image?path=box/a.png",
        "/api/hints?path=box/a.png",
    ):
        assert client.get(path).status_code == 403, path
    client.cookies.set(f"revivacolor_studio_{PORT}", KEY)
    body = {"path": "box/a.png", "points": [{"x": 1, "y": 1, "color": RED}]}
    cases = [
        {"X-Studio-Key": ""},  # the cookie alone, as a form posted from another site would carry it
        {"X-Studio-Key": "guessed"},
        {"Origin": "http://evil.example"},
        {"Origin": f"http://localhost:{PORT + 1}"},
        {"Origin": ""},
    ]
    for headers in cases:
        response = write(client, "PUT", "/api/hints", body, **headers)
        assert response.status_code == 403, headers
    assert not (archive / "hints" / "box" / "a.json").exists()
    for site in ("cross-site", "same-site"):  # an <img> on another site, or on another port of this machine
        response = client.get("/api/thumbnail?path=box/a.png", headers={"Sec-Fetch-Site": site})
        assert response.status_code == 403 and "other web pages" in response.json()["error"]
    assert client.get("/api/scans", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    form = write(
        client, "PUT", "/api/hints", b"path=box/a.png", **{"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert form.status_code == 415


@pytest.mark.parametrize(
    "path",
    [
        "../outside/secret.png",
        "..%2Foutside%2Fsecret.png",
        "%2e%2e/outside/secret.png",
        "box/../../outside/secret.png",
        "box/./a.png",
        "/etc/passwd",
        "link.png",  # a symlink leading out of --input
        "notes.txt",
        ".hidden/d.png",
        "",
    ],
)
def test_nothing_outside_the_listed_scans_is_served_or_written(client, archive, path):
    before = _files(archive)
    for endpoint in ("/api/thumbnail", "/api/image", "/api/scan", "/api/hints"):
        response = client.get(f"{endpoint}?path={path}")
        assert response.status_code == 404 and "no scan" in response.json()["error"], (endpoint, response.text)
    response = write(client, "PUT", "/api/hints", {"path": path.replace("%2F", "/"), "points": []})
    assert response.status_code == 404
    assert _files(archive) == before


def test_a_hints_folder_symlink_leading_out_is_neither_read_nor_written(client, archive, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.json").write_text(json.dumps({"points": []}))
    box = archive / "hints" / "box"
    moved = archive / "hints" / "box-real"
    box.rename(moved)
    box.symlink_to(elsewhere)
    try:
        read = client.get("/api/hints", params={"path": "box/a.png"})
        assert read.status_code == 404 and "leads outside --hints" in read.json()["error"]
        saved = write(client, "PUT", "/api/hints", {"path": "box/a.png", "points": [{"x": 1, "y": 1, "color": RED}]})
        assert saved.status_code == 404 and json.loads((elsewhere / "a.json").read_text()) == {"points": []}
    finally:
        box.unlink()
        moved.rename(box)


def test_large_bodies_and_too_many_points_are_refused(client, archive):
    huge = write(client, "POST", "/api/preview", b"x" * (3 << 20))
    assert huge.status_code == 413 and "larger than" in huge.json()["error"]

    def chunks():
        for _ in range(40):
            yield b"x" * (1 << 16)

    chunked = client.request(
        "POST",
        "/api/preview",
        content=chunks(),
        headers={"X-Studio-Key": KEY, "Origin": ADDRESS, "Content-Type": "application/json"},
    )
    assert chunked.status_code == 413
    points = [{"x": 1, "y": 1, "color": RED}] * 10_001
    response = write(client, "PUT", "/api/hints", {"path": "box/a.png", "points": points})
    assert response.status_code == 400 and "10001 points, more than the 10000" in response.json()["error"]
    assert not (archive / "hints" / "box" / "a.json").exists()


def test_every_error_is_a_message_never_a_traceback(client, monkeypatch):
    def broken(*args):
        raise RuntimeError("the model ran out of memory")

    monkeypatch.setattr(client.studio, "preview", broken)
    response = write(client, "POST", "/api/preview", {"path": "box/a.png", "points": []})
    assert response.status_code == 500 and "Traceback" not in response.text
    assert response.json()["error"] == "the studio could not do this: RuntimeError: the model ran out of memory"
    for path in ("/nothing", "/static/../app.py", "/static/%2e%2e/app.py"):
        response = client.get(path)
        assert response.status_code == 404 and "error" in response.json(), path
    bad_json = write(client, "POST", "/api/preview", b"{not json")
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["error"]


def test_the_command_line(tmp_path, capsys, tiny_model):
    (tmp_path / "scans").mkdir()
    arguments = parse_arguments(["--input", str(tmp_path / "scans"), "--hints", str(tmp_path / "hints")])
    assert (arguments.host, arguments.port, arguments.model) == ("127.0.0.1", 8765, "default")
    for argv, message in (
        (["--input", str(tmp_path / "none"), "--hints", "h"], "is not a folder"),
        (["--input", "gs://bucket/scans", "--hints", "h"], "the studio works on local folders"),
        (["--input", str(tmp_path / "scans")], "--hints"),
    ):
        with pytest.raises(SystemExit):
            parse_arguments(argv)
        assert message in capsys.readouterr().err
    assert served_hosts("127.0.0.1", 9000) == ["127.0.0.1:9000", "[::1]:9000", "localhost:9000"]
    assert served_hosts("192.168.1.5", 9000) == ["192.168.1.5:9000"]
    everywhere = served_hosts("0.0.0.0", 9000)  # every interface: this machine's own names, never 0.0.0.0
    assert {"127.0.0.1:9000", f"{socket.gethostname()}:9000"} <= set(everywhere) and "0.0.0.0:9000" not in everywhere
    code = command_main(
        ["studio", "--input", str(tmp_path / "scans"), "--hints", str(tmp_path / "h"), "--model", str(tiny_model)]
    )
    assert code == 1 and "needs a model that takes known colors" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "h")


def test_the_studio_benchmark_measures_the_gallery_and_the_preview(tmp_path, hint_echo_model):
    from benchmarks import studio as benchmark

    gallery = benchmark.measure_gallery(tmp_path / "gallery", 30)
    assert gallery["scans"] == 30 and gallery["time_to_first_page_s"] >= 0 and gallery["peak_rss_mb"] > 0
    photo = write_image(tmp_path / "photo.png", cv2.cvtColor(color_photo(30, 40), cv2.COLOR_BGR2GRAY))
    (result,) = benchmark.measure_preview(photo, str(hint_echo_model), threads=0, changes=2, sizes=(None,))
    assert result["scan"] == "40x30" and result["preview_median_s"] > 0
