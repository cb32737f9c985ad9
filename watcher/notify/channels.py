"""How a message travels: Apprise URLs (email, Telegram, Slack, Matrix,
Discord, ntfy, …), a signed webhook, or an exec hook.

Every channel's ``send`` is synchronous, bounded by the channel's timeout,
and either returns (delivered) or raises :class:`DeliveryError` with a
one-line reason. Retrying is the outbox's job, not the channel's: a channel
tries once (a webhook once more after a connection reset).

Apprise, httpx and subprocess errors are translated here, where they enter.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import inspect
import json
import logging
import os
import re
import signal
import subprocess
import time
from typing import Any, Protocol

import apprise
import httpx

from watcher.config import REPORTS_CHANNEL, ChannelConfig, Config
from watcher.configfile import channel_error
from watcher.errors import DeliveryError, WatcherError
from watcher.notify.message import Message, sample_message, truncate
from watcher.safetext import one_line
from watcher.settings import Settings

log = logging.getLogger(__name__)

#: Body limit of an Apprise channel whose services state none.
DEFAULT_LIMIT = 4000
_DEFAULT_TITLE_LIMIT = 250
#: Longest failure reason kept (a receiver's or a hook's words).
_REASON_MAX = 200
#: Apprise 2 bounds a whole notify() call; older versions only each socket.
_APPRISE_CALL_TIMEOUT = "timeout" in inspect.signature(apprise.Apprise.notify).parameters


class Channel(Protocol):
    """Where messages go. ``limit`` is the longest body text it sends, in
    characters (0: no limit; webhooks and exec hooks get the whole record)."""

    name: str
    type: str
    limit: int
    #: The longest one send may take (the outbox sizes its leases by it).
    timeout_s: float

    def send(self, message: Message) -> None:
        """Deliver ``message`` or raise DeliveryError; never longer than the timeout."""


def _reason(text: str) -> str:
    return truncate(one_line(text).strip(), _REASON_MAX) or "no reason given"


# -- Apprise -------------------------------------------------------------------------


class AppriseChannel:
    """One message to every Apprise URL of the channel. The body is plain text
    cut to the smallest limit of the services, with the idempotency key as a
    footer line (most services have no header to carry it)."""

    type = "apprise"

    def __init__(self, config: ChannelConfig) -> None:
        self.name = config.name
        self.timeout_s = config.timeout_s
        self._apprise = apprise.Apprise()
        if not config.urls:
            raise WatcherError(f"channel {config.name!r}: no Apprise URL configured")
        for url in config.urls:
            if not self._apprise.add(url):
                # The URL may hold a token or password: name its scheme only.
                scheme = url.partition("://")[0] or url[:12]
                raise WatcherError(
                    f"channel {config.name!r}: a {scheme}:// URL that Apprise cannot use"
                )
        services = list(self._apprise)
        for service in services:
            service.socket_connect_timeout = config.timeout_s
            service.socket_read_timeout = config.timeout_s
        self.limit = config.limit or _smallest([s.body_maxlen for s in services], DEFAULT_LIMIT)
        self.title_limit = _smallest([s.title_maxlen for s in services], _DEFAULT_TITLE_LIMIT)

    def send(self, message: Message) -> None:
        footer = f"\n\nid: {message.key}"
        text = defuse_mentions(message.body.rstrip("\n"))
        body = truncate(text, max(0, self.limit - len(footer))) + footer
        extra: dict[str, Any] = {"timeout": self.timeout_s} if _APPRISE_CALL_TIMEOUT else {}
        result = self._apprise.notify(
            body=body,
            title=truncate(defuse_mentions(message.title), self.title_limit),
            body_format=apprise.NotifyFormat.TEXT,
            **extra,
        )
        if not result:
            raise DeliveryError(self.name, _apprise_reason(result))


_MENTION = re.compile(r"@(everyone|here|channel)\b", re.IGNORECASE)
_SLACK_MENTION = re.compile(r"<([!@#])")


def defuse_mentions(text: str) -> str:
    """A headline reading "@everyone" must not ping a whole Discord or Slack
    channel: a zero-width space after the ``@`` (and inside Slack's ``<!here>``,
    ``<@U123>``) keeps the text readable and inert."""
    return _SLACK_MENTION.sub("<\u200b\\1", _MENTION.sub("@\u200b\\1", text))


def _smallest(limits: list[int], default: int) -> int:
    positive = [n for n in limits if n > 0]
    return min(positive) if positive else default


def _apprise_reason(result: Any) -> str:
    """The last warning Apprise logged for this call. Apprise 2 keeps each
    call's log entries on its result, so concurrent sends never mix reasons
    and the daemon's log level does not hide them."""
    logs = getattr(result, "logs", None)
    messages = [entry.message for entry in logs()] if callable(logs) else []
    return _reason(messages[-1]) if messages else "Apprise reported a failure"


