"""``watcher serve``: the web UI and JSON API, served by a real uvicorn on
127.0.0.1 over a real database (SQLite and PostgreSQL), read with httpx.

Histories come from the real daemon pipeline against the test newsroom (the
seed article, its lead edited), and from versions stored directly the way an
importer stores them, for content no newsroom page would keep through
extraction (a hostile title, a phrase removed later).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from sqlalchemy.engine import make_url

from tests.support.env import PipelineEnv, make_env
from tests.support.http_server import LocalServer
from tests.support.newsroom import ARTICLE_PATH, LEAD, SEED, Newsroom
from tests.test_site import snap, store_history
from watcher import api
from watcher import snapshot as snapshot_mod
from watcher.cli import main
from watcher.search import INDEX_NAME, open_index
from watcher.store import Store, WatchRecord, WatchState, open_engine
from watcher.web.app import CSP, create_app

NEW_LEAD = "预计将持续约三个小时。"
REMOVED = "The embargo was quietly lifted on Tuesday"
CHINESE = "白宫表示会晤坦诚"
KEPT = "Both sides agreed to meet again next month."
HOSTILE_TITLE = "<script>alert(1)</script> headline"
HOSTILE_STRINGS = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">',
    "<svg onload=alert(1)>",
)
T0 = 1_700_000_000_000
MINUTE = 60_000


# -- histories ------------------------------------------------------------------------------


def edited_history(store: Store, url: str = "https://news.example/world/embargo") -> WatchRecord:
    """Three versions: the first says REMOVED and CHINESE, the second drops
    them, the third edits another paragraph."""
    lead = "The minister spoke to reporters after the talks in Geneva."
    return store_history(
        store,
        url,
        [
            snap(url, "Embargo talks", [lead, f"{REMOVED}, officials said.", CHINESE + "。", KEPT],
                 T0),
            snap(url, "Embargo talks", [lead, KEPT], T0 + 10 * MINUTE),
            snap(url, "Embargo talks end", [lead.replace("Geneva", "Vienna"), KEPT],
                 T0 + 20 * MINUTE),
        ],
        tags=("world",),
    )  # fmt: skip


def hostile_history(store: Store, url: str = "https://evil.example/news/1") -> WatchRecord:
    """An article whose text, title and links try every way of running script."""
    text = [
        "Plain first paragraph of the article, long enough to be a paragraph.",
        "Escaped markup &lt;script&gt;alert(1)&lt;/script&gt; in the text.",
        "An image tag &lt;img src=x onerror=alert(1)&gt; written as text.",
        'A link &lt;a href="javascript:alert(1)"&gt; and &lt;svg onload=alert(1)&gt; too.',
    ]
    extra = (
        '<figure><img src="javascript:alert(1)" onerror="alert(1)" alt="&lt;svg onload=alert(1)&gt;">'
        '</figure><p><a href="javascript:alert(1)">click me</a></p><script>alert(1)</script>'
        '<ul><li><a href="javascript:alert(1)">one</a></li><li><a href="https://ok.example/">two'
        "</a></li></ul>"
    )
    return store_history(
        store,
        url,
        [snap(url, "Calm title", text[:1], T0 + 30 * MINUTE),
         snap(url, HOSTILE_TITLE, text, T0 + 40 * MINUTE, extra)],
        tags=("evil",),
    )  # fmt: skip


def many_watches(store: Store, count: int) -> list[WatchRecord]:
    """``count`` watches of two sites, each with one version."""
    out = []
    for i in range(count):
        url = f"https://{'a' if i % 2 else 'b'}.example/story/{i}"
        out.append(store_history(store, url, [snap(url, f"Story {i}", [f"Text {i}."], T0 + i)]))
    return out


# -- a real server ----------------------------------------------------------------------------


@dataclass
class Served:
    origin: str
    store: Store
    home: Path

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(self.origin + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.origin + path, timeout=30, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.patch(self.origin + path, timeout=30, **kwargs)


@contextmanager
def serving(store: Store, home: Path, token: str = "") -> Iterator[Served]:
    """The app on uvicorn in a thread, on a free port of 127.0.0.1."""
    app = create_app(store, open_index(home, store), token=token)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Served(f"http://127.0.0.1:{port}", store, home)
    finally:
        server.should_exit = True
        thread.join(20)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def served(store: Store, home: Path) -> Iterator[Served]:
    with serving(store, home) as s:
        yield s


def walk(served: Served, path: str, limit: int, **params: str) -> list[dict[str, Any]]:
    """Every item of a paginated API list, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):
        query = {**params, "limit": str(limit), **({"cursor": cursor} if cursor else {})}
        response = served.get(path, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) >= {"items", "next_cursor"}
        assert len(body["items"]) <= limit
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("pagination never ended")


