"""The page of ``tritonclf ui`` and its JSON API, on the standard library's HTTP server.

    GET  /                                  the page (client/ui/: index.html, ui.js, ui.css)
    GET  /api/models                        {"triton": URL, "models": [{"name", "versions", "labels",
                                              "max_image_bytes"}]}
    POST /api/classify?model=NAME&top_k=K   the image file's bytes -> {"model", "predictions":
                                              [{"label", "index", "score"}], "triton_ms"}

Every failure is ``{"error": one line, "status": gRPC status name}`` with an HTTP error status.
Triton sends no CORS headers, so the page calls this server, its own origin, which forwards
to Triton. A body above the model's byte limit is refused from its Content-Length, before
it is read. Bound to a loopback address, the server answers only requests addressed to
localhost: another site cannot reach it through a DNS name of its own (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from tritonclf.client.forwarding import INVALID_ARGUMENT, NOT_FOUND, Forwarder, Refused, parse_top_k
from tritonclf.client.status import one_line

STATIC_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/ui.js": ("ui.js", "text/javascript; charset=utf-8"),
    "/ui.css": ("ui.css", "text/css; charset=utf-8"),
}
# Everything the page loads comes from here; images are shown from blob: URLs of the chosen files.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# An error answered before the body is read still reads a body up to this size (and drops it):
# a browser whose upload is cut off shows a network error instead of the answer.
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
READ_CHUNK_BYTES = 1024 * 1024


def load_page() -> dict[str, tuple[bytes, str]]:
    """The page's files (package data) by URL path."""
    folder = resources.files("tritonclf.client") / "ui"
    return {path: (folder.joinpath(name).read_bytes(), kind) for path, (name, kind) in STATIC_FILES.items()}


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str | None) -> str:
    """The name in a Host header, without its port: ``[::1]:8080`` -> ``::1``."""
    text = (header or "").strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    return text.rpartition(":")[0] if text.count(":") == 1 else text


class UiServer(ThreadingHTTPServer):
    """One page, one Forwarder; a thread per connection."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], forwarder: Forwarder):
        self.forwarder = forwarder
        self.page = load_page()
        self.local_only = is_loopback(address[0])
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, UiRequestHandler)

    @property
    def url(self) -> str:
        """The page's address."""
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{port}/"


class UiRequestHandler(BaseHTTPRequestHandler):
    """Routes; every answer, errors included, is the page, a page file or one JSON object."""

    server: UiServer
    server_version = "tritonclf-ui"
    protocol_version = "HTTP/1.1"  # keep-alive, and Expect: 100-continue answered before the body
    timeout = 60  # seconds a connection may stall while sending its request

    def do_GET(self) -> None:
        """The page, its files, the model list."""
        self._answer(self._get)

    def do_POST(self) -> None:
        """A classification."""
        self._answer(self._post)

    def handle_expect_100(self) -> bool:
        """Refuse an upload (``Expect: 100-continue``, as curl sends) before the client sends its body."""
        if self.command != "POST":
            return super().handle_expect_100()
        self._body_read = True  # either way: refused before the body, or the body follows for do_POST
        try:
            self._check_host()
            self._admit(urlsplit(self.path))
        except Refused as err:
            self.close_connection = True
            self._send_json(err.http_status, err.to_json())
            return False
        except Exception:  # do_POST runs the same checks again and answers
            pass
        return super().handle_expect_100()

    def _answer(self, route) -> None:
        self._body_read = self.command != "POST"
        try:
            self._check_host()
            route(urlsplit(self.path))
        except Refused as err:
            self._finish_body(err)
            self._send_json(err.http_status, err.to_json())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as err:  # the page shows one line; the terminal gets the traceback
            traceback.print_exc(file=sys.stderr)
            self._finish_body()
            self._send_json(500, {"error": f"tritonclf ui failed: {one_line(err)}", "status": "INTERNAL"})

    def _check_host(self) -> None:
        if self.server.local_only and host_name(self.headers.get("Host")) not in LOCAL_NAMES:
            raise Refused(
                403,
                "this page answers only at localhost or 127.0.0.1 (tritonclf ui --host to change)",
                "PERMISSION_DENIED",
            )

    def _get(self, url) -> None:
        if url.path == "/api/models":
            forwarder = self.server.forwarder
            models = forwarder.models()
            self._send_json(200, {"triton": forwarder.url, "models": [m.to_json() for m in models]})
        elif url.path in self.server.page:
            body, kind = self.server.page[url.path]
            self._send(200, body, kind, cache="no-cache")
        else:
            raise Refused(404, f"no such page: {url.path}", NOT_FOUND)

    def _admit(self, url) -> tuple[str, int, int]:
        """(model, top_k, body size) of an acceptable classification request, from its line and headers."""
        if url.path != "/api/classify":
            raise Refused(404, f"no such API: POST {url.path}", NOT_FOUND)
        query = parse_qs(url.query)
        name = (query.get("model") or [""])[0]
        if not name:
            raise Refused(400, "say which model: /api/classify?model=NAME", INVALID_ARGUMENT)
        top_k = parse_top_k((query.get("top_k") or [None])[0])
        size = self._content_length()
        self.server.forwarder.admit(name, size)
        return name, top_k, size

    def _post(self, url) -> None:
        name, top_k, size = self._admit(url)
        image = self._read_body(size)
        self._send_json(200, self.server.forwarder.classify(name, image, top_k))

    def _content_length(self) -> int:
        if self.headers.get("Transfer-Encoding"):
            raise Refused(411, "send the image with a Content-Length, not in chunks", INVALID_ARGUMENT)
        text = self.headers.get("Content-Length")
        if text is None:
            raise Refused(411, "send the image with a Content-Length", INVALID_ARGUMENT)
        if not text.strip().isdigit():
            raise Refused(400, f"Content-Length {text!r} is not a byte count", INVALID_ARGUMENT)
        return int(text)

    def _read_body(self, size: int) -> bytes:
        self._body_read = True
        chunks, left = [], size
        while left:
            chunk = self.rfile.read(min(left, READ_CHUNK_BYTES))
            if not chunk:
                self.close_connection = True
                raise Refused(400, f"the upload stopped after {size - left} of {size} bytes", INVALID_ARGUMENT)
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _finish_body(self, refused: Refused | None = None) -> None:
        """Before an error answer: read and drop an unread body the page could have sent, and close.

        A body above the model's limit is never read (413), nor one above ``DRAIN_LIMIT_BYTES``.
        """
        if self._body_read:
            return
        self._body_read = True
        self.close_connection = True
        text = self.headers.get("Content-Length") or "0"
        size = int(text) if text.strip().isdigit() else -1
        if refused is not None and refused.http_status == 413:
            return
        if 0 <= size <= DRAIN_LIMIT_BYTES and not self.headers.get("Transfer-Encoding"):
            while size > 0:
                chunk = self.rfile.read(min(size, READ_CHUNK_BYTES))
                if not chunk:
                    break
                size -= len(chunk)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own errors (a malformed request, an unknown method) as the page's JSON."""
        self.close_connection = True
        text = message or self.responses.get(code, ("error",))[0]
        self._send_json(code, {"error": text, "status": INVALID_ARGUMENT})

    def _send_json(self, status: int, body: dict) -> None:
        self._send(status, json.dumps(body).encode(), "application/json", cache="no-store")

    def _send(self, status: int, body: bytes, kind: str, *, cache: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        for header, value in SECURITY_HEADERS.items():
            self.send_header(header, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        """One line per request on stderr, without the date (the terminal has it)."""
        sys.stderr.write(f"{self.address_string()} {format % args}\n")
