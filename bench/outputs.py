"""Write every output watcher derives from the corpus into one folder.

    python bench/outputs.py OUT_DIR

Two revisions' folders compared with ``diff -r`` show whether a change of
code changed what users see: the parsed article of every corpus snapshot
(``watcher show --json``), the change between every corpus pair in each
report format (``watcher diff``), the whole corpus imported (history,
exported archive, report files) and the offline demo's reports. It drives
the CLI only, so it works across internal refactorings. Prints the number
of files written.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

from click.testing import CliRunner

from bench._common import corpus_or_exit
from watcher.cli import main

_PORT = re.compile(r"127\.0\.0\.1(:|%3A|_)\d+")
_LOCAL_DIR = re.compile(r"(127\.0\.0\.1/[^/]*-)[0-9a-f]{8}")
_VOLATILE = re.compile(r'"(next_check_at|created_at)": "[^"]*"')
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ .*\n|^.*\r.*\n", re.MULTILINE)


def _run(runner: CliRunner, *args: str, home: Path | None = None) -> str:
    env = {"WATCHER_HOME": str(home)} if home else {}
    result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
    return f"exit {result.exit_code}\n{result.output}"


def _write(out: Path, relative: str, text: str) -> None:
    path = out / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_PORT.sub(r"127.0.0.1\1PORT", text), encoding="utf-8")


def _tree(out: Path, prefix: str, root: Path) -> None:
    """Each file under ``root`` as its text (paths with the port masked)."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = _PORT.sub(r"127.0.0.1\1PORT", path.relative_to(root).as_posix())
        relative = _LOCAL_DIR.sub(r"\1HASH", relative)  # the folder hash covers the port
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = f"binary sha256 {hashlib.sha256(data).hexdigest()}"
        _write(out, f"{prefix}/{relative}", text)


def main_(out: Path) -> int:
    corpus = corpus_or_exit()
    runner = CliRunner()
    for path in sorted((corpus / "snapshots").rglob("*.md")):
        rel = path.relative_to(corpus).as_posix()
        _write(out, f"show/{rel}.json", _run(runner, "show", str(path), "--json"))
    for pair in sorted(p for p in (corpus / "pairs").iterdir() if p.is_dir()):
        old, new = str(pair / "v1.md"), str(pair / "v2.md")
        for fmt in ("json", "md", "html", "text"):
            text = _run(runner, "diff", old, new, "--format", fmt)
            _write(out, f"diff/{pair.name}.{fmt}", text)
    work = out.parent / f".{out.name}-work"
    if work.exists():
        raise SystemExit(f"{work} exists; remove it first")
    home = work / "home"
    summary = _run(runner, "import", str(corpus), home=home)
    _write(out, "import/summary.txt", _LOG_LINE.sub("", summary))
    listing = _run(runner, "list", "--json", home=home)
    _write(out, "import/list.json", _VOLATILE.sub("", listing))
    for n, url in enumerate(sorted(set(re.findall(r'"url": "([^"]+)"', listing)))):
        _write(
            out, f"import/history/{n:03d}.json", _run(runner, "history", url, "--json", home=home)
        )
    _run(runner, "export", str(work / "export"), home=home)
    _tree(out, "import/export", work / "export")
    _tree(out, "import/archive", home / "archive")
    _run(runner, "demo", "--keep", str(work / "demo"), "--format", "md")
    _tree(out, "demo/reports", work / "demo" / "reports")
    _tree(out, "demo/archive", work / "demo" / "archive")
    count = sum(1 for p in out.rglob("*") if p.is_file())
    print(f"{count} files written to {out}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main_(Path(sys.argv[1])))