def assert_safe_html(response: httpx.Response) -> None:
    """Security headers, and no archived markup alive in the raw HTML."""
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    raw = response.text
    for hostile in HOSTILE_STRINGS:
        assert hostile not in raw
    assert "javascript:" not in re.sub(r"&[a-z]+;|&#\d+;", "", "".join(
        re.findall(r'href="([^"]*)"', raw)))  # fmt: skip
    assert re.findall(r"<script\b[^>]*>", raw) == ['<script src="/static/local-time.js" defer>']
    assert "<img" not in raw
    assert not re.search(r"<[a-z]+[^>]*\son[a-z]+=", raw)


# -- search ---------------------------------------------------------------------------------


def test_search_finds_a_phrase_only_in_the_version_that_had_it(served: Served) -> None:
    watch = edited_history(served.store)
    first = served.store.versions(watch.id)[0]
    response = served.get("/api/search", params={"q": "quietly lifted"})
    assert response.status_code == 200
    items = response.json()["items"]
    assert [(i["watch_id"], i["seq"], i["version_id"]) for i in items] == [(watch.id, 1, first.id)]
    assert "quietly lifted" in items[0]["snippet"]
    assert items[0]["url"] == watch.url
    page = served.get("/search", params={"q": "quietly lifted"})
    assert page.status_code == 200
    assert f'href="/versions/{first.id}"' in page.text
    assert "<mark>quietly</mark>" in page.text and "<mark>lifted</mark>" in page.text
    assert page.text.count('href="/versions/') == 1


def test_a_chinese_phrase_of_three_characters_or_more_matches(served: Served) -> None:
    watch = edited_history(served.store)
    for query in ("会晤坦诚", "白宫表"):
        items = served.get("/api/search", params={"q": query}).json()["items"]
        assert [i["seq"] for i in items] == [1], query
        assert query in items[0]["snippet"]
    assert served.get("/api/search", params={"q": "会晤不坦诚"}).json()["items"] == []
    # two characters: trigram cannot, LIKE does
    items = served.get("/api/search", params={"q": "白宫"}).json()["items"]
    assert [(i["watch_id"], i["seq"]) for i in items] == [(watch.id, 1)]


def test_search_sees_versions_stored_after_the_server_started(served: Served) -> None:
    assert served.get("/api/search", params={"q": "Geneva"}).json()["items"] == []
    watch = edited_history(served.store)
    items = served.get("/api/search", params={"q": "Geneva"}).json()["items"]
    assert [i["seq"] for i in items] == [2, 1] and {i["watch_id"] for i in items} == {watch.id}
    assert [
        i["seq"] for i in served.get("/api/search", params={"q": "Vienna"}).json()["items"]
    ] == [3]


