"""Delivery end to end in one process: a real local article edited, checked by
the pipeline, the change's outbox rows sent by the delivery worker to a real
webhook receiver on 127.0.0.1. Routing, digests, quiet hours, retries and
dead letters as a user of ``watcher deliveries`` sees them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.env import PipelineEnv, make_env
from tests.support.http_server import LocalServer
from tests.support.newsroom import Newsroom
from tests.support.webhook import WebhookReceiver
from watcher.cli import main
from watcher.config import ChannelConfig, Config, Route
from watcher.demo import LEAD
from watcher.notify.deliver import Deliverer
from watcher.snapshot import read
from watcher.store import DeliveryState, Store

ROOT = Path(__file__).resolve().parents[1]
SEED = read(ROOT / "seeds" / "000_f45fe6e83c05ee36.txt")
ARTICLE = "/zhongwen/simp/world-59301487"
NEW_LEAD = "预计将持续约三个小时。"
SECRET = "s3cret"
HOUR_MS = 3_600_000


@pytest.fixture
def site() -> Iterator[LocalServer]:
    with LocalServer() as server:
        yield server


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as receiver:
        yield receiver


class Env(PipelineEnv):
    room: Newsroom

    def configure(self, hook: WebhookReceiver, *routes: Route) -> None:
        channel = ChannelConfig("desk", "webhook", urls=(hook.url,), secret=SECRET, timeout_s=5)
        config = Config(channels={"desk": channel}, routes=routes)
        self.settings = replace(self.settings, config=config, delivery_backoff=60.0)

    def deliverer(self) -> Deliverer:
        return Deliverer(self.store, self.settings, "tester", clock=self.clock)

    def edited_article(self, tags: tuple[str, ...] = ()) -> str:
        """A watched article, checked once, then its lead edited and checked again."""
        self.room = Newsroom(title=SEED.title, main=SEED.body, url=self.site.url(ARTICLE))
        self.site.route(ARTICLE, self.room.respond)
        url = self.add(ARTICLE)
        if tags:
            self.store.add_watch(url, site="127.0.0.1", tags=tags, now_ms=self.clock())
        self.check(url)
        self.clock.advance(1)
        self.room.edit(LEAD, NEW_LEAD)
        result = self.check(url)
        assert result.change is not None and result.change.significant
        return url


@pytest.fixture
def env(store: Store, db_url: str, tmp_path: Path, site: LocalServer) -> Env:
    return make_env(Env, store, db_url, tmp_path, site)


def bodies(hook: WebhookReceiver) -> list[dict[str, object]]:
    return [json.loads(r.body) for r in hook.requests]


def test_an_edit_reaches_the_webhook_once_signed_with_its_change_id(
    env: Env, hook: WebhookReceiver
) -> None:
    env.configure(hook)
    url = env.edited_article()

    done = env.deliverer().run_until_idle()
    assert (done.sent, done.retrying, done.dead) == (1, 0, 0)
    [request] = hook.requests
    assert request.verified
    [change] = env.changes(url)
    assert request.headers["Idempotency-Key"] == f"watcher-change-{change.id}"
    [sent] = bodies(hook)[0]["changes"]  # type: ignore[misc]
    assert sent["url"] == url and sent["summary"] == "1 paragraph edited"
    assert env.deliverer().run_until_idle().claimed == 0  # never twice
    assert env.store.delivery_counts() == {"pending": 0, "sent": 2, "dead": 0}  # + reports


def test_routes_pick_changes_by_tag_and_kind(env: Env, hook: WebhookReceiver) -> None:
    """Only `gone` and `title` for tag elections: an edited paragraph tells no one."""
    env.configure(hook, Route(channels=("desk",), tags=("elections",), kinds=("gone", "title")))
    env.edited_article(tags=("elections",))
    assert env.deliverer().run_until_idle().claimed == 0
    assert hook.requests == []


def test_noise_notifies_no_one_by_default(env: Env, hook: WebhookReceiver) -> None:
    env.configure(hook)
    env.room = Newsroom(title=SEED.title, main=SEED.body, url=env.site.url(ARTICLE))
    env.site.route(ARTICLE, env.room.respond)
    url = env.add(ARTICLE)
    env.check(url)
    env.clock.advance(1)
    env.room.edit(LEAD, f"<b>{LEAD}</b>")  # markup only
    [change] = [env.check(url).change]
    assert change is not None and not change.significant
    assert env.deliverer().run_until_idle().claimed == 0
    assert hook.requests == []


def test_a_digest_waits_for_the_hour_and_sends_one_message(env: Env, hook: WebhookReceiver) -> None:
    env.configure(hook, Route(channels=("desk",), digest="hour"))
    env.clock.advance((HOUR_MS - env.clock() % HOUR_MS) // 60_000 + 1)  # early in an hour
    env.edited_article()
    env.clock.advance(1)
    env.room.edit(NEW_LEAD, "预计将持续约四个小时。")
    env.check(env.site.url(ARTICLE))
    deliverer = env.deliverer()
    assert deliverer.run_until_idle().claimed == 0  # not before the hour is over
    env.clock.advance(60)
    assert deliverer.run_until_idle().sent == 2
    [request] = hook.requests
    body = bodies(hook)[0]
    assert body["digest"] == "hour" and len(body["changes"]) == 2  # type: ignore[arg-type]
    assert request.headers["Idempotency-Key"].startswith("watcher-digest-desk-")


def test_quiet_hours_hold_a_message_until_they_end(env: Env, hook: WebhookReceiver) -> None:
    now_h = (env.clock() // HOUR_MS) % 24  # UTC: the settings' time zone
    quiet = (time(int(now_h)), time(int((now_h + 2) % 24)))
    env.configure(hook, Route(channels=("desk",), quiet_hours=quiet))
    env.edited_article()
    assert env.deliverer().run_until_idle().claimed == 0
    env.clock.advance(2 * 60)
    assert env.deliverer().run_until_idle().sent == 1


def test_failures_back_off_then_become_dead_letters_that_retry_resends(
    env: Env, hook: WebhookReceiver
) -> None:
    env.configure(hook)
    env.settings = replace(env.settings, delivery_attempts=2)
    hook.status = 500
    env.edited_article()
    deliverer = env.deliverer()
    assert deliverer.run_until_idle().retrying == 1
    assert deliverer.run_until_idle().claimed == 0  # backing off (60 s)
    env.clock.advance(2)  # minutes: past the 60 s back-off
    assert deliverer.run_until_idle().dead == 1
    assert len(hook.requests) == 2

    cli_env = {
        "WATCHER_HOME": str(env.settings.home),
        "WATCHER_DATABASE_URL": env.settings.database_url,
    }
    runner = CliRunner()
    listed = runner.invoke(main, ["deliveries"], env=cli_env)
    assert listed.exit_code == 0, listed.output
    assert "dead" in listed.output and "desk" in listed.output and "500" in listed.output
    status = runner.invoke(main, ["status"], env=cli_env)
    assert "1 dead  (see watcher deliveries)" in status.output

    hook.status = 204
    retried = runner.invoke(main, ["deliveries", "retry", "--all"], env=cli_env)
    assert retried.exit_code == 0 and "queued 1 delivery again" in retried.output
    assert env.deliverer().run_until_idle().sent == 1
    assert env.store.deliveries(state=DeliveryState.DEAD) == []
    wrong = runner.invoke(main, ["deliveries", "retry", "99999"], env=cli_env)
    assert wrong.exit_code == 2 and "no dead letter #99999" in wrong.output


def test_a_message_for_a_channel_this_daemon_lacks_waits_for_one_that_has_it(
    env: Env, hook: WebhookReceiver
) -> None:
    """Daemons sharing a database each read their own config: one without the
    channel leaves its messages alone rather than failing them."""
    env.configure(hook)
    env.edited_article()
    desk = env.settings.config.channels["desk"]
    other = replace(desk, name="other")
    env.settings = replace(env.settings, config=Config(channels={"other": other}))
    lacking = env.deliverer()
    assert lacking.run_until_idle().claimed == 0
    assert lacking.next_due() is None  # nothing of its own to wait for
    [waiting] = env.store.deliveries(state="pending")
    assert (waiting.channel, waiting.attempts) == ("desk", 0)


def test_a_digest_bigger_than_a_pass_is_still_one_message(env: Env, hook: WebhookReceiver) -> None:
    env.configure(hook, Route(channels=("desk",), digest="hour"))
    env.clock.advance((HOUR_MS - env.clock() % HOUR_MS) // 60_000 + 1)
    env.edited_article()
    for n in range(4):  # four more edits in the same hour
        env.clock.advance(1)
        env.room.edit(NEW_LEAD if n == 0 else f"第{n}次。", f"第{n + 1}次。")
        env.check(env.site.url(ARTICLE))
    env.clock.advance(60)
    small = Deliverer(env.store, env.settings, "tester", clock=env.clock, batch=2)
    assert small.run_until_idle().sent == 5
    assert len(hook.requests) == 1
    assert len(bodies(hook)[0]["changes"]) == 5  # type: ignore[arg-type]


def test_the_next_pass_waits_for_a_lease_another_sender_holds(
    env: Env, hook: WebhookReceiver
) -> None:
    env.configure(hook)
    env.edited_article()
    [_held] = env.store.claim_deliveries("other-daemon", env.clock(), 10, 60_000, channels=["desk"])
    deliverer = env.deliverer()
    assert deliverer.run_until_idle().claimed == 0
    assert deliverer.next_due() == env.clock() + 60_000  # not now: no busy loop
