"""A real webhook receiver on 127.0.0.1 that checks watcher's signature the
way the README tells receivers to, and keeps every request.

    with WebhookReceiver(secret="s3cret") as hook:
        channel = WebhookChannel(ChannelConfig("ops", "webhook", urls=(hook.url,), ...))
        ...
        assert hook.requests[0].verified

``status`` is the answer to give (204 by default); ``delay`` holds each
answer that many seconds (released at once when the receiver stops), to
play a receiver too slow for the sender's timeout; the first ``hang_ups``
requests get no answer at all (the connection is closed, as by a reset).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The README's receiver check: HMAC-SHA256 of "<timestamp>.<body>"."""
    timestamp = headers.get("X-Watcher-Timestamp", "")
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    given = headers.get("X-Watcher-Signature", "")
    return hmac.compare_digest(given, "sha256=" + expected.hexdigest())


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    verified: bool


class _Handler(BaseHTTPRequestHandler):
    server: WebhookReceiver
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        headers = dict(self.headers.items())
        hook = self.server
        with hook.lock:
            hook.requests.append(
                Received(self.path, headers, body, verify(hook.secret, headers, body))
            )
        if hook.hang_ups > 0:  # read the request, then close without an answer
            hook.hang_ups -= 1
            self.close_connection = True
            return
        if hook.delay:
            hook.release.wait(hook.delay)
        self.send_response(hook.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class WebhookReceiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, secret: str, *, status: int = 204, delay: float = 0.0, hang_ups: int = 0
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.secret = secret
        self.status = status
        self.delay = delay
        self.hang_ups = hang_ups
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/watcher"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()
        self._thread.join(5)