def test_search_filters_and_pages(served: Served) -> None:
    edited_history(served.store)
    hostile = hostile_history(served.store)
    everything = walk(served, "/api/search", 1, q="paragraph")
    assert [i["watch_id"] for i in everything] == [hostile.id, hostile.id]
    assert walk(served, "/api/search", 2, q="paragraph", site="news.example") == []
    assert len(walk(served, "/api/search", 2, q="paragraph", tag="evil")) == 2
    # the kind of the change that led to the version
    kinds = walk(served, "/api/search", 5, q="paragraph", kind="title")
    assert [i["seq"] for i in kinds] == [2]
    # a query without a term, a bad cursor: a 400 that says what to fix
    empty = served.get("/api/search", params={"q": "  "})
    assert empty.status_code == 400 and "search for" in empty.json()["error"]
    bad = served.get("/api/search", params={"q": "paragraph", "cursor": "nonsense"})
    assert bad.status_code == 400 and "bad cursor" in bad.json()["error"]


# -- pages ----------------------------------------------------------------------------------


@pytest.fixture
def room() -> Newsroom:
    seed = snapshot_mod.read(SEED)
    return Newsroom(title=seed.title, main=seed.body)


@pytest.fixture
def pipeline(
    store: Store, db_url: str, home: Path, room: Newsroom
) -> Iterator[tuple[PipelineEnv, str]]:
    """The seed article checked by the real pipeline, then its lead edited."""
    with LocalServer() as site:
        site.route(ARTICLE_PATH, room.respond)
        env = make_env(PipelineEnv, store, db_url, home, site)
        url = env.add(ARTICLE_PATH)
        env.check(url)
        env.clock.advance(minutes=60)
        room.edit(LEAD, NEW_LEAD)
        env.check(url)
        yield env, url


def test_a_version_page_shows_the_old_text_and_the_article_links_every_version(
    pipeline: tuple[PipelineEnv, str], home: Path
) -> None:
    env, url = pipeline
    versions = env.versions(url)
    assert len(versions) == 2
    with serving(env.store, home) as served:
        article = served.get(f"/articles/{env.watch(url).id}")
        assert article.status_code == 200
        for v in versions:
            assert f'href="/versions/{v.id}"' in article.text
        # newest first
        assert article.text.index(f"/versions/{versions[1].id}") < article.text.index(
            f"/versions/{versions[0].id}"
        )
        assert env.changes(url)[0].summary.split(":")[0] in article.text
        old = served.get(f"/versions/{versions[0].id}")
        assert old.status_code == 200 and LEAD in old.text and NEW_LEAD not in old.text
        new = served.get(f"/versions/{versions[1].id}")
        assert NEW_LEAD in new.text and LEAD not in new.text
        assert f'href="/versions/{versions[0].id}"' in new.text  # previous version
        index = served.get("/")
        assert f'href="/articles/{env.watch(url).id}"' in index.text
        assert served.get("/versions/999999").status_code == 404
        assert served.get("/articles/999999").status_code == 404
        detail = served.get(f"/api/versions/{versions[0].id}").json()
        text = " ".join(b["text"] for b in detail["article"]["blocks"])
        assert LEAD in text and detail["seq"] == 1 and detail["url"] == url
        assert detail["captured_at"].endswith("Z")


def test_the_index_filters_by_site_tag_state_and_kind(served: Served) -> None:
    edited = edited_history(served.store)
    hostile = hostile_history(served.store)
    api.set_paused(served.store, hostile.url, True)

    def listed(**params: str) -> list[int]:
        return [w["id"] for w in walk(served, "/api/watches", 10, **params)]

    assert sorted(listed()) == sorted([edited.id, hostile.id])
    assert listed(site="evil.example") == [hostile.id]
    assert listed(tag="world") == [edited.id]
    assert listed(state="paused") == [hostile.id]
    for watch in (edited, hostile):
        latest = served.store.latest_change(watch.id)
        assert latest is not None
        kind = latest.kinds[0]
        expected = [w.id for w in (edited, hostile)
                    if kind in (served.store.latest_change(w.id) or latest).kinds]  # fmt: skip
        assert sorted(listed(kind=kind, state="")) == sorted(expected)
    assert served.get("/api/watches", params={"kind": "no_such_kind"}).status_code == 400
    page = served.get("/", params={"tag": "world"})
    assert f'href="/articles/{edited.id}"' in page.text
    assert f'href="/articles/{hostile.id}"' not in page.text


