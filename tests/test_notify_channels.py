"""Channels against real local receivers: an SMTP server taking Apprise
mailto:// messages, a webhook receiver checking the signature, an exec hook;
and ``watcher notify test``."""

from __future__ import annotations

import json
import socket
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.support.smtp import LocalSMTP, text_of
from tests.support.webhook import WebhookReceiver, verify
from tests.test_notify_message import NEW_TITLE, OLD_TITLE, URL, change_record
from watcher.cli import main
from watcher.config import ChannelConfig, Config
from watcher.errors import DeliveryError, WatcherError
from watcher.notify.channels import (
    AppriseChannel,
    ExecChannel,
    WebhookChannel,
    build_channels,
    payload_bytes,
)
from watcher.notify.message import Message, item_for, message_for
from watcher.settings import Settings

SECRET = "correct horse battery staple"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({}, home=tmp_path, public_url="https://watch.example.org/")


@pytest.fixture
def message(settings: Settings) -> Message:
    return message_for([item_for(change_record(), 2, settings)])


def mailto(smtp: LocalSMTP) -> str:
    """Plain SMTP on a custom port, no TLS, no login: ``mailto://`` (not
    ``mailtos://``) is Apprise's insecure mode."""
    return f"mailto://127.0.0.1:{smtp.port}?from=watcher@example.org&to=desk@example.org"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- Apprise: email --------------------------------------------------------------------


def test_email_reaches_the_desk_with_title_summary_and_links(message: Message) -> None:
    with LocalSMTP() as smtp:
        AppriseChannel(ChannelConfig("desk", "apprise", urls=(mailto(smtp),))).send(message)

    [mail] = smtp.messages
    assert smtp.envelopes == [("watcher@example.org", ["desk@example.org"])]
    assert mail["Subject"] == f"[watcher] title changed; 1 paragraph edited: {NEW_TITLE}"
    body = text_of(mail)
    for expected in (
        "title changed; 1 paragraph edited",
        NEW_TITLE,
        URL,
        "Report: https://watch.example.org/articles/7.html#change-42",
        f"- {OLD_TITLE}",
        f"+ {NEW_TITLE}",
        "id: watcher-change-42",
    ):
        assert expected in body


def test_a_long_message_is_cut_to_the_channel_limit_keeping_the_key(settings: Settings) -> None:
    items = [item_for(change_record(change_id=n), 2, settings) for n in range(1, 40)]
    digest = message_for(items, digest="day", channel="desk")
    assert len(digest.body) > 1000
    with LocalSMTP() as smtp:
        channel = AppriseChannel(ChannelConfig("desk", "apprise", urls=(mailto(smtp),), limit=600))
        channel.send(digest)

    body = text_of(smtp.messages[0]).rstrip("\n")
    assert len(body) <= 600
    assert "…\n\nid: watcher-digest-desk-1-39" in body
    assert "\ufffd" not in body  # no character was cut in half


def test_default_limit_is_the_smallest_service_limit() -> None:
    urls = ("mailto://user:pass@example.org", "discord://1234/abcd")
    assert AppriseChannel(ChannelConfig("both", "apprise", urls=urls)).limit == 2000
    assert AppriseChannel(ChannelConfig("mail", "apprise", urls=urls[:1])).limit == 32768


def test_an_unreachable_mail_server_is_a_delivery_error(message: Message) -> None:
    url = f"mailto://127.0.0.1:{closed_port()}?from=watcher@example.org&to=desk@example.org"
    channel = AppriseChannel(ChannelConfig("desk", "apprise", urls=(url,), timeout_s=2))
    with pytest.raises(DeliveryError) as caught:
        channel.send(message)
    assert caught.value.channel == "desk"
    assert "connection" in caught.value.reason.lower()


def test_an_unusable_apprise_url_is_refused_without_showing_its_secret() -> None:
    with pytest.raises(WatcherError) as caught:
        AppriseChannel(ChannelConfig("x", "apprise", urls=("nosuchservice://tok3n@host",)))
    assert "nosuchservice://" in str(caught.value)
    assert "tok3n" not in str(caught.value)


# -- webhook ---------------------------------------------------------------------------


def webhook(url: str, *, secret: str = SECRET, timeout_s: float = 5.0) -> WebhookChannel:
    config = ChannelConfig("ops", "webhook", urls=(url,), secret=secret, timeout_s=timeout_s)
    return WebhookChannel(config, user_agent="watcher-test/1")


