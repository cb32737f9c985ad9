"""Import throughput: the whole corpus, then a generated tree of 20,000 snapshot files.

Run: .venv/bin/python bench/bench_import.py [--files 20000] [--jobs 2]
Target (issue 5): at least 300 files per second including parsing and
diffing, memory flat (not growing with the number of files).

The generated tree is built in a temporary folder from the corpus snapshots:
each article gets five versions a few minutes apart, as a newsroom edits:
the capture (relative times such as "14 分钟前" then tick), a paragraph
edited, a paragraph inserted, the title edited. RSS is sampled for this
process and its worker processes (from /proc) as the import runs.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from _common import corpus_or_exit, peak_rss_mb

from watcher import snapshot
from watcher.errors import SnapshotFormatError
from watcher.importer import DEFAULT_WORKERS, import_paths
from watcher.models import Snapshot
from watcher.store import Store, upgrade

_MINUTES_AGO = re.compile(r"(\d+) 分钟前")
_PARAGRAPH = re.compile(r"<p[^>]*>([^<]{8,})</p>")
STEP_MS = 7 * 60_000


class RssSampler:
    """Progress sink that samples resident memory (this process + workers)."""

    def __init__(self) -> None:
        self.every, self.done = 1, 0
        self.samples: list[tuple[str, int, float, float]] = []
        self.phase_name = ""

    def phase(self, name: str, total: int) -> None:
        self.phase_name, self.done = name, 0
        self.every = max(1, total // 10)

    def advance(self, n: int = 1) -> None:
        before, self.done = self.done, self.done + n
        if before // self.every != self.done // self.every:
            self.samples.append((self.phase_name, self.done, *tree_rss_mb()))


def tree_rss_mb() -> tuple[float, float]:
    """(RSS of this process, RSS of its descendants) in MB, from /proc."""
    own = _rss_kb(Path("/proc/self/status"))
    kids = sum(_rss_kb(Path(f"/proc/{pid}/status")) for pid in _descendants("self"))
    return own / 1024, kids / 1024


def _rss_kb(status: Path) -> int:
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(pid: str) -> list[str]:
    out: list[str] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids = task.read_text().split()
        except OSError:
            continue
        for kid in kids:
            out += [kid, *_descendants(kid)]
    return out


def run_import(label: str, paths: list[Path], jobs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        home = Path(tmp)
        url = f"sqlite:///{home}/watcher.db"
        upgrade(url)
        store = Store.open(url)
        sampler = RssSampler()
        started = time.perf_counter()
        summary = import_paths(store, home / "archive", paths, workers=jobs, progress=sampler)
        seconds = time.perf_counter() - started
        store.close()
        db = (home / "watcher.db").stat().st_size / 1e6
        archive = sum(f.stat().st_size for f in (home / "archive").rglob("*.md")) / 1e6
    print(f"== {label}")
    print(f"files: {summary.files}, articles: {summary.articles}, versions added: "
          f"{summary.versions_added}, changes: {summary.changes_added}, "
          f"rejected: {len(summary.rejected)}")  # fmt: skip
    print(f"total: {seconds:.1f} s, {summary.files / seconds:.0f} files/s ({jobs} workers)")
    print(f"database: {db:.1f} MB (SQLite), archive files: {archive:.1f} MB")
    print(f"peak RSS of the main process: {peak_rss_mb():.0f} MB")
    print("RSS during the run (phase, files done, main MB, workers MB):")
    for phase, done, own, kids in sampler.samples:
        print(f"  {phase:16} {done:>6}  {own:6.0f}  {kids:6.0f}")


def generate_tree(corpus: Path, target: Path, files: int) -> int:
    """Five versions per article, built from the corpus snapshots in turn."""
    bases = []
    for path in sorted((corpus / "snapshots").glob("*/*.md")):
        try:
            bases.append(snapshot.read(path))
        except SnapshotFormatError:
            continue
    written = 0
    article = 0
    while written < files:
        base = bases[article % len(bases)]
        folder = target / f"{article % 97:02d}" / f"article-{article}"
        folder.mkdir(parents=True, exist_ok=True)
        url = f"{base.url.split('?')[0].rstrip('/')}/bench-{article}"
        start = base.captured_at or 1_600_000_000_000
        for n, snap in enumerate(_versions(replace(base, url=url, captured_at=start))):
            if written >= files:
                break
            (folder / f"v{n}.md").write_text(snapshot.render(snap), encoding="utf-8")
            written += 1
        article += 1
    return written


def _versions(snap: Snapshot) -> list[Snapshot]:
    assert snap.captured_at is not None
    t = snap.captured_at
    ticked = replace(
        snap,
        body=_MINUTES_AGO.sub(lambda m: f"{int(m.group(1)) + 7} 分钟前", snap.body),
        captured_at=t + STEP_MS,
    )
    edited = replace(ticked, body=_edit_paragraph(ticked.body), captured_at=t + 2 * STEP_MS)
    inserted = replace(edited, body=_insert_paragraph(edited.body), captured_at=t + 3 * STEP_MS)
    retitled = replace(inserted, title=inserted.title + "（更新）", captured_at=t + 4 * STEP_MS)
    return [snap, ticked, edited, inserted, retitled]


def _edit_paragraph(body: str) -> str:
    m = _PARAGRAPH.search(body)
    if m is None:
        return body + "<p>更正：本文已更新。</p>"
    text = m.group(1)
    cut = len(text) // 2
    return body[: m.start(1)] + text[:cut] + "（更正）" + text[cut:] + body[m.end(1) :]


def _insert_paragraph(body: str) -> str:
    marks = [m.end() for m in re.finditer(r"</p>", body)]
    at = marks[len(marks) // 2] if marks else len(body)
    return body[:at] + "<p>新增段落：当局周二晚间发表声明，回应外界质疑。</p>" + body[at:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--jobs", type=int, default=DEFAULT_WORKERS)
    args = parser.parse_args()
    corpus = corpus_or_exit()
    run_import("whole corpus (snapshots + pairs)", [corpus / "snapshots", corpus / "pairs"],
               args.jobs)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-tree-") as tmp:
        started = time.perf_counter()
        count = generate_tree(corpus, Path(tmp), args.files)
        print(f"generated {count} files in {time.perf_counter() - started:.1f} s")
        run_import(f"generated tree ({count} files, 5 versions per article)", [Path(tmp)],
                   args.jobs)  # fmt: skip


if __name__ == "__main__":
    main()
