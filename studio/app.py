"""The studio's web app (Starlette): the page, its static files, and a small JSON and JPEG API.

Scans are named by their relative path below --input as listed at start (`?path=box1/x.tif`);
anything else is a 404. Every error is a JSON `{"error": message}`, never a traceback.
"""

from __future__ import annotations

import hmac
import json
import logging
from html import escape
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pipeline.records import describe_error
from studio.archive import NotServed
from studio.guard import BodyTooLarge, Guard, cookie_name
from studio.images import crop, encode_jpeg, fitted
from studio.session import Studio

logger = logging.getLogger("revivacolor.studio")
STATIC = Path(__file__).parent / "static"
MAX_BODY = 2 << 20  # 10,000 points of a hints file take about 0.6 MB as JSON
MAX_SIDE = 4096  # the largest copy of a scan the browser gets, and the largest preview
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _integer(request: Request, name: str, default: int | None = None, low: int = 0, high: int = 1 << 30) -> int:
    text = request.query_params.get(name)
    if text is None and default is not None:
        return default
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise HTTPException(400, f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise HTTPException(400, f"{name} must be between {low} and {high}")
    return value


def _jpeg(pixels) -> Response:
    return Response(encode_jpeg(pixels), media_type="image/jpeg", headers=SECURITY_HEADERS)


def _json(value, status: int = 200) -> JSONResponse:
    return JSONResponse(value, status_code=status, headers=SECURITY_HEADERS)


async def _json_body(request: Request) -> dict:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise HTTPException(415, "send JSON (Content-Type: application/json)")
    try:
        body = json.loads(await request.body())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HTTPException(400, f"not valid JSON: {error}") from None
    if not isinstance(body, dict) or not isinstance(body.get("path"), str) or "points" not in body:
        raise HTTPException(400, 'expected {"path": "...", "points": [...]}')
    return body


def create_app(studio: Studio, key: str, port: int, hosts: list[str]) -> Guard:
    """The app behind its Guard: only `hosts` in the Host header, the key for everything but the page's files."""

    def page(request: Request) -> Response:
        cookie = request.cookies.get(cookie_name(port), "").encode()
        given = request.query_params.get("key", "").encode()
        if not (hmac.compare_digest(given, key.encode()) or hmac.compare_digest(cookie, key.encode())):
            raise HTTPException(403, "open the address that revivacolor studio printed: it holds the studio's key")
        html = (STATIC / "index.html").read_text().replace("{{key}}", escape(key))
        response = HTMLResponse(html, headers=SECURITY_HEADERS)
        response.set_cookie(cookie_name(port), key, httponly=True, samesite="strict", path="/")
        return response

    def scans(request: Request) -> Response:
        shown, order = request.query_params.get("show", "all"), request.query_params.get("sort", "name")
        offset, limit = _integer(request, "offset", 0), _integer(request, "limit", 60, 1, 500)
        return _json(studio.gallery(shown, order, offset, limit))

    def neighbour(request: Request) -> Response:
        shown, order = request.query_params.get("show", "all"), request.query_params.get("sort", "name")
        step = _integer(request, "step", 1, -1, 1)
        return _json({"relative": studio.neighbour(request.query_params.get("path", ""), shown, order, step)})

    def thumbnail(request: Request) -> Response:
        scan = studio.archive.scan(request.query_params.get("path"))
        path = scan.path if request.query_params.get("kind", "scan") == "scan" else studio.archive.result_path(scan)
        if path is None:
            raise HTTPException(404, f"{scan.relative} has no colorized copy in --output")
        return Response(studio.thumbnails.get(path), media_type="image/jpeg", headers=SECURITY_HEADERS)

    def scan(request: Request) -> Response:
        return _json(studio.describe(request.query_params.get("path")))

    def image(request: Request) -> Response:
        """The whole scan fitted into `max` pixels."""
        side = _integer(request, "max", 1600, 16, MAX_SIDE)
        return _jpeg(fitted(studio.decoded(request.query_params.get("path")).pixels, side))

    def region(request: Request) -> Response:
        """A region of the scan (x, y, w, h in scan pixels) at the size it is shown (width, height)."""
        pixels = studio.decoded(request.query_params.get("path")).pixels
        x, y = _integer(request, "x"), _integer(request, "y")
        w, h = _integer(request, "w", low=1), _integer(request, "h", low=1)
        width, height = (
            _integer(request, "width", low=1, high=MAX_SIDE),
            _integer(request, "height", low=1, high=MAX_SIDE),
        )
        return _jpeg(crop(pixels, x, y, w, h, width, height))

    def hints(request: Request) -> Response:
        return _json(studio.hints(request.query_params.get("path")))

    async def preview(request: Request) -> Response:
        body = await _json_body(request)
        side = body.get("max", 1024)
        if not isinstance(side, int) or not 16 <= side <= MAX_SIDE:
            raise HTTPException(400, f"max must be a whole number from 16 to {MAX_SIDE}")
        result = await run_in_threadpool(studio.preview, body["path"], body["points"], side)
        headers = dict(SECURITY_HEADERS, **{"X-Colorfulness": f"{result.colorfulness:.3f}"})
        if result.hint_delta_e2000 is not None:
            headers["X-Hint-Delta-E2000"] = f"{result.hint_delta_e2000:.3f}"
        return Response(encode_jpeg(result.pixels), media_type="image/jpeg", headers=headers)

    async def save(request: Request) -> Response:
        body = await _json_body(request)
        return _json(await run_in_threadpool(studio.save, body["path"], body["points"]))

    def palette(request: Request) -> Response:
        return _json({"colors": studio.palette()})

    async def refused(request: Request, error: Exception) -> Response:
        status = getattr(error, "status_code", 400)
        return _json({"error": getattr(error, "detail", None) or str(error)}, status)

    async def not_served(request: Request, error: NotServed) -> Response:
        return _json({"error": str(error)}, 404)

    async def too_large(request: Request, error: BodyTooLarge) -> Response:
        return _json({"error": str(error)}, 413)

    async def bad_value(request: Request, error: ValueError) -> Response:
        return _json({"error": describe_error(error)}, 400)

    async def failed(request: Request, error: Exception) -> Response:
        logger.error("studio: %s %s failed: %s", request.method, request.url.path, describe_error(error))
        return _json({"error": f"the studio could not do this: {describe_error(error)}"}, 500)

    routes = [
        Route("/", page),
        Route("/api/scans", scans),
        Route("/api/neighbour", neighbour),
        Route("/api/thumbnail", thumbnail),
        Route("/api/scan", scan),
        Route("/api/image", image),
        Route("/api/region", region),
        Route("/api/hints", hints, methods=["GET"]),
        Route("/api/hints", save, methods=["PUT"]),
        Route("/api/preview", preview, methods=["POST"]),
        Route("/api/palette", palette),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            HTTPException: refused,
            NotServed: not_served,
            BodyTooLarge: too_large,
            ValueError: bad_value,
            Exception: failed,
        },
    )
    return Guard(app, hosts, key, port, MAX_BODY, open_paths=("/",))
