"""Headless Chromium for the browser tests: Debian's package, driven by
Playwright, started as the machine allows (no sandbox as root, no network
chatter that this sandbox would refuse)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def require_chromium() -> Any:
    """Playwright's sync API; skips (the whole module, when called at its
    top) where Chromium or Playwright is not installed."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(
            "chromium not installed (apt-get install chromium; .ci/run does this)",
            allow_module_level=True,
        )
    return pytest.importorskip(
        "playwright.sync_api", reason="Python Playwright not installed (pip install -e '.[test]')"
    )


@contextmanager
def launched_chromium() -> Iterator[Any]:
    """Headless Chromium for a module's ``browser`` fixture, closed after;
    skips the tests with the reason when it cannot start."""
    sync_api = require_chromium()
    with sync_api.sync_playwright() as p:
        try:
            launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except sync_api.Error as exc:
            pytest.skip(f"Playwright cannot drive {CHROMIUM}: {str(exc).splitlines()[0]}")
        yield launched
        launched.close()


@dataclass
class Recorder:
    """What a page asked for and said; requests off ``origin`` are recorded and
    aborted (``file://`` ones too, unless ``local_files``: a site opened from
    its folder)."""

    origin: str
    local_files: bool = False
    requests: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def route(self, route: Any) -> None:
        url = route.request.url
        self.requests.append(url)
        local = self.local_files and url.startswith("file://")
        if url.startswith(self.origin + "/") or local:
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()

    def dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def assert_clean(self) -> None:
        assert self.foreign == [], f"requests off the site: {self.foreign}"
        assert self.console == [], f"console: {self.console}"
        assert self.errors == [], f"page errors: {self.errors}"
        assert self.dialogs == [], f"dialogs: {self.dialogs}"