def test_webhook_posts_the_signed_json_record(message: Message) -> None:
    with WebhookReceiver(SECRET) as hook:
        webhook(hook.url).send(message)

    [request] = hook.requests
    assert request.verified
    assert request.path == "/hooks/watcher"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == "watcher-change-42"
    assert request.headers["User-Agent"] == "watcher-test/1"
    assert abs(int(request.headers["X-Watcher-Timestamp"]) - time.time()) < 60
    assert request.body == payload_bytes(message)
    assert NEW_TITLE.encode("utf-8") in request.body  # UTF-8, not \u escapes
    assert json.loads(request.body) == message.payload()


def test_a_receiver_with_another_secret_rejects_the_signature(message: Message) -> None:
    with WebhookReceiver("another secret") as hook:
        webhook(hook.url).send(message)
    [request] = hook.requests
    assert not request.verified
    assert verify(SECRET, request.headers, request.body)
    assert not verify(SECRET, request.headers, request.body.replace(b"42", b"43"))


def test_a_receiver_error_is_a_delivery_error(message: Message) -> None:
    with WebhookReceiver(SECRET, status=500) as hook, pytest.raises(DeliveryError) as caught:
        webhook(hook.url).send(message)
    assert caught.value.reason == "HTTP 500 Internal Server Error"
    assert len(hook.requests) == 1  # the outbox retries, not the channel


def test_redirects_are_not_followed(message: Message) -> None:
    with WebhookReceiver(SECRET, status=307) as hook, pytest.raises(DeliveryError) as caught:
        webhook(hook.url).send(message)
    assert "307" in caught.value.reason and "not followed" in caught.value.reason


def test_a_slow_receiver_times_out_within_the_channel_timeout(message: Message) -> None:
    with WebhookReceiver(SECRET, delay=30) as hook:
        started = time.monotonic()
        with pytest.raises(DeliveryError) as caught:
            webhook(hook.url, timeout_s=0.5).send(message)
        elapsed = time.monotonic() - started
    assert caught.value.reason == "no answer within 0.5s"
    assert elapsed < 2


def test_a_dropped_connection_is_tried_once_more(message: Message) -> None:
    with WebhookReceiver(SECRET, hang_ups=1) as hook:
        webhook(hook.url).send(message)
    assert len(hook.requests) == 2
    with WebhookReceiver(SECRET, hang_ups=5) as hook, pytest.raises(DeliveryError):
        webhook(hook.url).send(message)
    assert len(hook.requests) == 2  # one retry, no more: the outbox retries later


def test_nobody_listening_is_a_delivery_error(message: Message) -> None:
    with pytest.raises(DeliveryError, match="ConnectError"):
        webhook(f"http://127.0.0.1:{closed_port()}/hook", timeout_s=2).send(message)


def test_a_webhook_without_a_secret_is_refused() -> None:
    with pytest.raises(WatcherError, match="secret"):
        WebhookChannel(ChannelConfig("ops", "webhook", urls=("http://127.0.0.1/",)), user_agent="x")


# -- exec hook -------------------------------------------------------------------------


def hook_script(tmp_path: Path, code: str) -> tuple[str, ...]:
    script = tmp_path / "hook.py"
    script.write_text(textwrap.dedent(code), encoding="utf-8")
    return (sys.executable, str(script), str(tmp_path))


def test_exec_hook_gets_the_json_on_stdin_and_the_key_in_its_environment(
    tmp_path: Path, message: Message
) -> None:
    command = hook_script(
        tmp_path,
        """
        import os, pathlib, sys
        out = pathlib.Path(sys.argv[1])
        (out / "stdin.json").write_bytes(sys.stdin.buffer.read())
        (out / "key.txt").write_text(os.environ["WATCHER_IDEMPOTENCY_KEY"])
        """,
    )
    ExecChannel(ChannelConfig("archive", "exec", command=command)).send(message)

    assert json.loads((tmp_path / "stdin.json").read_bytes()) == message.payload()
    assert (tmp_path / "key.txt").read_text() == "watcher-change-42"


