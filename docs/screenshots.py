"""Remake the README's screenshots of the web UI from the demo's data.

Runs ``watcher demo`` into a scratch data folder, serves it with ``watcher
serve`` on a free port of 127.0.0.1 and photographs four pages in headless
Chromium (Debian's package, as the browser tests use it). Chinese text needs a
CJK font on the machine (Debian: ``apt-get install fonts-wqy-zenhei``).

    .venv/bin/python docs/screenshots.py
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS

OUT = Path(__file__).with_name("screenshots")
WATCHER = Path(sys.executable).with_name("watcher")
#: name: (path, viewport width, viewport height)
SHOTS = {
    "article": ("/articles/1", 1280, 830),
    "version": ("/versions/3", 1280, 760),
    "search-phone": ("/search?q=" + quote("习近平"), 390, 844),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch) / "demo"
        subprocess.run([str(WATCHER), "demo", "--keep", str(home)], check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        origin = f"http://127.0.0.1:{free_port()}"
        env = {**os.environ, "WATCHER_HOME": str(home)}
        server = subprocess.Popen(
            [str(WATCHER), "serve", "--bind", origin.removeprefix("http://")], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    httpx.get(origin + "/api/watches", timeout=2)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("watcher serve did not start") from None
                    time.sleep(0.1)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                for name, (path, width, height) in SHOTS.items():
                    page = browser.new_page(viewport={"width": width, "height": height},
                                            timezone_id="Asia/Shanghai")  # fmt: skip
                    page.goto(origin + path)
                    page.screenshot(path=str(OUT / f"{name}.png"))
                    page.close()
                    print(f"wrote {OUT / f'{name}.png'}")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
