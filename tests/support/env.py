"""One watch checked as the daemon checks it: a database, a data folder, a
local site and a simulated clock, shared by the pipeline-level tests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from click.testing import CliRunner, Result

from tests.support.clock import Clock
from tests.support.http_server import LocalServer
from watcher import api
from watcher.cli import main
from watcher.fetch import Fetcher
from watcher.pipeline import CheckResult, Pipeline
from watcher.settings import FetchSettings, Settings
from watcher.store import ChangeRecord, CheckRecord, Store, VersionRecord, WatchRecord, now_ms


@dataclass
class PipelineEnv:
    """A data folder, a database, a local site and a simulated clock."""

    store: Store
    settings: Settings
    site: LocalServer
    clock: Clock
    fetch: FetchSettings

    def add(self, path: str, interval_s: float | None = None) -> str:
        url = self.site.url(path)
        [added] = api.add_watches(self.store, [url], interval_s=interval_s, now=self.clock())
        assert added.error is None
        return added.url

    def check(self, url: str) -> CheckResult:
        """One check of ``url`` as the daemon would run it."""

        async def run() -> CheckResult:
            async with Fetcher(self.fetch) as fetcher:
                pipeline = Pipeline(self.store, fetcher, self.settings, clock=self.clock)
                return await pipeline.check(self.watch(url))

        return asyncio.run(run())

    def cli(self, *args: str) -> Result:
        """``watcher ARGS`` on this data folder and database."""
        env = {"WATCHER_HOME": str(self.settings.home),
               "WATCHER_DATABASE_URL": self.settings.database_url}  # fmt: skip
        return CliRunner().invoke(main, list(args), env=env)

    def watch(self, url: str) -> WatchRecord:
        watch = self.store.get_watch(url)
        assert watch is not None
        return watch

    def versions(self, url: str) -> list[VersionRecord]:
        return self.store.versions(self.watch(url).id)

    def checks(self, url: str) -> list[CheckRecord]:
        """Oldest first."""
        return self.store.recent_checks(self.watch(url).id, limit=100)[::-1]

    def changes(self, url: str) -> list[ChangeRecord]:
        return self.store.changes(self.watch(url).id)


def env_settings(home: Path, db_url: str) -> tuple[Settings, FetchSettings]:
    """Settings for a test check: no retries, short back-offs, 127.0.0.1 allowed."""
    settings = Settings.from_env(
        {}, home=home, database_url=db_url, retries=0, timeout=5.0, allow_hosts="127.0.0.1"
    )
    fetch = replace(settings.fetch_settings(), backoff_base_s=0.01, backoff_max_s=0.05)
    return settings, fetch


E = TypeVar("E", bound=PipelineEnv)


def make_env(cls: type[E], store: Store, db_url: str, home: Path, site: LocalServer) -> E:
    settings, fetch = env_settings(home, db_url)
    return cls(store, settings, site, Clock(now_ms()), fetch)
