"""The WARC log: every fetch written as received (a real server on 127.0.0.1,
the real pipeline, warcio reading the files back and ``warcio check`` passing)."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from tests.support.env import PipelineEnv, make_env
from tests.support.http_server import LocalServer, Request
from tests.support.newsroom import ARTICLE_PATH, LEAD, SEED, Newsroom
from watcher import snapshot, warc
from watcher.fetch import Fetcher
from watcher.pipeline import Pipeline
from watcher.store import QuietCheck, Store

ARTICLE = snapshot.read(SEED)
OLD_PATH = "/old-link"
OTHER_PATH = "/news/other"


class Room(Newsroom):
    """The newsroom's page, gzip-compressed as a real news site sends it."""

    def respond(self, req: Request) -> None:
        with self.lock:
            page = self.page().encode("utf-8")
        req.respond(200, gzip.compress(page, mtime=0), headers={"Content-Encoding": "gzip"})

    def served(self) -> bytes:
        with self.lock:
            return gzip.compress(self.page().encode("utf-8"), mtime=0)


@pytest.fixture
def room() -> Room:
    return Room(title=ARTICLE.title, main=ARTICLE.body)


@pytest.fixture
def site(room: Room) -> Iterator[LocalServer]:
    with LocalServer() as server:
        server.route(ARTICLE_PATH, room.respond)
        server.route(OTHER_PATH, room.respond)
        server.redirect(OLD_PATH, ARTICLE_PATH)
        yield server


@pytest.fixture
def env(store: Store, db_url: str, tmp_path: Path, site: LocalServer) -> PipelineEnv:
    return make_env(PipelineEnv, store, db_url, tmp_path, site)


def records(folder: Path) -> list[Any]:
    """Every record of the folder's WARC files (each read whole, digests checked)."""
    out = []
    for path in warc.warc_files(folder):
        with open(path, "rb") as f:
            for record in ArchiveIterator(f, check_digests="raise"):
                record.payload = record.content_stream().read()
                out.append(record)
    return out


def raw_payload(path: Path, record_id: str) -> bytes:
    """The payload of a response record as stored (not content-decoded)."""
    with open(path, "rb") as f:
        for record in ArchiveIterator(f):
            if record.rec_headers.get_header("WARC-Record-ID") == record_id:
                return bytes(record.raw_stream.read())
    raise AssertionError(f"no record {record_id}")


def warcio_check(*paths: Path) -> subprocess.CompletedProcess[str]:
    tool = Path(sys.executable).with_name("warcio")
    return subprocess.run(
        [str(tool), "check", *map(str, paths)], capture_output=True, text=True, check=False
    )


def test_a_fetch_is_recorded_as_received_with_its_redirect_hop(
    env: PipelineEnv, room: Room
) -> None:
    url = env.add(OLD_PATH)
    env.check(url)
    folder = env.settings.warc_dir
    kinds = [(r.rec_type, r.http_headers.statusline if r.http_headers else None)
             for r in records(folder)]  # fmt: skip
    assert kinds == [
        ("warcinfo", None),
        ("response", "301 Moved Permanently"),
        ("request", f"{OLD_PATH} HTTP/1.1"),
        ("response", "200 OK"),
        ("request", f"{ARTICLE_PATH} HTTP/1.1"),
    ]
    _, hop, _, page, request = records(folder)
    assert hop.rec_headers.get_header("WARC-Target-URI") == url
    assert page.rec_headers.get_header("WARC-Target-URI") == env.site.url(ARTICLE_PATH)
    assert page.rec_headers.get_header("WARC-IP-Address") == "127.0.0.1"
    assert page.rec_headers.get_header("X-Watcher-Watch") == url
    assert page.http_headers.get_header("Content-Encoding") == "gzip"
    assert request.rec_headers.get_header("WARC-Concurrent-To") == page.rec_headers.get_header(
        "WARC-Record-ID"
    )
    assert request.http_headers.protocol == "GET"
    assert request.http_headers.get_header("Accept-Encoding")  # the headers watcher sent
    # the body as the server sent it: the gzip bytes, not the page they inflate to
    [path] = warc.warc_files(folder)
    stored = raw_payload(path, page.rec_headers.get_header("WARC-Record-ID"))
    assert stored == room.served()
    assert page.payload.decode("utf-8") == room.page()  # what a replay tool shows
    # the version names its record
    [version] = env.versions(url)
    assert version.evidence.warc_record_id == page.rec_headers.get_header("WARC-Record-ID")
    assert version.evidence.warc_file == path.name
    assert warcio_check(path).returncode == 0


