"""``watcher serve`` in a real headless browser (Debian's chromium, driven by Playwright).

The app runs on uvicorn on 127.0.0.1 over a SQLite database holding an edited
article, a hostile one and one with very long unbroken URLs and titles. Every
request, console message (a CSP violation is one), page error and dialog is
recorded: pages must load cleanly at a desktop and a phone width without
horizontal scrolling, archived content must never run, and the search box
must find a phrase that only an old version had.

Skips with the reason when chromium or Playwright is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.browser import Recorder, launched_chromium, require_chromium
from tests.test_serve import (
    HOSTILE_TITLE,
    REMOVED,
    T0,
    edited_history,
    hostile_history,
    serving,
)
from tests.test_site import snap, store_history
from watcher.store import Store, open_engine, upgrade

require_chromium()

WIDTHS = {"desktop": 1280, "phone": 390}


@dataclass(frozen=True)
class Site:
    origin: str
    paths: dict[str, str]  # page name -> path
    removed_version_id: int

    def url(self, path: str) -> str:
        return self.origin + path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("serve")
    db_url = f"sqlite:///{root}/watcher.db"
    upgrade(db_url)
    engine = open_engine(db_url)
    store = Store(engine)
    edited = edited_history(store)
    hostile = hostile_history(store)
    long_url = "https://long.example/" + "a" * 300 + "?" + "&".join(f"k{i}=v{i}" for i in range(40))
    long_title = "長" * 150 + "Supercalifragilistic" * 10
    long = store_history(
        store,
        long_url,
        [snap(long_url, long_title, ["x" * 500, f'<a href="{long_url}">{long_url}</a>'], T0)],
        tags=("tag-" + "t" * 120,),
    )
    versions = {w.id: store.versions(w.id) for w in (edited, hostile, long)}
    paths = {
        "index": "/",
        "edited": f"/articles/{edited.id}",
        "hostile": f"/articles/{hostile.id}",
        "long": f"/articles/{long.id}",
        "old version": f"/versions/{versions[edited.id][0].id}",
        "hostile version": f"/versions/{versions[hostile.id][-1].id}",
        "long version": f"/versions/{versions[long.id][0].id}",
        "search": "/search?q=alert",
        "search long": "/search?q=aaaa",
    }
    try:
        with serving(store, root / "home") as served:
            yield Site(served.origin, paths, versions[edited.id][0].id)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    with launched_chromium() as launched:
        yield launched


def open_tab(browser: Any, site: Site, width: int) -> tuple[Any, Any, Recorder]:
    context = browser.new_context(service_workers="block", viewport={"width": width, "height": 800})
    recorder = Recorder(site.origin)
    context.route("**/*", recorder.route)
    tab = context.new_page()
    tab.on("console", lambda m: recorder.console.append(f"{m.type}: {m.text}"))
    tab.on("pageerror", lambda e: recorder.errors.append(str(e)))
    tab.on("dialog", recorder.dialog)
    return context, tab, recorder


@pytest.fixture(params=list(WIDTHS), ids=list(WIDTHS))
def tab(request: pytest.FixtureRequest, browser: Any, site: Site) -> Iterator[tuple[Any, Recorder]]:
    context, page, recorder = open_tab(browser, site, WIDTHS[request.param])
    yield page, recorder
    context.close()


def test_the_detectors_catch_a_dialog(tab: tuple[Any, Recorder], site: Site) -> None:
    page, recorder = tab
    page.goto(site.url("/"))
    page.evaluate("() => alert('control')")
    assert recorder.dialogs == ["alert: control"]


@pytest.mark.parametrize(
    "name",
    ["index", "edited", "hostile", "long", "old version", "hostile version", "long version",
     "search", "search long"],
)  # fmt: skip
def test_pages_load_cleanly_without_horizontal_overflow(
    tab: tuple[Any, Recorder], site: Site, name: str
) -> None:
    page, recorder = tab
    response = page.goto(site.url(site.paths[name]), wait_until="load")
    assert response is not None and response.status == 200
    page.wait_for_load_state("networkidle")
    overflow = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert overflow[0] <= overflow[1], f"{name}: scrollWidth {overflow[0]} > {overflow[1]}"
    recorder.assert_clean()
    assert page.evaluate("() => window.__pwned === undefined")
    assert page.evaluate("() => document.images.length") == 0
    # only this server's page, stylesheet and script were asked for
    paths = {u.removeprefix(site.origin).split("?")[0] for u in recorder.requests}
    assert paths <= {site.paths[name].split("?")[0], "/static/style.css", "/static/local-time.js"}
    # the stylesheet applied and the script ran, under the CSP
    assert page.evaluate("() => getComputedStyle(document.body).margin") == "0px"
    if page.locator("time[datetime]").count():
        assert page.locator("time[datetime]").first.get_attribute("title")


def test_hostile_content_never_runs(tab: tuple[Any, Recorder], site: Site) -> None:
    page, recorder = tab
    for name in ("hostile", "hostile version", "search"):
        page.goto(site.url(site.paths[name]))
        assert page.evaluate("() => document.scripts.length") == 1  # ours, from /static
        assert page.locator('a[href^="javascript:" i]').count() == 0
        assert page.locator("[onerror], [onload], [onclick], svg, img, iframe").count() == 0
    page.goto(site.url(site.paths["hostile version"]))
    assert page.locator("h1").inner_text() == HOSTILE_TITLE
    body = page.locator("main").inner_text()
    for text in ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>",
                 '<a href="javascript:alert(1)">', "<svg onload=alert(1)>"):  # fmt: skip
        assert text in body
    clickable = page.get_by_text("click me").all()  # in the article and in its change report
    assert len(clickable) == 2
    for link in clickable:  # a javascript: link is plain text
        link.click()
    for inert in page.locator("span.url").all():
        inert.click()
    page.wait_for_timeout(200)
    recorder.assert_clean()


def test_the_search_box_finds_a_phrase_only_the_first_version_had(
    tab: tuple[Any, Recorder], site: Site
) -> None:
    page, recorder = tab
    page.goto(site.url("/"))
    box = page.locator("header input[name=q]")
    box.fill(f'"{REMOVED}"')
    box.press("Enter")
    page.wait_for_load_state("load")
    hits = page.locator("ol.hits > li")
    assert hits.count() == 1
    assert page.locator("ol.hits mark").first.inner_text() == REMOVED
    hits.first.locator("a").first.click()
    page.wait_for_load_state("load")
    assert page.url == site.url(f"/versions/{site.removed_version_id}")
    assert REMOVED in page.locator("article.snapshot").inner_text()
    assert "Version" in page.locator("dl.meta").inner_text()
    recorder.assert_clean()
