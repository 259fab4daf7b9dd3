"""What a local server needs so that no other web page can use it (ASGI middleware).

- Every request must name this server in its Host header (127.0.0.1:PORT, localhost:PORT, or the
  --host given): a page from elsewhere whose name is made to point at 127.0.0.1 (DNS rebinding)
  sends its own name and is refused.
- Everything but the page itself needs the studio's key, made at start: the page is opened with
  it (the address printed at start), gets it embedded and as a SameSite=Strict cookie, which a
  browser sends only with requests from the studio's own pages; other sites cannot read it.
- Anything that writes (every request but GET and HEAD) needs the key in a header, which only the
  page's own script sets, and an Origin header naming this server.
- A request a browser marks as coming from another page (Sec-Fetch-Site cross-site or same-site,
  which includes other ports of this machine) is refused, even an image's.
- Request bodies above a limit are refused (413) while they are read.
"""

from __future__ import annotations

import hmac
import json
from http.cookies import SimpleCookie

READING_METHODS = (b"GET", b"HEAD")
KEY_HEADER = b"x-studio-key"


def cookie_name(port: int) -> str:
    """The key's cookie, one per port: cookies are shared by every port of a host."""
    return f"revivacolor_studio_{port}"


def _refuse(status: int, message: str):
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    return {"type": "http.response.start", "status": status, "headers": headers}, {
        "type": "http.response.body",
        "body": body,
    }


class BodyTooLarge(Exception):
    """A request body beyond the limit."""


class Guard:
    """Refuses requests with another Host, without the key, writes without a matching Origin, and large bodies.

    `open_paths` (the page itself, its static files) need only the right Host: the page checks the
    key given in its address and the script and style hold nothing of the archive.
    """

    def __init__(self, app, hosts: list[str], key: str, port: int, max_body: int, open_paths: tuple[str, ...]):
        self.app, self.key, self.max_body, self.open_paths = app, key.encode(), max_body, open_paths
        self.hosts = {host.encode() for host in hosts}
        self.origins = {b"http://" + host for host in self.hosts}
        self.cookie = cookie_name(port)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refusal = self._check(scope)
        if refusal:
            for message in _refuse(*refusal):
                await send(message)
            return None
        return await self.app(scope, self._limited(receive), send)

    def _check(self, scope) -> tuple[int, str] | None:
        headers = dict(scope["headers"])
        if headers.get(b"host") not in self.hosts:
            shown = ", ".join(sorted(host.decode() for host in self.hosts))
            return 421, f"unexpected Host header: this studio answers only to {shown}"
        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > self.max_body:
            return 413, f"request body larger than {self.max_body} bytes"
        if scope["path"] in self.open_paths or scope["path"].startswith("/static/"):
            return None
        if headers.get(b"sec-fetch-site") in (b"cross-site", b"same-site"):
            return 403, "requests from other web pages are refused"
        header_key = headers.get(KEY_HEADER, b"")
        if scope["method"].encode() not in READING_METHODS:
            if not hmac.compare_digest(header_key, self.key):
                return 403, "this request needs the studio's key (open the address revivacolor studio printed)"
            if headers.get(b"origin") not in self.origins:
                return 403, "writes are accepted only from the studio's own page (Origin)"
            return None
        if hmac.compare_digest(header_key, self.key) or hmac.compare_digest(self._cookie_key(headers), self.key):
            return None
        return 403, "this request needs the studio's key (open the address revivacolor studio printed)"

    def _cookie_key(self, headers: dict) -> bytes:
        cookies = SimpleCookie()
        try:
            cookies.load(headers.get(b"cookie", b"").decode("latin-1"))
        except Exception:  # noqa: BLE001 - a cookie header that cannot be parsed holds no key
            return b""
        morsel = cookies.get(self.cookie)
        return morsel.value.encode() if morsel else b""

    def _limited(self, receive):
        """`receive` that stops a body (also one sent in chunks, without a length) past the limit."""
        received = 0

        async def limited():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise BodyTooLarge(f"request body larger than {self.max_body} bytes")
            return message

        return limited
