"""The pipeline on gs:// behind a proxy that makes storage fail: transient faults retried, permanent ones error rows."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import pipeline
from pipeline.records import read_metadata
from pipeline.storage import EMULATOR_HOST_VARIABLE
from tests.conftest import color_photo, write_image

SCANS = {"a.png": (20, 28), "sub/b.jpg": (24, 24), "c.png": (16, 30)}  # relative path: (height, width)
LOCKED = "locked.png"
DROP = 0  # a "status" that makes the proxy close the connection without answering
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"}

FaultRule = Callable[[str, int], int | None]  # (target, attempt from 1) -> status to answer, DROP, or None


def _target(method: str, path: str, body: bytes) -> str | None:
    """'download NAME' for a media download, 'upload NAME' for the start of an upload, None for other requests."""
    url = urllib.parse.urlsplit(path)
    query = urllib.parse.parse_qs(url.query)
    if method == "POST" and query.get("uploadType") == ["resumable"]:
        return "upload " + json.loads(body or b"{}").get("name", "?")
    if method == "GET" and query.get("alt") == ["media"]:
        return "download " + urllib.parse.unquote(url.path.split("/o/", 1)[1])
    return None


class _FaultyProxy(ThreadingHTTPServer):
    """Forwards every request to the emulator, except those its rule turns into a fault."""

    daemon_threads = True

    def __init__(self, upstream: str, rule: FaultRule):
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream, self.rule = upstream, rule
        self.attempts: Counter[str] = Counter()
        self.faults: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def handle_error(self, request, client_address) -> None:
        """Quiet about clients that hang up: dropping connections is what this proxy is for."""

    def fault_for(self, target: str) -> int | None:
        with self._lock:
            self.attempts[target] += 1
            fault = self.rule(target, self.attempts[target])
            if fault is not None:
                self.faults.append((target, fault))
            return fault


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _FaultyProxy

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        target = _target(self.command, self.path, body)
        fault = self.server.fault_for(target) if target else None
        if fault == DROP:
            self.close_connection = True
            return
        if fault is not None:
            payload = json.dumps({"error": {"code": fault, "message": f"injected fault for {target}"}}).encode()
            self._answer(fault, [("Content-Type", "application/json")], payload)
            return
        connection = http.client.HTTPConnection(self.server.upstream, timeout=10)
        try:  # the Host header goes along: the emulator builds resumable-upload URLs from it
            connection.request(self.command, self.path, body, dict(self.headers.items()))
            response = connection.getresponse()
            headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            # objects uploaded straight to the emulator carry its address in their download links
            payload = response.read().replace(self.server.upstream.encode(), self.headers["Host"].encode())
            self._answer(response.status, headers, payload)
        finally:
            connection.close()

    def _answer(self, status: int, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        """Quiet: the test reads the proxy's fault list instead."""


@pytest.fixture
def start_proxy(bucket, monkeypatch) -> Iterator[Callable[[FaultRule], _FaultyProxy]]:
    """Start a fault-injecting proxy to the emulator and point STORAGE_EMULATOR_HOST at it; stopped afterwards."""
    upstream = urllib.parse.urlsplit(os.environ[EMULATOR_HOST_VARIABLE]).netloc
    started: list[tuple[_FaultyProxy, threading.Thread]] = []

    def start(rule: FaultRule) -> _FaultyProxy:
        proxy = _FaultyProxy(upstream, rule)
        thread = threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        thread.start()
        started.append((proxy, thread))
        monkeypatch.setenv(EMULATOR_HOST_VARIABLE, f"http://127.0.0.1:{proxy.server_address[1]}")
        return proxy

    yield start
    for proxy, thread in started:
        proxy.shutdown()
        proxy.server_close()
        thread.join(timeout=5)


@pytest.fixture
def job(bucket, tiny_model, tmp_path) -> list[str]:
    """Scans under gs://BUCKET/scans/ and the tiny model, uploaded straight to the emulator; the pipeline's argv."""
    for index, (relative, (height, width)) in enumerate(SCANS.items()):
        path = write_image(tmp_path / relative, color_photo(height, width, seed=index))
        bucket.blob(f"scans/{relative}").upload_from_filename(str(path))
    for path in (tiny_model, tiny_model.with_suffix(".json")):
        bucket.blob(f"models/{path.name}").upload_from_filename(str(path))
    root = f"gs://{bucket.name}"
    return ["--input", f"{root}/scans", "--output", f"{root}/out", "--model", f"{root}/models/tiny.keras"]


def transient(target: str, attempt: int) -> int | None:
    """The first attempt of every download and upload fails: 503, 500 for c.png, a dropped connection under sub/."""
    if attempt > 1:
        return None
    if "sub/" in target:
        return DROP
    return 500 if "c.png" in target else 503


def _run(bucket, argv: list[str]) -> dict[str, dict]:
    """Run the pipeline in-process; its rows by relative source path."""
    started = time.perf_counter()
    result = pipeline.run(argv)
    print(f"pipeline run through the faulty proxy: {time.perf_counter() - started:.1f} s")
    assert result.state == "DONE"
    table = read_metadata(f"gs://{bucket.name}/out").to_pylist()
    return {row["source_path"].split("/scans/", 1)[1]: row for row in table}


def _check_ok(bucket, rows: dict[str, dict]) -> None:
    for relative in SCANS:
        assert rows[relative]["status"] == "ok", rows[relative]
        assert rows[relative]["output_path"] == f"gs://{bucket.name}/out/{relative}"
    written = {blob.name for blob in bucket.list_blobs(prefix="out/")}
    assert {f"out/{relative}" for relative in SCANS} | {"out/report.html"} <= written
    assert not [name for name in written if name.endswith(".tmp")]


def test_transient_faults_are_retried(job, bucket, start_proxy):
    proxy = start_proxy(transient)
    rows = _run(bucket, job)
    assert sorted(rows) == sorted(SCANS)
    _check_ok(bucket, rows)
    faulted = {target for target, _ in proxy.faults}
    assert {f"download scans/{relative}" for relative in SCANS} <= faulted
    for relative in SCANS:  # every output image's upload failed once
        assert f"upload out/{relative}" in faulted, relative
    assert {fault for _, fault in proxy.faults} == {DROP, 500, 503}


def test_a_permanently_unreadable_scan_is_an_error_row(job, bucket, tmp_path, start_proxy):
    write_image(tmp_path / LOCKED, color_photo(16, 16))
    bucket.blob(f"scans/{LOCKED}").upload_from_filename(str(tmp_path / LOCKED))
    locked = f"download scans/{LOCKED}"
    proxy = start_proxy(lambda target, attempt: 403 if target == locked else transient(target, attempt))
    rows = _run(bucket, job)
    assert sorted(rows) == sorted([*SCANS, LOCKED])
    _check_ok(bucket, rows)
    row = rows[LOCKED]
    assert row["status"] == "error" and row["output_path"] is None
    assert row["error"].startswith("Forbidden: 403") and f"injected fault for {locked}" in row["error"], row["error"]
    assert proxy.attempts[locked] == 2, "one read by the pipeline, one by the report's gallery: neither retried"
