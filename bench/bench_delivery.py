"""Notification delivery, measured with the real ``watcher run`` and a real
webhook receiver on 127.0.0.1 (signatures checked):

- latency: a local article is edited; the daemon (adaptive schedule squeezed
  to 1-2 s) checks it, stores the change and sends it. Reported: change stored
  (the change row's time, taken at the start of its check, so this errs long)
  → message received, and edit published → message received;
- throughput: 10,000 changes queued in the outbox at once (one transaction),
  then the time until the daemon has sent and marked every one.

    .venv/bin/python bench/bench_delivery.py [--n 10000] [--samples 15] [--pg URL]

Figures are from one run on this machine; compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.soak import Daemon, wait_until
from tests.store.conftest import change_of
from tests.support.webhook import WebhookReceiver
from watcher import demo, snapshot
from watcher.store import OutboxEntry, Store, upgrade

SECRET = "bench"


def config(home: Path, hook: WebhookReceiver) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "watcher.toml").write_text(
        f'[channels.hook]\ntype = "webhook"\nurl = "{hook.url}"\nsecret = "{SECRET}"\n',
        encoding="utf-8",
    )


class Stamped(WebhookReceiver):
    """Keeps the arrival time of each message."""

    def __init__(self) -> None:
        super().__init__(SECRET)
        self.arrivals: list[tuple[float, bytes]] = []
        self.arrived = threading.Condition()


def received_at(hook: WebhookReceiver, count: int, timeout: float) -> float | None:
    """Wall-clock time when the receiver has ``count`` requests."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with hook.lock:
            if len(hook.requests) >= count:
                return time.time()
        time.sleep(0.002)
    return None


def latency(samples: int, database_url: str | None) -> None:
    seed = snapshot.read(Path(__file__).resolve().parents[1] / "seeds" / "000_f45fe6e83c05ee36.txt")
    room = demo.Newsroom(title=seed.title, main=seed.body)
    with (
        tempfile.TemporaryDirectory() as tmp,
        demo.serve(room) as url,
        WebhookReceiver(SECRET) as hook,
    ):
        room.url = url
        home = Path(tmp) / "home"
        config(home, hook)
        daemon = Daemon("lat", home, database_url)
        daemon.env.update({"WATCHER_MIN_INTERVAL": "1s", "WATCHER_MAX_INTERVAL": "2s"})
        db = database_url or f"sqlite:///{home / 'watcher.db'}"
        upgrade(db)
        store = Store.open(db)
        store.add_watch(url, site="127.0.0.1", now_ms=0)
        daemon.start()
        stored_ms: list[float] = []
        edit_ms: list[float] = []
        try:
            assert wait_until(lambda: bool(store.list_watches()[0].version_count), 30)
            text = demo.LEAD
            for i in range(samples):
                new = f"预计将持续第{i}个小时。"
                edited = time.time()
                room.edit(text, new)
                text = new
                arrived = received_at(hook, i + 1, 30)
                assert arrived is not None, "no message within 30 s"
                change = store.latest_change(store.list_watches()[0].id)
                assert change is not None
                stored_ms.append(arrived * 1000 - change.created_at)
                edit_ms.append((arrived - edited) * 1000)
        finally:
            daemon.stop()
            store.close()
    print(f"latency over {samples} edits ({'PostgreSQL' if database_url else 'SQLite'}):")
    print(
        f"  change stored -> message received: median {statistics.median(stored_ms):.0f} ms, "
        f"max {max(stored_ms):.0f} ms"
    )
    print(
        f"  edit published -> message received: median {statistics.median(edit_ms):.0f} ms, "
        f"max {max(edit_ms):.0f} ms (includes waiting for the next check, 1-2 s)"
    )


def throughput(n: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp, WebhookReceiver(SECRET) as hook:
        home = Path(tmp) / "home"
        config(home, hook)
        db = database_url or f"sqlite:///{home / 'watcher.db'}"
        upgrade(db)
        store = Store.open(db)
        watch, _ = store.add_watch("https://news.example.com/a", site="news.example.com", now_ms=0)
        v = [
            store.add_version(watch.id, captured_at=i, content_sha256=f"{i:064d}",
                              content_text=f"v{i}", http_status=200, final_url=watch.url,
                              title="t", archive_path=None)
            for i in (1, 2)
        ]  # fmt: skip
        daemon = Daemon("tp", home, database_url)
        daemon.start()
        try:
            assert wait_until(daemon.started, 30)
            started = time.monotonic()
            with store.transaction() as tx:
                for _ in range(n):
                    tx.add_change(change_of("paragraph_edited"), watch_id=watch.id,
                                  old_version_id=v[0].id, new_version_id=v[1].id,
                                  deliveries=(OutboxEntry("hook", 0),))  # fmt: skip
            queued = time.monotonic() - started
            sent = wait_until(lambda: store.delivery_counts()["sent"] == n, 600, step=0.05)
            elapsed = time.monotonic() - started - queued
        finally:
            daemon.stop()
            store.close()
        with hook.lock:
            keys = {r.headers["Idempotency-Key"] for r in hook.requests}
            verified = all(r.verified for r in hook.requests)
            total = len(hook.requests)
    assert sent, "not all sent within 600 s"
    print(
        f"throughput, {n} queued changes ({'PostgreSQL' if database_url else 'SQLite'}): "
        f"queued in {queued:.1f} s; all sent and marked in {elapsed:.1f} s = "
        f"{n / elapsed:.0f} messages/s; {total} requests, {len(keys)} distinct keys, "
        f"signatures {'all valid' if verified else 'INVALID'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--pg", help="also on this PostgreSQL database (emptied first)")
    args = parser.parse_args()
    latency(args.samples, None)
    throughput(args.n, None)
    if args.pg:
        throughput(args.n, args.pg)


if __name__ == "__main__":
    main()