# -- the API --------------------------------------------------------------------------------


def test_api_lists_walk_every_item_exactly_once(served: Served) -> None:
    watches = many_watches(served.store, 7)
    edited = edited_history(served.store)
    for limit in (1, 3, 50):
        ids = [w["id"] for w in walk(served, "/api/watches", limit)]
        assert sorted(ids) == sorted([w.id for w in watches] + [edited.id])
        assert len(ids) == len(set(ids))
    first = walk(served, "/api/watches", 2)[0]
    assert set(first) >= {"id", "url", "site", "title", "state", "tags", "last_change"}
    assert first["id"] == edited.id  # the newest change first
    versions = walk(served, f"/api/articles/{edited.id}/versions", 1)
    assert [v["seq"] for v in versions] == [3, 2, 1]
    assert versions[0]["change"]["kinds"] and versions[2]["change"] is None
    changes = walk(served, "/api/changes", 1)
    stored = served.store.changes(edited.id)
    assert [c["id"] for c in changes] == [c.id for c in stored]
    assert changes[0]["summary"] == stored[0].summary
    # since: ISO or epoch ms, inclusive
    since = walk(served, "/api/changes", 5, since=str(T0 + 20 * MINUTE))
    assert [c["id"] for c in since] == [stored[1].id]
    iso = walk(served, "/api/changes", 5, since="2023-11-14T22:13:20Z")  # T0
    assert len(iso) == 2
    kind = stored[1].kinds[0]
    assert stored[1].id in [c["id"] for c in walk(served, "/api/changes", 1, kind=kind)]
    assert served.get("/api/watches", params={"limit": "0"}).status_code == 400
    assert served.get("/api/watches", params={"cursor": "x.y"}).status_code == 400
    assert served.get("/api/articles/999999/versions").status_code == 404
    assert served.get("/api/versions/999999").status_code == 404


# -- writes ---------------------------------------------------------------------------------


def test_writes_are_refused_without_a_configured_token(served: Served) -> None:
    watch = edited_history(served.store)
    for method, path in (
        ("POST", "/api/watches"),
        ("POST", f"/api/watches/{watch.id}/pause"),
        ("POST", f"/api/watches/{watch.id}/resume"),
        ("PATCH", f"/api/watches/{watch.id}"),
    ):
        response = httpx.request(method, served.origin + path, timeout=30,
                                 json={"urls": ["https://news.example/x"], "tag": ["x"]},
                                 headers={"Authorization": "Bearer anything"})  # fmt: skip
        assert response.status_code == 403, path
        assert "WATCHER_SERVE_TOKEN" in response.json()["error"]
    assert served.store.get_watch("https://news.example/x") is None
    assert served.store.get_watch_by_id(watch.id).state is WatchState.ACTIVE  # type: ignore[union-attr]


def test_writes_need_the_right_token(store: Store, home: Path) -> None:
    token = "s3cret-token-" + "x" * 20
    watch = edited_history(store)
    with serving(store, home, token=token) as served:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token},
                        {"Authorization": f"Basic {token}"}):  # fmt: skip
            response = served.post(f"/api/watches/{watch.id}/pause", headers=headers)
            assert response.status_code == 401, headers
        assert store.get_watch_by_id(watch.id).state is WatchState.ACTIVE  # type: ignore[union-attr]
        good = {"Authorization": f"Bearer {token}"}
        paused = served.post(f"/api/watches/{watch.id}/pause", headers=good)
        assert paused.status_code == 200 and paused.json()["state"] == "paused"
        assert store.get_watch_by_id(watch.id).state is WatchState.PAUSED  # type: ignore[union-attr]
        resumed = served.post(f"/api/watches/{watch.id}/resume", headers=good)
        assert resumed.status_code == 200 and resumed.json()["state"] == "active"
        added = served.post(
            "/api/watches",
            headers=good,
            json={"urls": ["https://news.example/new?utm_source=x", "ftp://bad"],
                  "tags": ["desk"], "interval": "10m"},
        )  # fmt: skip
        assert added.status_code == 200, added.text
        first, second = added.json()["items"]
        assert first["created"] and first["url"] == "https://news.example/new"
        assert second["error"] and not second["created"]
        new = store.get_watch("https://news.example/new")
        assert new is not None and new.tags == ("desk",) and new.interval_s == 600
        assert served.post("/api/watches", headers=good, content=b"{").status_code == 400
        assert served.post("/api/watches", headers=good, json={"urls": []}).status_code == 400
        assert served.post("/api/watches/999999/pause", headers=good).status_code == 404