def test_an_unchanged_refetch_writes_a_revisit_not_the_body_again(
    env: PipelineEnv, room: Room
) -> None:
    url = env.add(ARTICLE_PATH)
    env.check(url)  # a process of its own: the revisit is found through the version
    env.clock.advance(minutes=30)
    env.check(url)
    responses = [r for r in records(env.settings.warc_dir) if r.rec_type != "request"]
    first = next(r for r in responses if r.rec_type == "response")
    revisit = next(r for r in responses if r.rec_type == "revisit")
    assert revisit.rec_headers.get_header("WARC-Refers-To") == first.rec_headers.get_header(
        "WARC-Record-ID"
    )
    assert revisit.rec_headers.get_header("WARC-Payload-Digest") == first.rec_headers.get_header(
        "WARC-Payload-Digest"
    )
    assert revisit.rec_headers.get_header("WARC-Profile").endswith("identical-payload-digest")
    assert revisit.payload == b""  # headers only
    assert len(env.versions(url)) == 1
    # an edit is a new payload: written in full
    room.edit(LEAD, "预计将持续约三个小时。")
    env.check(url)
    kinds = [r.rec_type for r in records(env.settings.warc_dir) if r.rec_type != "request"]
    assert kinds.count("response") == 2
    assert warcio_check(*warc.warc_files(env.settings.warc_dir)).returncode == 0


def test_one_process_writes_one_file_and_a_sorted_cdxj_index(env: PipelineEnv) -> None:
    urls = [env.add(ARTICLE_PATH), env.add(OTHER_PATH), env.add(OLD_PATH)]

    async def run() -> None:
        async with Fetcher(env.fetch) as fetcher:
            pipeline = Pipeline(env.store, fetcher, env.settings, clock=env.clock)
            for url in urls:
                await pipeline.check(env.watch(url))
            for url in urls:
                await pipeline.check(env.watch(url))  # remembered: revisits
            pipeline.close()

    asyncio.run(run())
    [path] = warc.warc_files(env.settings.warc_dir)
    index = path.with_name(path.name.removesuffix(warc.SUFFIX) + warc.INDEX_SUFFIX)
    lines = index.read_text().splitlines()
    assert lines == sorted(lines)
    assert len(lines) == 8  # 2 × (two pages + one hop + the page it led to)
    mimes, statuses = [], []
    for line in lines:
        key, stamp, fields = line.split(" ", 2)
        entry = json.loads(fields)
        assert key.startswith("1,0,0,127:") and ")/" in key  # SURT of 127.0.0.1:port
        assert len(stamp) == 14 and stamp.isdigit()
        assert entry["filename"] == path.name
        member = warc.read_member(
            path.parent, path.name, int(entry["offset"]), int(entry["length"])
        )
        assert member is not None
        [record] = list(ArchiveIterator(io.BytesIO(member)))
        assert record.rec_headers.get_header("WARC-Target-URI") == entry["url"]
        mimes.append(entry["mime"])
        statuses.append(entry["status"])
    # the hop's target is the first page's URL, already recorded: a revisit in
    # round one; in round two every 200 is (a 301 is written whole, it is tiny)
    assert mimes.count("warc/revisit") == 4
    assert statuses.count("301") == 2
    assert warcio_check(path).returncode == 0


