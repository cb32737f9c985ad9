"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives.

    with LocalSMTP() as smtp:
        url = f"mailto://127.0.0.1:{smtp.port}?from=watcher@example.org&to=desk@example.org"
        ...  # send
        mail = smtp.messages[0]  # an email.message.EmailMessage

Plain SMTP, no TLS, no authentication, on an ephemeral port: the server is
started and answering before ``__enter__`` returns, and a sender's
``sendmail`` has been answered (so the message is stored) when it returns.
"""

from __future__ import annotations

import email
import email.policy
import threading
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class _Controller(Controller):
    """aiosmtpd's controller, bound to port 0: the port the OS chose is read
    back before the controller's own readiness check connects to it."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class LocalSMTP:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()
        self._controller = _Controller(self, hostname="127.0.0.1", port=0)

    @property
    def port(self) -> int:
        return int(self._controller.port)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append(message)
            self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 OK"

    def __enter__(self) -> LocalSMTP:
        self._controller.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._controller.stop()


def text_of(message: EmailMessage) -> str:
    """The plain-text body a reader sees (mail's CRLF line ends read as LF)."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, "no text/plain part"
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")