def test_a_watch_interval_and_tags_are_set_with_the_token(store: Store, home: Path) -> None:
    watch = edited_history(store)
    api.set_watches(store, [watch.url], add_tags=["draft"])
    with serving(store, home, token="t0ken") as served:
        change = {"interval": "30m", "tag": ["desk"], "untag": ["draft"]}
        assert served.patch(f"/api/watches/{watch.id}", json=change).status_code == 401
        good = {"Authorization": "Bearer t0ken"}
        response = served.patch(f"/api/watches/{watch.id}", headers=good, json=change)
        assert response.status_code == 200, response.text
        assert (response.json()["tags"], response.json()["interval_s"]) == (["world", "desk"], 1800)
        after = store.get_watch_by_id(watch.id)
        assert after is not None and after.tags == ("world", "desk") and after.interval_s == 1800
        adaptive = served.patch(f"/api/watches/{watch.id}", headers=good,
                                json={"interval": "adaptive"})  # fmt: skip
        assert adaptive.status_code == 200 and adaptive.json()["interval_s"] is None
        for bad in ({}, {"interval": 30}, {"tag": "desk"}, {"tags": ["x"]}):
            refused = served.patch(f"/api/watches/{watch.id}", headers=good, json=bad)
            assert refused.status_code == 400 and "error" in refused.json(), bad
        too_often = served.patch(f"/api/watches/{watch.id}", headers=good,
                                 json={"interval": "1s"})  # fmt: skip
        assert too_often.status_code == 409 and too_often.json()["error"].startswith("interval ")
        missing = served.patch("/api/watches/999999", headers=good, json=change)
        assert missing.status_code == 404
    after = store.get_watch_by_id(watch.id)
    assert after is not None and after.tags == ("world", "desk") and after.interval_s is None


# -- hostile content and secrets ----------------------------------------------------------------


