"""Headless Chromium for the browser tests: Debian's package, driven by
Playwright, started as the machine allows (no sandbox as root, no network
chatter that this sandbox would refuse)."""

from __future__ import annotations

import shutil

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