def test_a_failing_hook_reports_its_last_error_line(tmp_path: Path, message: Message) -> None:
    command = hook_script(
        tmp_path,
        """
        import sys
        sys.stdin.read()
        print("connecting to the archive", file=sys.stderr)
        print("archive full: 507\\n", file=sys.stderr)
        sys.exit(3)
        """,
    )
    with pytest.raises(DeliveryError) as caught:
        ExecChannel(ChannelConfig("archive", "exec", command=command)).send(message)
    assert caught.value.reason == "exit status 3: archive full: 507"


def test_a_hung_hook_and_its_children_are_killed_at_the_timeout(
    tmp_path: Path, message: Message
) -> None:
    # The grandchild inherits stderr: unless it is killed too, reading the
    # hook's stderr would wait for it.
    command = hook_script(
        tmp_path,
        """
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        time.sleep(60)
        """,
    )
    channel = ExecChannel(ChannelConfig("archive", "exec", command=command, timeout_s=1))
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="took longer than 1s"):
        channel.send(message)
    assert time.monotonic() - started < 5


def test_a_missing_command_is_a_delivery_error(tmp_path: Path, message: Message) -> None:
    channel = ExecChannel(ChannelConfig("x", "exec", command=(str(tmp_path / "nope"),)))
    with pytest.raises(DeliveryError, match="cannot run"):
        channel.send(message)


# -- building and the CLI ------------------------------------------------------------


def test_build_channels_makes_one_of_each_type(settings: Settings) -> None:
    config = Config(
        channels={
            "desk": ChannelConfig("desk", "apprise", urls=("mailto://u:p@example.org",)),
            "ops": ChannelConfig("ops", "webhook", urls=("https://h.example/",), secret="s"),
            "archive": ChannelConfig("archive", "exec", command=("true",), limit=100),
        }
    )
    channels = build_channels(config, settings)
    assert {name: c.type for name, c in channels.items()} == {
        "desk": "apprise",
        "ops": "webhook",
        "archive": "exec",
    }
    assert channels["archive"].limit == 100
    with pytest.raises(WatcherError, match="unknown type"):
        build_channels(Config(channels={"x": ChannelConfig("x", "pager")}), settings)


def write_config(home: Path, channels: str) -> None:
    (home / "watcher.toml").write_text(textwrap.dedent(channels), encoding="utf-8")


def test_notify_test_sends_a_sample_email(tmp_path: Path) -> None:
    with LocalSMTP() as smtp:
        write_config(tmp_path, f'[channels.desk]\ntype = "apprise"\nurl = "{mailto(smtp)}"\n')
        result = CliRunner().invoke(main, ["--home", str(tmp_path), "notify", "test", "desk"])

    assert result.exit_code == 0, result.output
    assert result.stdout == "sent a sample to desk (apprise)\n"  # stderr: the test server's log
    [mail] = smtp.messages
    assert mail["Subject"].startswith("[watcher test] ")
    assert "香港立法会选举投票率创历史新低" in text_of(mail)


def test_notify_test_reports_a_failed_delivery_and_exits_1(tmp_path: Path) -> None:
    with WebhookReceiver(SECRET, status=500) as hook:
        write_config(
            tmp_path,
            f"""
            [channels.ops]
            type = "webhook"
            url = "{hook.url}"
            secret = "{SECRET}"
            """,
        )
        result = CliRunner().invoke(main, ["--home", str(tmp_path), "notify", "test", "ops"])

    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == "watcher: error: channel 'ops': HTTP 500 Internal Server Error\n"
    assert hook.requests[0].verified


def test_notify_test_names_the_configured_channels(tmp_path: Path) -> None:
    write_config(tmp_path, '[channels.desk]\nurl = "mailto://u:p@example.org"\n')
    result = CliRunner().invoke(main, ["--home", str(tmp_path), "notify", "test", "dsek"])
    assert result.exit_code == 2
    assert result.stderr == "watcher: error: no channel named 'dsek'; configured: desk\n"


def test_the_readme_receiver_example_verifies_a_real_request(message: Message) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    code = readme.split("```python\nimport hashlib, hmac, time\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec("import hashlib, hmac, time\n" + code, namespace)
    readme_verify = namespace["verify"]
    with WebhookReceiver(SECRET) as hook:
        webhook(hook.url).send(message)
    [request] = hook.requests
    assert readme_verify(SECRET.encode(), request.headers, request.body)
    assert not readme_verify(b"wrong", request.headers, request.body)
    assert not readme_verify(SECRET.encode(), request.headers, request.body + b" ")
