"""Command start-up and bulk add: wall time of the ``watcher`` command itself.

Run: .venv/bin/python bench/bench_cli.py [--runs 7] [--watches 1000] [--urls 10000]
Targets (issue 12): ``--help`` and ``list`` (1,000 watches, SQLite) in 0.25 s;
``add --from-file`` of 10,000 new URLs in 2 s.

Each command runs as a fresh process, the way a user or a script starts it,
so the figures include the interpreter and every import; the median of
``--runs`` runs is printed, with the slowest imports of one ``-X importtime``
run, so a regression names the module that brought it. The URLs added are
host names (news.example.com): ``add`` fetches nothing and resolves no name
(only an address written out, http://10.0.0.1/, is judged at add time).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The console script pip installed: what a user runs (``python -m`` would not
#: find ``watcher.cli``'s entry point).
SCRIPT = str(Path(sys.executable).with_name("watcher"))
WATCHER = [sys.executable, SCRIPT]
#: Imports shown per command: the cumulative time of these names is the answer
#: to "where does start-up go".
TOP_IMPORTS = 6
#: The heavy libraries a light command should not load; printed if it does.
HEAVY = ("sqlalchemy", "alembic", "httpx", "lxml", "apprise", "dateparser", "apscheduler")


def run(args: list[str], env: dict[str, str]) -> float:
    """Seconds of wall time for one run of ``watcher ARGS``; a failure stops the bench."""
    started = time.perf_counter()
    done = subprocess.run([*WATCHER, *args], env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"watcher {' '.join(args)} failed ({done.returncode}): {done.stderr[-500:]}")
    return took


def _python(code: str) -> float:
    """Seconds of wall time for this interpreter to run ``code``: the
    machine's own start-up floor, to read the command figures against."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    return time.perf_counter() - started


def import_profile(
    args: list[str], env: dict[str, str]
) -> tuple[list[tuple[float, str]], set[str]]:
    """The libraries that cost most to import (cumulative ms) in one run, and
    which :data:`HEAVY` ones it loaded.

    ``-X importtime`` lists each module after the ones it imported, indented
    by depth; a library is charged the cumulative time of the outermost
    imports of it (the first module of it that a module of another package
    asked for), so sqlalchemy's figure includes everything sqlalchemy pulled in.
    """
    done = subprocess.run(
        [sys.executable, "-X", "importtime", SCRIPT, *args],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    rows: list[tuple[int, int, str]] = []  # (depth, cumulative us, module)
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        if not cumulative.strip().isdigit():
            continue
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        rows.append((depth, int(cumulative), name.strip()))
    per_package: dict[str, float] = {}
    outer: list[str] = []  # the packages of the current row's ancestors
    for depth, cumulative, name in reversed(rows):  # parents first
        del outer[depth:]
        package = name.split(".")[0]
        if package not in outer:
            per_package[package] = per_package.get(package, 0) + cumulative / 1000
        outer.append(package)
    loaded = {p for p in per_package if p in HEAVY}
    ranked = sorted(((ms, p) for p, ms in per_package.items() if p != "watcher"), reverse=True)
    everything = (per_package.get("watcher", 0.0), "watcher and all it imported")
    return [everything, *ranked[:TOP_IMPORTS]], loaded


def seed(home: Path, env: dict[str, str], watches: int) -> None:
    """A data folder with ``watches`` watches (one bulk add)."""
    urls = home.parent / "seed.txt"
    urls.write_text("".join(f"https://news.example.com/seed/{i}\n" for i in range(watches)))
    run(["add", "--from-file", str(urls)], env)


def report(
    label: str, seconds: list[float], profile: tuple[list[tuple[float, str]], set[str]] | None
) -> None:
    print(f"{label:<32} median {statistics.median(seconds) * 1000:7.0f} ms  "
          f"(min {min(seconds) * 1000:.0f}, max {max(seconds) * 1000:.0f}, n={len(seconds)})")  # fmt: skip
    if profile is None:
        return
    imports, heavy = profile
    print(f"{'':<32} heavy libraries loaded: {', '.join(sorted(heavy)) or 'none'}")
    for ms, name in imports:
        print(f"{'':<32}   {ms:7.1f} ms  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--watches", type=int, default=1000)
    parser.add_argument("--urls", type=int, default=10_000)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        home = Path(tmp) / "home"
        env = {**os.environ, "WATCHER_HOME": str(home), "PYTHONPATH": str(ROOT)}
        env.pop("WATCHER_CONFIG", None)
        env.pop("WATCHER_DATABASE_URL", None)
        seed(home, env, opts.watches)
        print(f"{opts.runs} runs each; data folder: SQLite, {opts.watches} watches")
        # The targets are seconds, which depend on the machine: these say how fast it is.
        for label, code in (
            ("python -c pass", "pass"),
            ("python -c 'import click'", "import click"),
        ):
            bare = [_python(code) for _ in range(opts.runs)]
            print(f"reference: {label:<21} median {statistics.median(bare) * 1000:7.0f} ms")
        print()
        print("below each: import times of one run (-X importtime, cumulative: a")
        print("library's figure includes what it imported; the first covers them all)\n")
        for label, args in (
            ("watcher --help", ["--help"]),
            ("watcher --version", ["--version"]),
            (f"watcher list ({opts.watches})", ["list"]),
            ("watcher status", ["status"]),
        ):
            report(label, [run(args, env) for _ in range(opts.runs)], import_profile(args, env))
        # Every run adds new URLs (an add of URLs already there is another path).
        add_times: list[float] = []
        for n in range(opts.runs):
            batch = Path(tmp) / f"urls-{n}.txt"
            batch.write_text(
                "".join(f"https://news.example.com/a/{n}/{i}\n" for i in range(opts.urls))
            )
            add_times.append(run(["add", "--from-file", str(batch)], env))
        again = Path(tmp) / "urls-0.txt"  # all already watched: the re-add path
        readd = [run(["add", "--from-file", str(again)], env) for _ in range(3)]
        report(f"watcher add --from-file ({opts.urls})", add_times,
               import_profile(["add", "--from-file", str(again)], env))  # fmt: skip
        report(f"  the same URLs again ({opts.urls})", readd, None)


if __name__ == "__main__":
    main()