def test_export_warc_of_one_url_keeps_its_fetches_and_what_they_revisit(
    env: PipelineEnv, tmp_path: Path
) -> None:
    url, other = env.add(ARTICLE_PATH), env.add(OTHER_PATH)
    for _ in range(2):
        env.check(url)
        env.check(other)
        env.clock.advance(minutes=30)
    out = tmp_path / "evidence"
    result = env.cli("export", "--warc", str(out), "--url", url)
    assert result.exit_code == 0, result.output
    assert "wrote 4 WARC records" in result.output
    [exported] = warc.warc_files(out)
    got = records(out)
    assert {r.rec_headers.get_header("WARC-Target-URI") for r in got} == {url}
    assert sorted(r.rec_type for r in got) == ["request", "request", "response", "revisit"]
    assert warcio_check(exported).returncode == 0
    index = out / exported.name.replace(warc.SUFFIX, warc.INDEX_SUFFIX)
    assert len(index.read_text().splitlines()) == 2


def test_warc_off_writes_no_files(
    store: Store, db_url: str, tmp_path: Path, site: LocalServer
) -> None:
    env = make_env(PipelineEnv, store, db_url, tmp_path, site)
    env.settings = dataclasses.replace(env.settings, warc=False)
    url = env.add(ARTICLE_PATH)
    env.check(url)
    assert warc.warc_files(env.settings.warc_dir) == []
    [version] = env.versions(url)
    assert version.evidence.warc_file is None
    assert version.evidence.chain_hash is not None  # the chain still holds the snapshot


def test_a_fetch_asked_not_to_record_keeps_no_exchanges(env: PipelineEnv) -> None:
    """Feed and section-page polls are not evidence: their bodies are not taped."""
    url = env.site.url(OLD_PATH)

    async def both() -> tuple[int, int]:
        async with Fetcher(env.settings.fetch_settings()) as fetcher:
            recorded = await fetcher.fetch(url)
            unrecorded = await fetcher.fetch(url, record=False)
        return len(recorded.exchanges), len(unrecorded.exchanges)

    assert env.settings.fetch_settings().record
    assert asyncio.run(both()) == (2, 0)  # the redirect hop and the page; then nothing


def test_after_a_restart_the_quiet_path_looks_up_the_prior_record_off_the_event_loop(
    env: PipelineEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon writes unchanged checks from the event loop (a sink); the
    first one of a watch after a start needs its last WARC record from the
    database, which must not stall the loop: it goes to a worker thread."""
    url = env.add(ARTICLE_PATH)
    env.check(url)  # a first process: the version names its record
    lookups: list[str] = []
    latest = env.store.latest_version

    def spy(watch_id: int) -> Any:
        lookups.append(threading.current_thread().name)
        return latest(watch_id)

    monkeypatch.setattr(env.store, "latest_version", spy)
    sunk: list[QuietCheck] = []

    async def restarted() -> None:  # a second process, two unchanged checks
        async with Fetcher(env.fetch) as fetcher:
            pipeline = Pipeline(env.store, fetcher, env.settings, clock=env.clock)
            pipeline.quiet_sink = sunk.append
            for _ in range(2):
                env.clock.advance(minutes=30)
                await pipeline.check(env.watch(url))
            pipeline.close()

    asyncio.run(restarted())
    assert len(lookups) == 1 and threading.main_thread().name not in lookups
    assert len(sunk) == 2  # both checks written by the sink, in its batches
    kept = [r for r in records(env.settings.warc_dir) if r.rec_type in {"response", "revisit"}]
    first, *revisits = kept
    assert [r.rec_type for r in revisits] == ["revisit", "revisit"]
    assert {r.rec_headers.get_header("WARC-Refers-To") for r in revisits} == {
        first.rec_headers.get_header("WARC-Record-ID")
    }
