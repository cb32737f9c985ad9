"""The report site in a real headless browser (Debian's chromium, driven by Playwright).

The site is built from the real daemon pipeline's history (the demo newsroom)
plus stored articles, one of them hostile, and served from 127.0.0.1. Every
request, console message, page error and dialog is recorded: pages must load
with no errors and no request leaving the site, the index must sort and
filter, and archived content must not be able to run script. A control page
that does run script proves the detectors work.

Skips with the reason when chromium or Playwright is missing (`.ci/run`
installs chromium; Playwright comes with the `test` extra).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import Recorder, launched_chromium, require_chromium
from tests.test_site import HOSTILE_TITLE, calm_history, demo_history, hostile_history
from watcher import api
from watcher.outputs import site

require_chromium()


# -- the site and a server for it -----------------------------------------------------


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


@dataclass(frozen=True)
class Served:
    origin: str
    root: Path  # served folder: site/ (the report site) and control/ (a page that runs script)
    hostile_id: int
    calm_id: int

    def url(self, path: str) -> str:
        return f"{self.origin}/{path}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("www")
    settings, _ = demo_history(root.parent / f"{root.name}-home")
    store = api.open_store(settings)
    try:
        hostile = hostile_history(store, "https://news.example/world/hostile", 1_700_100_000_000)
        calm = calm_history(store, "https://news.example/world/calm", 1_600_000_000_000)
        site.build_site(store, root / "site", tz=settings.timezone)
    finally:
        store.close()
    control = root / "control"
    control.mkdir()
    (control / "index.html").write_text(
        "<!DOCTYPE html><title>control</title>"
        "<script>window.__pwned = 1; console.error('control ran'); alert('control');</script>",
        encoding="utf-8",
    )
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_address[1]}", root, hostile.id, calm.id)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[Any]:
    """Depends on ``served`` so the site is built first: Playwright's sync API keeps
    an event loop running in this thread, and the pipeline needs asyncio.run()."""
    with launched_chromium() as launched:
        yield launched


# -- recording everything a page does ----------------------------------------------------


@pytest.fixture
def page(browser: Any, served: Served) -> Iterator[tuple[Any, Recorder]]:
    context = browser.new_context(service_workers="block")
    recorder = Recorder(served.origin, local_files=True)
    context.route("**/*", recorder.route)
    tab = context.new_page()
    tab.on("console", lambda m: recorder.console.append(f"{m.type}: {m.text}"))
    tab.on("pageerror", lambda e: recorder.errors.append(str(e)))
    tab.on("dialog", recorder.dialog)
    yield tab, recorder
    context.close()


def pwned(tab: Any) -> bool:
    return bool(tab.evaluate("() => window.__pwned !== undefined"))


# -- the tests -----------------------------------------------------------------------------


def test_the_detectors_catch_a_page_that_runs_script(
    page: tuple[Any, Recorder], served: Served
) -> None:
    tab, recorder = page
    tab.goto(served.url("control/index.html"))
    assert pwned(tab)
    assert recorder.dialogs == ["alert: control"]
    assert recorder.console == ["error: control ran"]


@pytest.mark.parametrize("path", ["index.html", "recent.html", "articles/{hostile}.html",
                                  "articles/{calm}.html", "articles/1.html"])  # fmt: skip
def test_pages_load_cleanly_and_request_nothing_else(
    page: tuple[Any, Recorder], served: Served, path: str
) -> None:
    tab, recorder = page
    url = served.url("site/" + path.format(hostile=served.hostile_id, calm=served.calm_id))
    response = tab.goto(url, wait_until="load")
    assert response is not None and response.status == 200
    tab.wait_for_load_state("networkidle")
    recorder.assert_clean()
    assert recorder.requests == [url]  # the page itself: no CSS, fonts, images, scripts
    assert not pwned(tab)
    assert tab.evaluate("() => document.images.length") == 0


def test_every_link_on_the_site_leads_to_a_page_that_exists(
    page: tuple[Any, Recorder], served: Served
) -> None:
    tab, recorder = page
    seen: set[str] = set()
    todo = [served.url("site/index.html")]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        response = tab.goto(url)
        assert response is not None and response.status == 200, url
        if not url.endswith(".html"):
            continue
        hrefs = tab.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
        todo += [h.split("#")[0] for h in hrefs if h.startswith(served.origin)]
    assert served.url("site/feed.atom") in seen and served.url("site/recent.html") in seen
    articles = [u for u in seen if re.search(r"/articles/\d+\.html$", u)]
    versions = [u for u in seen if re.search(r"/articles/\d+/v\d+\.html$", u)]
    assert len(articles) == 3
    # demo: the first, an edit, an insertion; calm and hostile: first and edit
    assert len(versions) == 3 + 2 + 2
    recorder.assert_clean()


def test_the_index_sorts_by_a_clicked_header(page: tuple[Any, Recorder], served: Served) -> None:
    tab, recorder = page
    tab.goto(served.url("site/index.html"))
    column = "rows => rows.map(r => r.cells[{}].textContent.trim())"
    # Default: newest significant change first (the hostile edit is from 2023).
    titles = tab.eval_on_selector_all("#articles tbody tr", column.format(0))
    assert titles[0] == HOSTILE_TITLE
    tab.get_by_role("button", name="Versions").click()
    versions = tab.eval_on_selector_all("#articles tbody tr", column.format(2))
    assert versions == sorted(versions, key=int) and versions[0] != versions[-1]
    header = tab.locator("#articles thead th").nth(2)
    assert header.get_attribute("aria-sort") == "ascending"
    tab.get_by_role("button", name="Versions").click()
    descending = tab.eval_on_selector_all("#articles tbody tr", column.format(2))
    assert descending == sorted(versions, key=int, reverse=True)
    assert header.get_attribute("aria-sort") == "descending"
    tab.get_by_role("button", name="Title").click()
    titles = tab.eval_on_selector_all("#articles tbody tr", column.format(0))
    expected = tab.evaluate("t => t.slice().sort((a, b) => a.toLowerCase().localeCompare("
                            "b.toLowerCase()))", titles)  # fmt: skip
    assert titles == expected
    recorder.assert_clean()


def test_the_index_filters_by_typed_text_and_by_state(
    page: tuple[Any, Recorder], served: Served
) -> None:
    tab, recorder = page
    tab.goto(served.url("site/index.html"))
    visible = "rows => rows.filter(r => !r.hidden).map(r => r.cells[0].textContent.trim())"
    count = tab.locator("#count")
    assert count.text_content() == "3 of 3 articles"
    tab.locator("#filter-text").fill("calm")
    assert tab.eval_on_selector_all("#articles tbody tr", visible) == ["Calm headline"]
    assert count.text_content() == "1 of 3 articles"
    tab.locator("#filter-text").fill("拜登")
    assert len(tab.eval_on_selector_all("#articles tbody tr", visible)) == 1
    tab.locator("#filter-text").fill("no such article")
    assert tab.eval_on_selector_all("#articles tbody tr", visible) == []
    tab.locator("#filter-text").fill("")
    tab.locator("#filter-state").select_option("gone")
    gone = tab.eval_on_selector_all("#articles tbody tr", visible)
    assert len(gone) == 1 and "拜登" in gone[0]
    recorder.assert_clean()


def test_archived_script_handlers_and_javascript_links_stay_inert(
    page: tuple[Any, Recorder], served: Served
) -> None:
    tab, recorder = page
    tab.goto(served.url(f"site/articles/{served.hostile_id}.html"))
    assert tab.locator("h1").inner_text() == HOSTILE_TITLE  # shown as text
    # one script: the site's own (local times), none of the archived page's
    scripts = tab.evaluate("() => Array.from(document.scripts, s => s.text)")
    assert len(scripts) == 1 and "time[datetime]" in scripts[0]
    assert tab.locator('a[href^="javascript:" i]').count() == 0
    assert tab.locator("[onerror], [onload], [onclick]").count() == 0
    inert = tab.locator("span.url", has_text="javascript:window.__pwned=1").first
    inert.click()  # what would have been a javascript: link is plain text
    body = tab.locator("main").inner_text()
    assert "<script>window.__pwned=1</script>" in body
    assert "<svg onload=window.__pwned=1>" in body
    for noise in tab.locator("details").all():
        noise.locator("summary").click()
    tab.wait_for_timeout(100)
    assert not pwned(tab)
    recorder.assert_clean()


def test_the_site_works_opened_from_the_folder(browser: Any, served: Served) -> None:
    """Opening index.html from disk (file://) is how many people will read it."""
    context = browser.new_context()
    recorder = Recorder("file://")
    context.route("**/*", recorder.route)
    tab = context.new_page()
    tab.on("console", lambda m: recorder.console.append(f"{m.type}: {m.text}"))
    tab.on("pageerror", lambda e: recorder.errors.append(str(e)))
    try:
        tab.goto((served.root / "site" / "index.html").as_uri())
        assert tab.locator("#count").text_content() == "3 of 3 articles"
        tab.locator("#filter-text").fill("calm")
        assert tab.locator("#count").text_content() == "1 of 3 articles"
        tab.get_by_role("link", name="Calm headline").click()
        tab.wait_for_load_state("load")
        assert tab.url.endswith(f"/articles/{served.calm_id}.html")
        assert "<del>well</del>" in tab.content()
        recorder.assert_clean()
    finally:
        context.close()


def _site_pages(served: Served) -> list[str]:
    site_root = served.root / "site"
    return sorted(p.relative_to(site_root).as_posix() for p in site_root.rglob("*.html"))


@pytest.mark.parametrize(("width", "height"), [(390, 844), (1280, 800)])
def test_no_page_overflows_sideways_on_a_phone_or_a_desktop(
    browser: Any, served: Served, width: int, height: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        tab = context.new_page()
        pages = _site_pages(served)
        assert len(pages) >= 10
        for path in pages:
            tab.goto(served.url("site/" + path))
            scroll, inner = tab.evaluate(
                "() => [document.documentElement.scrollWidth, window.innerWidth]"
            )
            assert scroll <= inner, f"{path} is {scroll} px wide at {width} px"
    finally:
        context.close()


def test_a_version_page_shows_what_the_article_said_then(
    page: tuple[Any, Recorder], served: Served
) -> None:
    tab, recorder = page
    tab.goto(served.url(f"site/articles/{served.calm_id}.html"))
    tab.click("text=v1")
    assert tab.url.endswith(f"/articles/{served.calm_id}/v1.html")
    text = tab.inner_text("article.version")
    assert "went well" in text and "went badly" not in text
    tab.goto(served.url(f"site/articles/{served.hostile_id}/v2.html"))
    tab.wait_for_load_state("networkidle")
    assert not pwned(tab)
    assert "<script>" in tab.inner_text("h1")  # the hostile title, shown as text
    recorder.assert_clean()


def test_times_read_in_the_readers_zone_and_in_utc_without_javascript(
    browser: Any, served: Served
) -> None:
    url = served.url(f"site/articles/{served.calm_id}.html")
    shanghai = browser.new_context(timezone_id="Asia/Shanghai", locale="en-US")
    try:
        tab = shanghai.new_page()
        tab.goto(url)
        stamps = tab.eval_on_selector_all("time", "ts => ts.map(t => [t.textContent, t.title])")
        assert stamps
        for shown, utc in stamps:
            assert "GMT+8" in shown and utc.endswith(" UTC")  # one local time, UTC on hover
    finally:
        shanghai.close()
    no_js = browser.new_context(java_script_enabled=False)
    try:
        tab = no_js.new_page()
        tab.goto(url)
        shown = tab.eval_on_selector_all("time", "ts => ts.map(t => t.textContent)")
        assert shown and all(text.endswith(" UTC") for text in shown)
        tab.goto(served.url("site/index.html"))
        assert not tab.is_visible("#filters")  # the filters need JavaScript: hidden without
    finally:
        no_js.close()