def test_hostile_archived_content_is_escaped_in_every_page(served: Served) -> None:
    watch = hostile_history(served.store)
    versions = served.store.versions(watch.id)
    paths = ["/", f"/articles/{watch.id}", *(f"/versions/{v.id}" for v in versions),
             "/search?q=alert"]  # fmt: skip
    for path in paths:
        response = served.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        assert_safe_html(response)
    hostile = served.get(f"/versions/{versions[1].id}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile
    assert "&lt;img src=x onerror=alert(1)&gt;" in hostile
    assert "&lt;svg onload=alert(1)&gt;" in hostile
    assert 'href="https://ok.example/"' in hostile  # http(s) links stay links
    search = served.get("/search", params={"q": "alert"}).text
    assert "<mark>alert</mark>(1)" in search
    api_hit = served.get("/api/search", params={"q": "onerror"})
    assert api_hit.headers["content-type"] == "application/json"
    assert api_hit.headers["x-content-type-options"] == "nosniff"


def break_database(store: Store) -> None:
    """Make every page's query fail: the watches table is gone."""
    with store.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE watches RENAME TO watches_gone")


PAGES = ["/", "/search?q=embargo", "/api/watches", "/api/changes", "/api/search?q=talks"]


def test_unexpected_errors_are_a_plain_500_without_details(store: Store, home: Path) -> None:
    edited_history(store)
    with serving(store, home) as served:
        for path in PAGES:
            assert served.get(path).status_code == 200
        break_database(store)
        for path in PAGES:
            response = served.get(path)
            assert response.status_code == 500, path
            assert response.text == "Internal Server Error"
            assert response.headers["content-security-policy"] == CSP
            assert response.headers["x-content-type-options"] == "nosniff"


@pytest.fixture
def secret_url(db_url: str, dialect: str) -> str:
    """The test database's URL, with a password on PostgreSQL (the test server
    trusts every local connection, so any password works)."""
    if dialect == "postgresql":
        return (
            make_url(db_url)
            .set(password="pw-S3cret-never-shown")
            .render_as_string(hide_password=False)
        )
    return db_url


def test_the_database_url_appears_in_no_response(store: Store, secret_url: str, home: Path) -> None:
    watch = edited_history(store)
    secrets = {secret_url, make_url(secret_url).render_as_string(hide_password=True)}
    if make_url(secret_url).password:
        secrets.add(str(make_url(secret_url).password))
    engine = open_engine(secret_url)
    own = Store(engine)
    v = store.versions(watch.id)[0]
    paths = ["/", f"/articles/{watch.id}", f"/versions/{v.id}", "/search?q=Geneva",
             "/api/watches", "/api/changes", f"/api/articles/{watch.id}/versions",
             f"/api/versions/{v.id}", "/api/search?q=Geneva", "/api/search?q=",
             "/nope", "/api/watches?cursor=bad", "/versions/99999"]  # fmt: skip
    try:
        with serving(own, home) as served:
            statuses = []
            for broken in (False, True):
                if broken:
                    break_database(own)
                for path in paths:
                    response = served.get(path)
                    statuses.append(response.status_code)
                    blob = response.text + str(response.headers)
                    for secret in secrets:
                        assert secret not in blob, path
            assert 200 in statuses and 404 in statuses and 400 in statuses
            assert 500 in statuses
    finally:
        engine.dispose()


def test_every_response_has_the_security_headers(served: Served) -> None:
    for path in ["/", "/static/style.css", "/static/local-time.js", "/api/watches", "/nope"]:
        response = served.get(path)
        assert response.headers["content-security-policy"] == CSP, path
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


def test_the_serve_command_has_help_with_an_example() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0 and "Example:" in result.output and "--bind" in result.output
    bad = CliRunner().invoke(main, ["serve", "--bind", "localhost"])
    assert bad.exit_code == 2
    assert bad.stderr.splitlines() == [
        "watcher: error: --bind 'localhost': use HOST:PORT, e.g. 127.0.0.1:8765"
    ]
    with socket.socket() as taken:  # a port in use: one line too, and nothing served
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        bind = f"127.0.0.1:{taken.getsockname()[1]}"
        busy = CliRunner().invoke(main, ["serve", "--bind", bind])
    assert busy.exit_code == 2
    assert busy.stderr.splitlines() == [
        f"watcher: error: cannot listen on {bind}: Address already in use"
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_watcher_serve_runs_read_only_and_stops_gracefully_on_sigterm(
    store: Store, db_url: str, dialect: str, home: Path
) -> None:
    watch = edited_history(store)
    port = free_port()
    env = {**os.environ, "WATCHER_HOME": str(home), "WATCHER_DATABASE_URL": db_url}
    env.pop("WATCHER_SERVE_TOKEN", None)
    command = [str(Path(sys.executable).parent / "watcher"), "serve", "--bind", f"127.0.0.1:{port}"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        origin = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(origin + "/api/search", params={"q": "Geneva"}, timeout=5)
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert [i["seq"] for i in response.json()["items"]] == [2, 1]
        refused = httpx.post(origin + f"/api/watches/{watch.id}/pause", timeout=5)
        assert refused.status_code == 403
        # the index: a file beside a SQLite database, a table in a PostgreSQL one
        assert (home / INDEX_NAME).is_file() == (dialect == "sqlite")
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    # uvicorn shuts down gracefully, then ends by the signal it got, as systemd expects
    assert process.returncode in (0, -signal.SIGTERM), err.decode()
    assert "Application shutdown complete" in err.decode()
    assert f"serving http://127.0.0.1:{port}/ (read-only)" in out.decode()
    assert db_url not in (out + err).decode()


# -- what changed, in the pages and the API ---------------------------------------------------


def test_the_article_and_version_pages_show_what_each_change_did(served: Served) -> None:
    watch = edited_history(served.store)
    versions = served.store.versions(watch.id)
    article = served.get(f"/articles/{watch.id}").text
    # the removed sentence and the edited word, marked up as the reports mark them
    assert f'<span class="label">before</span>{REMOVED}, officials said.</p>' in article
    assert "<del>Geneva</del>" in article and "<ins>Vienna</ins>" in article
    assert article.count('<details class="report" open>') == 2  # both edits open
    version = served.get(f"/versions/{versions[2].id}").text
    assert "What changed since version 2" in version
    assert "<del>Geneva</del>" in version and "<ins>Vienna</ins>" in version
    first = served.get(f"/versions/{versions[0].id}").text
    assert 'class="report"' not in first  # the first capture changed nothing


def test_the_api_gives_each_change_its_full_record(served: Served) -> None:
    watch = edited_history(served.store)
    changes = served.get("/api/changes").json()["items"]
    assert [len(c["record"]["items"]) >= 1 for c in changes] == [True, True]
    removed = changes[0]["record"]["items"]
    assert any(REMOVED in json.dumps(item, ensure_ascii=False) for item in removed)
    versions = served.store.versions(watch.id)
    detail = served.get(f"/api/versions/{versions[1].id}").json()
    assert detail["change"]["record"]["schema"] >= 1 and detail["time_basis"] == "captured"
    listed = served.get(f"/api/articles/{watch.id}/versions").json()["items"]
    assert all("record" not in (v["change"] or {}) for v in listed)  # lists stay small


def test_a_poller_resumes_from_poll_cursor_and_gets_only_what_is_new(served: Served) -> None:
    edited_history(served.store)
    first = served.get("/api/changes").json()
    assert first["next_cursor"] is None and first["poll_cursor"]
    again = served.get("/api/changes", params={"cursor": first["poll_cursor"]}).json()
    assert again["items"] == [] and again["poll_cursor"] == first["poll_cursor"]
    edited_history(served.store, url="https://news.example/world/second")
    new = served.get("/api/changes", params={"cursor": first["poll_cursor"]}).json()
    assert {c["url"] for c in new["items"]} == {"https://news.example/world/second"}
    # of one kind: the changes looked at and skipped are not looked at again
    titled = served.get("/api/changes", params={"kind": "title"}).json()
    assert len(titled["items"]) == 2 and titled["poll_cursor"] == new["poll_cursor"]


def test_a_mistyped_parameter_is_a_400_not_an_empty_list(served: Served) -> None:
    edited_history(served.store)
    for path, params in (
        ("/api/changes", {"kind": "bogus"}),
        ("/api/watches", {"state": "bogus"}),
        ("/api/search", {"q": "Geneva", "cursor": "zzz"}),
        ("/api/search", {"q": ""}),
        ("/api/search", {"q": "Geneva", "kind": "bogus"}),
    ):
        response = served.get(path, params=params)
        assert response.status_code == 400, (path, params, response.text)
        assert response.json()["error"]
    page = served.get("/search", params={"q": "Geneva", "cursor": "zzz"})
    assert page.status_code == 200 and "bad cursor" in page.text  # said beside the form
    assert served.get("/", params={"kind": "bogus"}).status_code == 400