# -- webhook ---------------------------------------------------------------------------


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``<timestamp>.<body>`` keyed with the secret."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def payload_bytes(message: Message) -> bytes:
    """The JSON body webhooks and exec hooks receive: UTF-8, compact, sorted keys."""
    text = json.dumps(message.payload(), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return text.encode("utf-8")


class WebhookChannel:
    """A POST of the JSON payload, signed with the shared secret. Redirects are
    not followed, and the request does not go through the fetch guard: the
    operator chose this URL, and it is often on the local network."""

    type = "webhook"

    def __init__(self, config: ChannelConfig, *, user_agent: str) -> None:
        if len(config.urls) != 1:
            raise WatcherError(f"channel {config.name!r}: a webhook needs exactly one URL")
        if not config.secret:
            raise WatcherError(f"channel {config.name!r}: a webhook needs a secret to sign with")
        self.name = config.name
        self.url = config.urls[0]
        self.secret: str = config.secret
        self.timeout_s = config.timeout_s
        self.user_agent = user_agent
        self.limit = config.limit or 0
        # One client per channel, shared by the sender threads: building one
        # (its TLS context) cost more than the POST itself, ~20 messages/s.
        self._client = httpx.Client(timeout=self.timeout_s, follow_redirects=False)

    def send(self, message: Message) -> None:
        body = payload_bytes(message)
        headers = self._headers(message.key, body)
        for attempt in (1, 2):
            try:
                status, phrase = self._post(body, headers)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                if attempt == 1:  # a connection reset: once more, at once
                    log.info("webhook %s: %s; trying once more", self.name, exc)
                    continue
                raise DeliveryError(self.name, _reason(f"{type(exc).__name__}: {exc}")) from exc
            except httpx.TimeoutException as exc:
                raise DeliveryError(self.name, f"no answer within {self.timeout_s:g}s") from exc
            except httpx.HTTPError as exc:
                raise DeliveryError(self.name, _reason(f"{type(exc).__name__}: {exc}")) from exc
            if not 200 <= status < 300:
                hint = " (redirects are not followed)" if 300 <= status < 400 else ""
                raise DeliveryError(self.name, _reason(f"HTTP {status} {phrase}{hint}"))
            return

    def _headers(self, key: str, body: bytes) -> dict[str, str]:
        timestamp = str(int(time.time()))
        return {
            "Content-Type": "application/json",
            "User-Agent": self.user_agent,
            "Idempotency-Key": key,
            "X-Watcher-Timestamp": timestamp,
            "X-Watcher-Signature": signature(self.secret, timestamp, body),
        }

    def _post(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """The answer's status and reason phrase; its body is never read, so a
        receiver that trickles it cannot hold the sender."""
        with self._client.stream("POST", self.url, content=body, headers=headers) as response:
            return response.status_code, response.reason_phrase


# -- exec hook -------------------------------------------------------------------------


class ExecChannel:
    """Runs ``command`` (no shell) with the JSON payload on stdin and
    ``WATCHER_IDEMPOTENCY_KEY`` in its environment; exit status 0 is delivered.
    The command runs in its own process group, so on timeout everything it
    started is killed too (a leftover child would hold the pipes open)."""

    type = "exec"

    def __init__(self, config: ChannelConfig) -> None:
        if not config.command:
            raise WatcherError(f"channel {config.name!r}: no command configured")
        self.name = config.name
        self.command = config.command
        self.timeout_s = config.timeout_s
        self.limit = config.limit or 0

    def send(self, message: Message) -> None:
        env = {**os.environ, "WATCHER_IDEMPOTENCY_KEY": message.key}
        try:
            proc = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise DeliveryError(
                self.name, _reason(f"cannot run {self.command[0]}: {exc.strerror or exc}")
            ) from exc
        with proc:
            try:
                _, stderr = proc.communicate(payload_bytes(message), timeout=self.timeout_s)
            except subprocess.TimeoutExpired as exc:
                _kill_group(proc)
                raise DeliveryError(
                    self.name, f"{self.command[0]} took longer than {self.timeout_s:g}s"
                ) from exc
        if proc.returncode != 0:
            raise DeliveryError(self.name, _exit_reason(proc.returncode, stderr))


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the hook and its process group. A child that left the group
    (setsid) may still hold stderr open: read what is there for a moment, not
    until it exits, so the send ends near its timeout whatever the hook does."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.communicate(timeout=1)


def _exit_reason(status: int, stderr: bytes) -> str:
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    what = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
    return _reason(f"{what}: {lines[-1]}" if lines else what)


# -- building channels ---------------------------------------------------------------


def build_channel(config: ChannelConfig, settings: Settings) -> Channel:
    """The channel a ``[channels.NAME]`` table describes; WatcherError if unusable."""
    if config.type == "apprise":
        return AppriseChannel(config)
    if config.type == "webhook":
        return WebhookChannel(config, user_agent=settings.user_agent)
    if config.type == "exec":
        return ExecChannel(config)
    raise WatcherError(f"channel {config.name!r}: unknown type {config.type!r}")


def build_channels(config: Config, settings: Settings) -> dict[str, Channel]:
    """Every configured channel by name; a channel Apprise cannot use is a
    ConfigError naming the file and line (what ``watcher config check`` and
    the daemon's start print)."""
    built: dict[str, Channel] = {}
    for name, channel in config.channels.items():
        try:
            built[name] = build_channel(channel, settings)
        except WatcherError as exc:
            reason = str(exc).removeprefix(f"channel {name!r}: ")
            raise channel_error(config, name, reason) from exc
    return built


def send_sample(settings: Settings, name: str) -> Channel:
    """``watcher notify test NAME``: send the sample message to one channel
    (built alone, so another channel's mistake does not get in the way)."""
    channels = settings.config.channels
    if name == REPORTS_CHANNEL:
        raise WatcherError("'reports' is the built-in channel that writes report files; "
                           "test a [channels.NAME] of the config file")  # fmt: skip
    if name not in channels:
        known = ", ".join(sorted(channels)) or "none (add a [channels.NAME] table to watcher.toml)"
        raise WatcherError(f"no channel named {name!r}; configured: {known}")
    channel = build_channel(channels[name], settings)
    channel.send(sample_message(settings, now_ms=round(time.time() * 1000)))
    return channel
