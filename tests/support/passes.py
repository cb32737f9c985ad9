"""One daemon pass, exactly as ``watcher run`` performs it: the dispatcher
claims every due watch from the database and runs the real pipeline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from watcher.daemon import worker_id
from watcher.fetch import Fetcher
from watcher.pipeline import Pipeline
from watcher.scheduler import Dispatcher
from watcher.settings import Settings
from watcher.store import Store, now_ms


def daemon_pass(settings: Settings, store: Store, clock: Callable[[], int] = now_ms) -> None:
    """Claim and check every due watch once, then flush the report site."""

    async def run() -> None:
        async with Fetcher(settings.fetch_settings()) as fetcher:
            pipeline = Pipeline(store, fetcher, settings, clock=clock)
            dispatcher = Dispatcher(store, pipeline, settings, worker_id(), clock=clock)
            await dispatcher.run_until_idle()

    asyncio.run(run())
