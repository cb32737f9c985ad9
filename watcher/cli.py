"""The ``watcher`` command: a thin click layer over the modules below it.

Every command turns a WatcherError (or an OSError) into exactly one line on
stderr, ``watcher: error: ...``, and exit status 2; nothing here prints a
stack trace for bad input.

Everything printed passes through :mod:`watcher.safetext` (``_say`` for one
line, ``_show`` for a block, ``_show_json``): titles, page text, URLs and file
names come from strangers, and escape sequences, control characters and bidi
overrides in them must not reach the terminal.

Start-up is part of the interface: this module imports only click and the
settings, and each command imports what it needs when it runs, so no command
pays for the libraries of another (SQLAlchemy, httpx, lxml, dateparser,
Apprise; tests/test_cli.py checks it) and ``watcher --help`` answers in under
0.1 s. ``bench/bench_cli.py`` prints the figures.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo

import click

from watcher import __version__
from watcher.errors import ConfigError, WatcherError
from watcher.logs import configure as configure_logging
from watcher.models import Article, BlockKind, Snapshot, TimeBasis
from watcher.safetext import escape_unsafe, for_colour_terminal, for_terminal, one_line
from watcher.settings import (
    CONFIG_NAME,
    DEFAULT_BIND,
    Settings,
    format_duration,
    parse_bind,
    parse_duration,
)

if TYPE_CHECKING:
    from tqdm import tqdm

    from watcher import api
    from watcher.discovery import PollResult
    from watcher.feedmeta import Note
    from watcher.store import DeliveryRecord, Keep, SourceRecord, WatchSummary

F = TypeVar("F", bound=Callable[..., Any])
EXIT_ERROR = 2
#: sysexits' EX_CONFIG: ``watcher run`` cannot start with these settings or this
#: config file (the unit file tells systemd not to restart on it).
EXIT_CONFIG = 78


def _say(text: str, *, err: bool = False) -> None:
    """Print one line, made safe (no escapes, controls, bidi overrides, line breaks)."""
    click.echo(one_line(text), err=err)


def _show(text: str, *, nl: bool = True) -> None:
    """Print a block of lines, made safe (line breaks and tabs kept)."""
    click.echo(for_terminal(text), nl=nl)


def _show_json(value: Any) -> None:
    """Print JSON; unsafe characters in strings become ``\\uXXXX`` escapes,
    valid JSON that keeps the data and that no terminal obeys."""
    click.echo(escape_unsafe(json.dumps(value, ensure_ascii=False, indent=2, default=str)))


def _fail(message: str, *, status: int = EXIT_ERROR) -> NoReturn:
    """``watcher: error: MESSAGE`` as exactly one line on stderr; exit 2."""
    click.echo(f"watcher: error: {one_line(message)}", err=True)
    sys.exit(status)


def _os_error(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else ""
    return f"{where}: {exc.strerror}" if where and exc.strerror else str(exc)


def fail_cleanly(func: F) -> F:
    """Report a WatcherError or OSError as one line and exit 2, the diff(1) convention."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except WatcherError as exc:
            _fail(str(exc))
        except OSError as exc:
            _fail(_os_error(exc))

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
# the version the package states, not its installed metadata: importlib.metadata
# would add 10-15 ms to every start (tests/test_cli.py checks that they agree)
@click.version_option(__version__, package_name="watcher")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data folder (default: $WATCHER_HOME or the platform data dir).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Config file (default: $WATCHER_CONFIG, else watcher.toml in the data folder).",
)
@click.pass_context
def main(ctx: click.Context, home: Path | None, config_path: Path | None) -> None:
    """Watch news articles, archive every version, and report what changed.

    \b
    Example:
      watcher add https://www.bbc.com/zhongwen/simp/world-59301487
      watcher run            # the daemon (or: systemctl start watcher)
      watcher history https://www.bbc.com/zhongwen/simp/world-59301487
    """
    if ctx.invoked_subcommand == "config":
        return  # `watcher config check` reports a bad file as its finding (exit 1)
    try:
        settings = Settings.from_env(home=home, config_path=config_path)
        configure_logging(_log_level(settings, ctx.invoked_subcommand), settings.log_format)
    except WatcherError as exc:
        # the daemon says "fix the configuration" to systemd: no restart loop
        _fail(str(exc), status=EXIT_CONFIG if ctx.invoked_subcommand == "run" else EXIT_ERROR)
    ctx.obj = settings
    _CLOCK.use(settings.timezone)


class _Clock:
    """The zone the CLI shows times in: WATCHER_TIMEZONE, else TZ, else UTC
    (Settings.from_env), named wherever times are printed. JSON stays UTC."""

    def __init__(self) -> None:
        self.zone: ZoneInfo | None = None
        self.label = "UTC"

    def use(self, name: str) -> None:
        self.zone = None if name == "UTC" else ZoneInfo(name)
        self.label = name

    def minutes(self, ms: int) -> str:
        """``2026-01-31 08:00`` in the zone."""
        when = datetime.fromtimestamp(ms / 1000, UTC)
        return (when.astimezone(self.zone) if self.zone else when).strftime("%Y-%m-%d %H:%M")

    def full(self, ms: int) -> str:
        """``2026-01-31 08:00:00 +08:00 Asia/Shanghai`` (or ``… UTC``)."""
        when = datetime.fromtimestamp(ms / 1000, UTC)
        if self.zone is None:
            return f"{when:%Y-%m-%d %H:%M:%S} UTC"
        local = when.astimezone(self.zone)
        offset = local.strftime("%z")
        return f"{local:%Y-%m-%d %H:%M:%S} {offset[:3]}:{offset[3:]} {self.label}"


_CLOCK = _Clock()


#: Commands whose INFO log lines are their progress (the daemon's log, an
#: import's phases); every other command prints its own result, and its INFO
#: lines (a schema upgraded, a source polled) would only clutter the terminal.
_LOGGING_COMMANDS = frozenset({"run", "import", "db"})


def _log_level(settings: Settings, command: str | None) -> str:
    if command in _LOGGING_COMMANDS or settings.log_level.upper() != "INFO":
        return settings.log_level
    return "WARNING"


def _settings(ctx: click.Context) -> Settings:
    return ctx.find_object(Settings)  # type: ignore[return-value]


# -- config file ------------------------------------------------------------------
@main.group("config")
def config_group() -> None:
    """The config file, watcher.toml (see the README's "The config file").

    \b
    Example:
      watcher config check
    """


@config_group.command("check")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def config_check(ctx: click.Context, file: Path | None) -> None:
    """Check FILE (default: the config file watcher would read) together with
    the environment: a summary and exit 0, or the first problem as
    FILE:LINE: KEY: what is wrong, and exit 1.

    \b
    Example:
      watcher config check /etc/watcher/watcher.toml
    """
    options = ctx.find_root().params
    try:
        settings = Settings.from_env(
            home=options["home"], config_path=file or options["config_path"]
        )
    except WatcherError as exc:
        _say(str(exc))
        sys.exit(1)
    except OSError as exc:
        _say(_os_error(exc))
        sys.exit(1)
    config = settings.config
    if config.path is None:
        _say(f"no config file ({settings.home / CONFIG_NAME} does not exist); nothing to check")
        return
    # Apprise alone knows its URL schemes: build the channels as the daemon will.
    from watcher.notify.channels import build_channels  # Apprise is slow to import

    try:
        build_channels(config, settings)
    except WatcherError as exc:
        _say(str(exc))
        sys.exit(1)
    counts = (
        (len(config.channels), "channel"),
        (len(config.routes), "route"),
        (len(config.sources), "source"),
        (len(config.sites), "site rule"),
    )
    summary = ", ".join(f"{n} {noun}{'' if n == 1 else 's'}" for n, noun in counts)
    _say(f"{config.path}: ok ({summary})")


@main.command()
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print the parsed article as JSON.")
@click.option("--version", "seq", type=click.IntRange(min=1),
              help="With a watched URL: its version N (default: the latest).")  # fmt: skip
@click.option("--at", "at",
              help="With a watched URL: the version current at this time (2026-01-31 or "
                   "2026-01-31T08:00, UTC unless it says +08:00).")  # fmt: skip
@fail_cleanly
def show(target: str, as_json: bool, seq: int | None, at: str | None) -> None:
    """Print the article a snapshot file holds, or a watched URL as it was.

    TARGET is a snapshot file, or a watched URL: then the article as its
    latest stored version (or --version N, or the version current --at a
    time) has it, read from the database.

    \b
    Examples:
      watcher show seeds/000_f45fe6e83c05ee36.txt --json
      watcher show https://example.org/news/1 --version 2
      watcher show https://example.org/news/1 --at 2026-01-31T08:00
    """
    from watcher import snapshot as snapshot_mod
    from watcher.article import parse_article

    settings = _settings(click.get_current_context())
    stored: dict[str, Any] | None = None
    if "://" in target:
        snap, stored = _stored_version(settings, target, seq, at)
    elif seq is not None or at is not None:
        raise WatcherError("--version and --at need a watched URL, not a file")
    else:
        # a FIFO or /dev/zero: refused
        snap = snapshot_mod.read(Path(target), max_bytes=settings.max_body)
    article = parse_article(snap)
    if as_json:
        payload: dict[str, Any] = {
            "snapshot": {
                "url": snap.url,
                "title": snap.title,
                "captured_at": snap.captured_at,
                "captured_at_iso": _iso(snap.captured_at),
                "time_source": snap.time_source.value,
                "front_matter": snap.front_matter,
                "dateline": snap.dateline,
            },
            "article": asdict(article),
        }
        if stored is not None:
            payload["version"] = stored
        _show_json(payload)
    else:
        if stored is not None:
            basis = "captured" if stored["time_basis"] == "captured" else "stated time"
            _show(f"version {stored['seq']} of {stored['of']} ({basis} "
                  f"{_CLOCK.full(stored['captured_at'])}) of {stored['url']}\n")  # fmt: skip
        _show(format_article(article))


def _stored_version(
    settings: Settings, url: str, seq: int | None, at: str | None
) -> tuple[Snapshot, dict[str, Any]]:
    """The snapshot of a watched URL's version ``seq``, or the one current ``at``."""
    from watcher import api

    if seq is not None and at is not None:
        raise WatcherError("give --version or --at, not both")
    at_ms = _parse_time(at, "--at") if at is not None else None
    store = api.open_store(settings, readonly=True)
    try:
        watch = api.require_watch(store, url)
        versions = store.versions(watch.id)
        if not versions:
            raise WatcherError(f"{watch.url} has no stored version yet")
        if seq is not None:
            chosen = next((v for v in versions if v.seq == seq), None)
            if chosen is None:
                raise WatcherError(f"{watch.url} has versions 1 to {versions[-1].seq}, not {seq}")
        elif at_ms is not None:
            earlier = [v for v in versions if v.captured_at <= at_ms]
            if not earlier:
                raise WatcherError(
                    f"{watch.url} has no version from before {_iso(at_ms)}: "
                    f"the first is from {_iso(versions[0].captured_at)}"
                )
            chosen = earlier[-1]
        else:
            chosen = versions[-1]
        snap = store.version_snapshot(chosen)
    finally:
        store.close()
    return snap, {
        "url": watch.url,
        "seq": chosen.seq,
        "of": versions[-1].seq,
        "captured_at": chosen.captured_at,
        "time_basis": chosen.time_basis.value,
    }


def _parse_time(text: str, option: str) -> int:
    """Epoch ms of an ISO date or date-time (UTC unless it names an offset)."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise WatcherError(f"{option} {text!r} is not a time like 2026-01-31T08:00") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def format_article(article: Article) -> str:
    """Readable plain text: one block per paragraph, images and times labelled."""
    when = _CLOCK.full(article.captured_at) if article.captured_at is not None else "unknown"
    lines = [article.title, article.url, f"captured: {when}", ""]
    for block in article.blocks:
        if block.kind is BlockKind.HEADING:
            lines.append("#" * max(block.level, 1) + " " + block.text)
        elif block.kind is BlockKind.IMAGE and block.image:
            img = block.image
            credit = f" (credit: {img.credit})" if img.credit else ""
            lines.append(f"[image] {img.origin_src}{credit}")
            if img.caption or img.alt:
                lines.append(f"        {img.caption or img.alt}")
        elif block.kind is BlockKind.TIME:
            t = block.times[0]
            lines.append(f"[time] {block.text} -> {_range(t.start_ms, t.end_ms)}")
        elif block.kind is BlockKind.LIST_ITEM:
            lines.append(f"  • {block.text}")
        elif block.kind is BlockKind.QUOTE:
            lines.append(f"> {block.text}")
        elif block.kind is BlockKind.LINK_LIST:
            lines.append("[links] " + "; ".join(f"{lk.text} <{lk.href}>" for lk in block.links))
        elif block.kind is BlockKind.MEDIA:
            lines.append(f"[media] {block.media_src} {block.text}".rstrip())
        else:
            lines.append(block.text)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _range(start: int | None, end: int | None) -> str:
    if start is None or end is None:
        return "unresolved"
    mid = (start + end) // 2
    return f"{_iso(mid)} ± {(end - start) // 2 // 1000}s"


# -- watch list -------------------------------------------------------------------
@main.group()
def db() -> None:
    """Database schema commands.

    \b
    Example:
      watcher db upgrade
    """


@db.command("upgrade")
@click.pass_context
@fail_cleanly
def db_upgrade(ctx: click.Context) -> None:
    """Create the database or bring its schema up to date (safe to repeat).

    \b
    Example:
      WATCHER_DATABASE_URL=postgresql+psycopg://watcher@db/watcher watcher db upgrade
    """
    from watcher.store import current_revision, head_revision, safe_url, upgrade

    settings = _settings(ctx)
    settings.home.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    _say(
        f"database {safe_url(settings.database_url)} is at schema "
        f"{current_revision(settings.database_url)} (head {head_revision()})"
    )


@main.command()
@click.argument("urls", nargs=-1)
@click.option("--from-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Read URLs from a file, one per line (# comments allowed).")  # fmt: skip
@click.option("--interval", help="Pin a fixed interval such as 10m or 2h (default: adaptive).")
@click.option("--tag", "tags", multiple=True, help="Tag the watches (repeatable).")
@click.pass_context
@fail_cleanly
def add(ctx: click.Context, urls: tuple[str, ...], from_file: Path | None,
        interval: str | None, tags: tuple[str, ...]) -> None:  # fmt: skip
    """Start watching URLs (http/https). Adding a watched URL again is fine:
    new tags are merged, and a removed URL is watched again with its history;
    `watcher set` changes the interval or tags of a watch.

    \b
    Example:
      watcher add https://www.bbc.com/zhongwen/simp/world-59301487 --interval 10m --tag bbc
      watcher add --from-file urls.txt
    """
    from watcher import api

    every = api.parse_interval(interval) if interval else None
    todo = list(urls) + (api.urls_from_file(from_file) if from_file else [])
    if not todo:
        raise click.UsageError("give at least one URL or --from-file")
    settings = _settings(ctx)
    store = api.open_store(settings)
    try:
        results = api.add_watches(store, todo, interval_s=every, tags=tags)
    finally:
        store.close()
    for r in results:
        if r.error:
            _say(f"skipped: {r.error}", err=True)
            continue
        _say(_added_line(r))
        if warning := api.address_warning(settings, r.url):
            _say(f"warning: {r.url}: checks will be {warning}", err=True)
    if any(r.error for r in results):
        sys.exit(1)


def _added_line(r: api.Added) -> str:
    """What ``add`` did to a URL, said so: a re-add that changes nothing must
    not look as if it had applied the interval it was given."""
    from watcher import api  # loaded already: ``add`` called it

    if r.created:
        return f"added: {r.url}"
    if r.reactivated:
        return f"watching again: {r.url} (it was removed; its history is kept)"
    notes = []
    if r.tags_added:
        notes.append("tags " + " ".join(f"+{t}" for t in r.tags_added) + " added")
    if r.interval_kept:
        notes.append(
            f"interval stays {api.format_interval(r.interval_s)}: "
            "use watcher set to change its interval or tags"
        )
    return f"already watched: {r.url}" + (f" ({'; '.join(notes)})" if notes else "")


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--all", "show_all", is_flag=True,
              help="Also list removed watches (their history is kept).")  # fmt: skip
@click.pass_context
@fail_cleanly
def list_(ctx: click.Context, as_json: bool, show_all: bool) -> None:
    """List watched URLs: title, interval, last check, versions, last change, state.

    A watch whose last check failed has its error on an indented line below it.

    \b
    Example:
      watcher list
      watcher list --json | jq '.[].url'
    """
    from watcher.store.listing import list_watches
    from watcher.store.records import WatchState

    settings = _settings(ctx)
    # through the driver alone when it can (start-up: see watcher.store.listing)
    every = list_watches(settings.database_url)
    if every is None:
        every = _list_through_store(settings)
    rows = [r for r in every if show_all or r.state is not WatchState.REMOVED]
    hidden = len(every) if not rows else 0  # removed watches, when nothing else is listed
    if as_json:
        _show_json([_summary_dict(r) for r in rows])
        return
    if not rows:
        _say(f"no watches ({hidden} removed: watcher list --all)" if hidden else
             "no watches yet: watcher add URL")  # fmt: skip
        return
    table: list[tuple[str, ...]] = [
        (
            "URL",
            "TITLE",
            "INTERVAL",
            f"LAST CHECK ({_CLOCK.label})",
            "VERSIONS",
            f"LAST CHANGE ({_CLOCK.label})",
            "STATE",
        )
    ]
    table += [_list_row(r) for r in rows]
    lines = _table_lines(table)
    click.echo(next(lines))
    for r, line in zip(rows, lines, strict=True):
        click.echo(line)  # every cell is made safe by _cell
        if r.last_error is not None:
            click.echo(_error_line(r))


def _list_through_store(settings: Settings) -> list[WatchSummary]:
    """Every watch, removed ones too, read the ordinary way (which explains a
    database it cannot read); none for a SQLite database not made yet."""
    from watcher import api

    if not api.database_exists(settings):
        return []
    store = api.open_store(settings, readonly=True)
    try:
        return api.list_watches(store, include_removed=True)
    finally:
        store.close()


#: Display columns of the indented line that gives a failing watch's error in
#: ``watcher list``: fits a 100-column terminal, however wide the table is.
ERROR_LINE_MAX = 99


def _error_line(r: WatchSummary) -> str:
    """``  ↳ error: HTTP 500 (3 checks in a row)``: on its own line, not in a
    column, since an error is as long as it is and the table is wide already."""
    streak = f" ({r.failure_count} checks in a row)" if r.failure_count > 1 else ""
    head = "  ↳ error: "
    return head + _cell(r.last_error or "", ERROR_LINE_MAX - _width(head) - len(streak)) + streak


#: Display columns of the list's URL and title cells; longer ones end in "…"
#: (``watcher list --json`` has them whole). Bounds the table's width, and so
#: its memory: rows × these, not rows × the longest URL.
URL_CELL_MAX = 80
TITLE_CELL_MAX = 30


def _list_row(r: WatchSummary) -> tuple[str, ...]:
    return (
        _cell(r.url, URL_CELL_MAX), _cell(r.latest_title or "-", TITLE_CELL_MAX),
        format_duration(r.interval_s) if r.interval_s else "adaptive",
        _when(r.last_checked_at), str(r.version_count), _when(r.last_change_at), str(r.state),
    )  # fmt: skip


def _cell(text: str, width: int) -> str:
    """One safe line of at most ``width`` display columns."""
    return _clip(one_line(text[: width * 4]), width)


def _summary_dict(r: WatchSummary) -> dict[str, Any]:
    return {
        "url": r.url, "title": r.latest_title, "site": r.site, "state": str(r.state),
        "interval_s": r.interval_s, "tags": list(r.tags), "versions": r.version_count,
        "last_checked_at": _iso(r.last_checked_at), "last_change_at": _iso(r.last_change_at),
        "next_check_at": _iso(r.next_check_at), "failures": r.failure_count,
        "last_error": r.last_error, "source": r.source_meta,
    }  # fmt: skip


def _table_lines(rows: Sequence[Sequence[str]]) -> Iterator[str]:
    """The rows as aligned lines, one at a time (cells are already bounded)."""
    measured = [[_width(cell) for cell in row] for row in rows]
    widths = [max(row[i] for row in measured) for i in range(len(rows[0]))]
    for row, cell_widths in zip(rows, measured, strict=True):
        cells = [
            cell + " " * (widths[i] - width)
            for i, (cell, width) in enumerate(zip(row, cell_widths, strict=True))
        ]
        yield "  ".join(cells).rstrip()


def _width(text: str) -> int:
    """Display width: CJK characters take two terminal columns, combining marks none."""
    if text.isascii():  # most cells (URLs, times, counts): one column a character
        return len(text)
    return sum(_char_width(ch) for ch in text)


@functools.lru_cache(maxsize=65536)  # a listing's titles use a few thousand characters
def _char_width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in "WF" else 1


def _clip(text: str, width: int) -> str:
    """``text`` if it fits ``width`` columns, else its start and "…" in ``width``."""
    if _width(text) <= width:
        return text
    used, out = 0, []
    for ch in text:
        used += _char_width(ch)
        if used > width - 1:
            break
        out.append(ch)
    return "".join(out) + "…"


def _when(ms: int | None) -> str:
    return "-" if ms is None else _CLOCK.minutes(ms)


@main.command()
@click.argument("urls", nargs=-1, required=True)
@click.option("--purge", is_flag=True,
              help="Also delete their versions, changes and checks (asks first on a terminal).")  # fmt: skip
@click.option("--yes", "-y", is_flag=True, help="With --purge: delete without asking.")
@click.pass_context
@fail_cleanly
def remove(ctx: click.Context, urls: tuple[str, ...], purge: bool, yes: bool) -> None:
    """Stop watching URLs; their history stays (list --all shows them, add resumes).

    With --purge the watches and their stored versions, changes and checks
    are deleted from the database. The archive files already written stay on
    disk.

    \b
    Example:
      watcher remove https://example.com/news/1
      watcher remove --purge --yes https://example.com/news/1
    """
    from watcher import api

    store = api.open_store(_settings(ctx))
    try:
        if purge and not yes:
            _confirm_purge(api.require_summaries(store, urls))
        removed = api.remove_watches(store, urls, purge=purge)
    finally:
        store.close()
    for r in removed:
        _say(_removed_line(r))
    if any(r.versions and not (r.purged or r.already) for r in removed):
        _say("(history kept: watcher add watches it again, watcher remove --purge deletes it)")


def _on_terminal() -> bool:
    """Whether someone can answer a question (a script or a pipe cannot)."""
    return sys.stdin.isatty()


def _confirm_purge(targets: Sequence[WatchSummary]) -> None:
    """Ask before deleting history; without a terminal, refuse: a script must
    say --yes, so a pipeline never deletes history by accident."""
    watches, versions = len(targets), sum(t.version_count for t in targets)
    what = (f"{_count(watches, 'watch', 'watches')} and {'its' if watches == 1 else 'their'} "
            f"{_count(versions, 'version', 'versions')}")  # fmt: skip
    if not _on_terminal():
        raise WatcherError(f"--purge would delete {what}: pass --yes to confirm")
    if not click.confirm(f"Delete {what}?", default=False):
        _say("nothing deleted")
        sys.exit(1)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _removed_line(r: api.Removed) -> str:
    if r.purged:
        return f"purged: {r.url}" + (f" ({_count(r.versions, 'version', 'versions')} deleted)"
                                     if r.versions else "")  # fmt: skip
    if r.already:
        return f"already removed: {r.url}"
    kept = f" ({_count(r.versions, 'version', 'versions')} kept)" if r.versions else ""
    return f"removed: {r.url}{kept}"


@main.command("set")
@click.argument("urls", nargs=-1, required=True)
@click.option("--interval", help="A fixed interval such as 10m or 2h, or 'adaptive'.")
@click.option("--tag", "tags", multiple=True, help="Add a tag (repeatable).")
@click.option("--untag", "untags", multiple=True, help="Remove a tag (repeatable).")
@click.pass_context
@fail_cleanly
def set_command(ctx: click.Context, urls: tuple[str, ...], interval: str | None,
                tags: tuple[str, ...], untags: tuple[str, ...]) -> None:  # fmt: skip
    """Change the interval or tags of watched URLs; all of them, or none if
    one is not watched.

    \b
    Example:
      watcher set https://example.com/news/1 --interval adaptive --tag elections --untag draft
    """

    from watcher import api
    from watcher.store import KEEP

    if interval is None and not tags and not untags:
        raise click.UsageError("give --interval, --tag or --untag")
    every: float | Keep | None = KEEP if interval is None else api.parse_interval(interval)
    store = api.open_store(_settings(ctx))
    try:
        updates = api.set_watches(store, urls, interval_s=every, add_tags=tags, remove_tags=untags)
    finally:
        store.close()
    for u in updates:
        _say(f"{u.url}: {u.describe()}")


def _set_paused(ctx: click.Context, urls: tuple[str, ...], paused: bool) -> None:
    from watcher import api

    store = api.open_store(_settings(ctx))
    try:
        for url in urls:
            api.set_paused(store, url, paused)
            _say(f"{'paused' if paused else 'resumed'}: {url}")
    finally:
        store.close()


@main.command()
@click.argument("urls", nargs=-1, required=True)
@click.pass_context
@fail_cleanly
def pause(ctx: click.Context, urls: tuple[str, ...]) -> None:
    """Pause watching URLs (kept, not checked).

    \b
    Example:
      watcher pause https://example.com/news/1
    """
    _set_paused(ctx, urls, True)


@main.command()
@click.argument("urls", nargs=-1, required=True)
@click.pass_context
@fail_cleanly
def resume(ctx: click.Context, urls: tuple[str, ...]) -> None:
    """Resume paused (or retired) watches.

    \b
    Example:
      watcher resume https://example.com/news/1
    """
    _set_paused(ctx, urls, False)


@main.command()
@click.argument("urls", nargs=-1)
@click.option("--all", "check_all", is_flag=True,
              help="Check every watch that is not paused or removed.")  # fmt: skip
@click.pass_context
@fail_cleanly
def check(ctx: click.Context, urls: tuple[str, ...], check_all: bool) -> None:
    """Check URLs now, once, whatever their schedule.

    \b
    Example:
      watcher check https://www.bbc.com/zhongwen/simp/world-59301487
      watcher check --all
    """

    from tqdm import tqdm

    from watcher import api

    if not urls and not check_all:
        raise click.UsageError("give URLs or --all")
    settings = _settings(ctx)
    # each check's outcome is printed below: at the default level, its log line
    # would say it twice
    checks_log = logging.getLogger("watcher.pipeline")
    was = checks_log.level
    if _log_level(settings, "check") == "WARNING":
        checks_log.setLevel(logging.ERROR)
    store = api.open_store(settings)
    try:
        watches = api.watches_to_check(store, None if check_all else urls)
        bar = tqdm(total=len(watches), unit="url", disable=len(watches) < 5, file=sys.stderr)
        run = api.check_now(settings, store, watches, on_done=lambda _: bar.update())
        bar.close()
    finally:
        store.close()
        checks_log.setLevel(was)
    results = run.results
    for url in run.busy:
        _say(f"{url}: skipped, a running daemon is checking it right now")
    for r in results:
        label = api.OUTCOME_LABELS.get(r.outcome, str(r.outcome))
        detail = f": {r.error}" if r.error else (f" — {r.change.summary}" if r.change else "")
        _say(f"{r.url}: {label}{detail}")
    if any(r.error for r in results):
        sys.exit(1)


@main.command()
@click.argument("url")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@fail_cleanly
def history(ctx: click.Context, url: str, as_json: bool) -> None:
    """List the stored versions of a URL and the verdict of each change.

    \b
    Example:
      watcher history https://www.bbc.com/zhongwen/simp/world-59301487
    """
    from watcher import api

    store = api.open_store(_settings(ctx), readonly=True)
    try:
        hist = api.history(store, url)
    finally:
        store.close()
    rows: list[dict[str, Any]] = []
    for entry in hist.entries:
        v, c = entry.version, entry.change
        rows.append({
            "version": v.seq if v else None, "captured_at": _iso(entry.at),
            "title": v.title if v else "",
            "verdict": str(c.verdict) if c else "first", "summary": c.summary if c else "first capture",
            "archive_path": v.archive_path if v else None,
        })  # fmt: skip
    rows = _with_redatings(rows, api.feed_notes(hist.watch))
    if as_json:
        _show_json(rows)
        return
    _say(f"{hist.watch.url} ({hist.watch.state}; times in {_CLOCK.label})")
    if hist.watch.source_meta:
        _say(_source_line(hist.watch.source_meta))
    for r in rows:
        num = f"v{r['version']}" if r["version"] else "  -"
        _say(f"  {num:>4}  {_when_iso(r['captured_at'])}  {r['verdict']:<11}  {r['summary']}")


def _with_redatings(rows: list[dict[str, Any]], notes: Sequence[Note]) -> list[dict[str, Any]]:
    """The history rows with a "redated" row per re-dating its feed made,
    each before the first row that is later than it."""
    out = list(rows)
    for note in sorted(notes, key=lambda n: n.at):
        when = _iso(note.at) or ""
        at = next((i for i, r in enumerate(out) if (r["captured_at"] or "") > when), len(out))
        out.insert(at, {
            "version": None, "captured_at": when, "title": "", "verdict": "redated",
            "summary": note.text, "archive_path": None,
        })  # fmt: skip
    return out


def _source_line(meta: dict[str, Any]) -> str:
    """``  feed https://…/rss.xml: published 2026-…Z, updated 2026-…Z``"""
    kind = "feed" if meta.get("feed") else "page"
    dates = [f"{k} {meta[k]}" for k in ("published", "updated") if meta.get(k)]
    return f"  {kind} {meta.get(kind)}" + (": " + ", ".join(dates) if dates else "")


def _when_iso(iso: str | None) -> str:
    if not iso:
        return "-"
    return _CLOCK.minutes(int(datetime.fromisoformat(iso).timestamp() * 1000))


@main.command()
@click.argument("old")
@click.argument("new", required=False)
@click.option("--from", "from_seq", type=int, help="With a URL: the older version number.")
@click.option("--to", "to_seq", type=int, help="With a URL: the newer version number.")
@click.option("--format", "fmt", type=click.Choice(["text", "md", "html", "json"]),
              default="text", show_default=True, help="Report format.")  # fmt: skip
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report to a file instead of stdout.")  # fmt: skip
@click.option("--tz", help="Time zone for report times besides UTC (default $WATCHER_TIMEZONE).")
@click.pass_context
def diff(ctx: click.Context, old: str, new: str | None, from_seq: int | None,
         to_seq: int | None, fmt: str, output: Path | None, tz: str | None) -> None:  # fmt: skip
    """Show what changed between two snapshot files, or two versions of a URL.

    Exit status as diff(1): 0 nothing significant changed, 1 something
    significant changed, 2 error.

    \b
    Example:
      watcher diff old.md new.md --format html -o report.html
      watcher diff https://www.bbc.com/zhongwen/simp/world-59301487 --from 1 --to 3
    """
    from watcher import api
    from watcher import snapshot as snapshot_mod
    from watcher.diff import diff_snapshots
    from watcher.report import render

    settings = _settings(ctx)
    try:
        if new is not None:
            # a file's epoch line is the time it states, whoever wrote it
            stated = (TimeBasis.STATED, TimeBasis.STATED)
            change = diff_snapshots(snapshot_mod.read(old), snapshot_mod.read(new), basis=stated)
        elif old.startswith(("http://", "https://")):
            store = api.open_store(settings, readonly=True)
            try:
                change = api.diff_versions(store, old, from_seq, to_seq)
            finally:
                store.close()
        else:
            raise WatcherError("give two snapshot files, or one watched URL")
        use_color = output is None and fmt == "text" and sys.stdout.isatty()
        text = render(change, fmt, tz=tz or settings.timezone, color=use_color)
    except WatcherError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(_os_error(exc))
    if output is not None:
        try:
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            _fail(f"cannot write {output}: {exc.strerror}")
    elif use_color:
        click.echo(for_colour_terminal(text), nl=not text.endswith("\n"))
    elif fmt == "json":
        click.echo(escape_unsafe(text), nl=not text.endswith("\n"))
    else:
        _show(text, nl=not text.endswith("\n"))
    sys.exit(1 if change.significant else 0)


@main.command()
@click.pass_context
@fail_cleanly
def status(ctx: click.Context) -> None:
    """Is the daemon alive, how many watches are due, errors in the last hour.

    \b
    Example:
      watcher status
    """
    from watcher import api

    settings = _settings(ctx)
    store = api.open_store(settings, readonly=True)
    try:
        st = api.status(settings, store)
    finally:
        store.close()
    beat = st.heartbeat or {}
    alive = "running" if st.daemon_running else "not running"
    if st.daemon_running and beat:
        when = beat.get("heartbeat")
        alive += f" (pid {beat.get('pid')}, last heartbeat "
        alive += f"{_when(when) if isinstance(when, int) else '-'} {_CLOCK.label})"
    _say(f"daemon:      {alive}")
    _say(f"database:    {st.database}")
    _say(f"data folder: {settings.home}")
    states = ", ".join(f"{n} {s}" for s, n in sorted(st.by_state.items())) or "none"
    _say(f"watches:     {st.watches} ({states})")
    _say(f"due now:     {st.due_now}")
    _say(f"errors (1h): {st.errors_last_hour}")
    _say_failing(st.failing)
    if any(st.deliveries.values()):
        parts = [f"{st.deliveries.get(k, 0)} {k}" for k in ("pending", "sent", "dead")]
        hint = "  (see watcher deliveries)" if st.deliveries.get("dead") else ""
        _say(f"deliveries:  {', '.join(parts)}{hint}")


#: Failing watches ``watcher status`` names; the rest are counted (list has them all).
STATUS_FAILING_MAX = 10
#: Columns an error keeps in ``watcher status`` however long its URL.
STATUS_ERROR_MIN = 40


def _say_failing(failing: Sequence[WatchSummary]) -> None:
    """The failing watches with their last errors, so status says what to fix."""
    _say(f"failing:     {len(failing)}")
    for w in failing[:STATUS_FAILING_MAX]:
        url = _cell(w.url, URL_CELL_MAX)
        streak = f" ({w.failure_count} checks in a row)" if w.failure_count > 1 else ""
        room = max(STATUS_ERROR_MIN, ERROR_LINE_MAX - 4 - _width(url) - len(streak))
        _say(f"  {url}: {_cell(w.last_error or '', room)}{streak}")
    if len(failing) > STATUS_FAILING_MAX:
        _say(f"  and {len(failing) - STATUS_FAILING_MAX} more (watcher list)")


@main.command()
@click.option("--http", "bind", is_flag=False, flag_value=DEFAULT_BIND, default=None,
              metavar="[HOST:PORT]",
              help=f"Also serve the web UI and JSON API (as watcher serve does), "
                   f"at HOST:PORT or {DEFAULT_BIND}; default: WATCHER_HTTP, else not served.")  # fmt: skip
@click.pass_context
@fail_cleanly
def run(ctx: click.Context, bind: str | None) -> None:
    """Run the daemon in the foreground until SIGTERM/SIGINT (systemd runs this).

    \b
    Example:
      watcher run
      watcher run --http 127.0.0.1:8765
      WATCHER_LOG_FORMAT=json watcher run
    """
    from watcher import daemon

    settings = _settings(ctx)
    if bind is not None:
        try:
            parse_bind(bind)
        except WatcherError as exc:
            raise WatcherError(f"--http {bind!r}: {exc}") from None
        settings = replace(settings, http=bind.strip())
    settings.home.mkdir(parents=True, exist_ok=True)
    try:
        sys.exit(daemon.run(settings))  # creates the data folder's database, refuses an old one
    except ConfigError as exc:  # a channel Apprise cannot use
        _fail(str(exc), status=EXIT_CONFIG)


@main.group(invoke_without_command=True)
@click.option(
    "--state",
    type=click.Choice(["dead", "pending", "sent", "all"]),
    default="dead",
    show_default=True,
    help="Which deliveries to list.",
)
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@fail_cleanly
def deliveries(ctx: click.Context, state: str, limit: int, as_json: bool) -> None:
    """List notification deliveries: dead letters (gave up after
    WATCHER_DELIVERY_ATTEMPTS failures) by default.

    \b
    Examples:
      watcher deliveries
      watcher deliveries --state pending
      watcher deliveries retry --all
    """
    if ctx.invoked_subcommand is not None:
        return
    from watcher import api
    from watcher.store import DeliveryState

    store = api.open_store(_settings(ctx), readonly=True)
    try:
        rows = api.deliveries(
            store, state=None if state == "all" else DeliveryState(state), limit=limit
        )
    finally:
        store.close()
    if as_json:
        _show_json([_delivery_dict(d) for d in rows])
        return
    if not rows:
        _say(f"no {'' if state == 'all' else state + ' '}deliveries")
        return
    lines = [("ID", "STATE", "CHANNEL", f"SENT/DUE ({_CLOCK.label})", "ATTEMPTS", "URL", "CHANGE")]
    lines += [
        (f"#{d.id}", str(d.state), d.channel, _when(d.sent_at or d.due_at), str(d.attempts),
         _clip(d.url, 60), _clip(d.summary, 60))
        for d in rows
    ]  # fmt: skip
    for line in _table_lines(lines):
        _say(line)
    errors = [(d.id, d.last_error) for d in rows if d.last_error and d.state != "sent"]
    for delivery_id, error in errors:
        _say(f"#{delivery_id}: {_clip(error, 200)}")
    if state == "dead":
        _say("send them again with: watcher deliveries retry --all (or retry ID...)")


def _delivery_dict(d: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": d.id, "change_id": d.change_id, "channel": d.channel, "state": str(d.state),
        "digest": d.digest, "attempts": d.attempts, "due_at": _iso(d.due_at),
        "sent_at": _iso(d.sent_at), "last_error": d.last_error, "url": d.url,
        "summary": d.summary, "verdict": str(d.verdict),
    }  # fmt: skip


@deliveries.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "retry_all", is_flag=True, help="Every dead letter.")
@click.pass_context
@fail_cleanly
def deliveries_retry(ctx: click.Context, ids: tuple[int, ...], retry_all: bool) -> None:
    """Queue dead letters again; a running daemon sends them within moments.

    \b
    Examples:
      watcher deliveries retry 17 18
      watcher deliveries retry --all
    """
    from watcher import api

    if bool(ids) == retry_all:
        _fail("give delivery ids (see watcher deliveries) or --all, not both")
    store = api.open_store(_settings(ctx))
    try:
        n = api.retry_deliveries(store, None if retry_all else ids)
    finally:
        store.close()
    _say(f"queued {n} deliver{'y' if n == 1 else 'ies'} again")


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--url", help="Only this watched URL.")
@click.option("--since", help="Only versions captured since this date (YYYY-MM-DD).")
@click.option("--warc", "as_warc", is_flag=True,
              help="Write the fetches as received (WARC records, with a CDXJ index) instead.")  # fmt: skip
@click.pass_context
@fail_cleanly
def export(
    ctx: click.Context, directory: Path, url: str | None, since: str | None, as_warc: bool
) -> None:
    """Write every stored version as a seed-format file, rebuilt from the database;
    or, with --warc, every fetch's WARC records as one WARC file.

    \b
    Examples:
      watcher export ./archive-copy --since 2026-01-01
      watcher export --warc ./evidence --url https://example.org/news/1
    """
    from watcher import api

    since_ms = None
    if since:
        try:
            since_ms = int(datetime.fromisoformat(since).replace(tzinfo=UTC).timestamp() * 1000)
        except ValueError as exc:
            raise WatcherError(f"--since {since!r} is not a date like 2026-01-31") from exc
    settings = _settings(ctx)
    store = api.open_store(settings, readonly=True)
    try:
        if as_warc:
            from watcher import warc  # warcio only for this

            watched = api.require_watch(store, url).url if url else None
            out = warc.export(settings.warc_dir, directory, url=watched, since_ms=since_ms)
            _say(f"wrote {out.records} WARC records to {out.path}")
            return
        count = api.export_archive(store, directory, url=url, since_ms=since_ms)
    finally:
        store.close()
    _say(f"wrote {count} versions to {directory}")


@main.command()
@click.argument("urls", nargs=-1)
@click.pass_context
@fail_cleanly
def verify(ctx: click.Context, urls: tuple[str, ...]) -> None:
    """Check the record: each article's hash chain, snapshot files and WARC records.

    Reports every version whose stored content, archive file or WARC record
    no longer matches the hashes recorded when it was stored, and every
    break in the chain (a version removed, inserted or reordered). Exit
    status 1 if anything is wrong. Versions stored before watcher recorded hashes
    are counted apart.

    \b
    Examples:
      watcher verify
      watcher verify https://example.org/news/1
    """
    from watcher import api
    from watcher import verify as verifying  # warcio only for this

    settings = _settings(ctx)
    store = api.open_store(settings, readonly=True)
    try:
        watches = api.require_watches(store, urls) if urls else store.watches()
        report = verifying.verify(store, settings, watches)
    finally:
        store.close()
    for problem in report.problems:
        _say(f"ALTERED OR MISSING  {problem}", err=True)
    unchained = report.versions - report.chained
    before = f"; {unchained} stored before hashes were recorded" if unchained else ""
    _say(
        f"{_count(report.watches, 'article', 'articles')}, "
        f"{_count(report.versions, 'version', 'versions')}: {report.chained} chained{before}; "
        f"{_count(report.warc_records, 'WARC record', 'WARC records')} looked up; "
        + ("no problems" if report.ok else _count(len(report.problems), "problem", "problems"))
    )
    if not report.ok:
        raise SystemExit(1)  # as a test that fails; 2 is for errors


@main.command()
@click.option("--keep", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the demo's data folder here instead of a temporary one.")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(["text", "md", "html"]), default="text",
              show_default=True, help="Format of the printed reports.")  # fmt: skip
@fail_cleanly
def demo(keep: Path | None, fmt: str) -> None:
    """Offline end-to-end demo: a local news site edits an article, watcher reports.

    Serves seeds/ as a page on 127.0.0.1, watches it, and between checks the
    "newsroom" ticks the relative time, edits a paragraph, inserts one, and
    finally deletes the article (404). Runs the real pipeline; takes seconds.

    \b
    Example:
      watcher demo
      watcher demo --keep ./demo-data --format md
    """
    from watcher.demo import run_demo

    sys.exit(run_demo(keep, fmt, color=sys.stdout.isatty()))


@main.command("site")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--base-url", default="",
              help="Where the site will be published (https://…/); makes feed links absolute.")  # fmt: skip
@click.option("--tz", help="Time zone for report times besides UTC (default $WATCHER_TIMEZONE).")
@click.pass_context
@fail_cleanly
def site_command(ctx: click.Context, directory: Path, base_url: str, tz: str | None) -> None:
    """Build the static report site into DIRECTORY from the database, from scratch.

    index.html (every article, sortable and filterable), articles/<id>.html
    (timeline and every change), recent.html and feed.atom (significant
    changes). Self-contained: no external requests. The daemon keeps its own
    copy current in $WATCHER_HOME/site.

    \b
    Example:
      watcher site ./public --base-url https://example.org/watcher/
    """
    from watcher import api
    from watcher.outputs import site as site_mod
    from watcher.store import now_ms

    settings = _settings(ctx)
    store = api.open_store(settings, readonly=True)
    try:
        written = site_mod.build_site(
            store, directory, tz=tz or settings.timezone, base_url=base_url, now_ms=now_ms()
        )
    finally:
        store.close()
    _say(f"site in {directory}: {len(written)} files written ({directory / 'index.html'})")


@main.command("serve")
@click.option("--bind", default=DEFAULT_BIND, show_default=True, metavar="HOST:PORT",
              help="Address to listen on; anything but 127.0.0.1 belongs behind a proxy.")  # fmt: skip
@click.pass_context
@fail_cleanly
def serve_command(ctx: click.Context, bind: str) -> None:
    """Serve a live web UI and JSON API over the database, with full-text search.

    Pages for the watches, each article's versions and changes, and each
    version as it read; /api/… for programs; search over every version.
    Read-only unless WATCHER_SERVE_TOKEN is set; then POST /api/watches,
    PATCH /api/watches/ID, POST /api/watches/ID/pause and /resume take
    Authorization: Bearer TOKEN. Ctrl-C stops it. `watcher run --http`
    serves the same from inside the daemon.

    \b
    Example:
      watcher serve --bind 127.0.0.1:8765
      curl 'http://127.0.0.1:8765/api/search?q=拜登'
    """
    from watcher import api
    from watcher.search import open_index
    from watcher.web import server
    from watcher.web.app import create_app

    try:
        parse_bind(bind)
    except WatcherError as exc:
        raise WatcherError(f"--bind {bind!r}: {exc}") from None
    sock = server.listen(bind)  # a port taken: one line, before anything starts
    settings = _settings(ctx)
    store = api.open_store(settings, readonly=not settings.serve_token)
    try:
        app = create_app(store, open_index(settings.home, store), token=settings.serve_token)
        mode = "writes allowed with the token" if settings.serve_token else "read-only"
        _say(f"serving http://{bind}/ ({mode}); Ctrl-C stops")
        server.serve(app, sock, log_level=settings.log_level)
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        store.close()


class _ImportBars:
    """tqdm bars (stderr, with rate and ETA) for the two import passes."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: tqdm[Any] | None = None

    def phase(self, name: str, total: int) -> None:
        from tqdm import tqdm

        self.close()
        self.bar = tqdm(total=total, desc=name, unit="file", file=sys.stderr,
                        disable=not self.enabled or total < 50)  # fmt: skip

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@main.command("import")
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))  # fmt: skip
@click.option("--git", "git", is_flag=True,
              help="PATHS are git repositories: import every committed version of every file.")  # fmt: skip
@click.option("--path-glob", "globs", multiple=True, metavar="GLOB",
              help="Files to import, relative to each PATH ('**' spans folders; repeatable). "
                   "Default: **/*.md and **/*.txt.")  # fmt: skip
@click.option("--watch", is_flag=True,
              help="Also start watching the imported URLs (default: keep them paused).")  # fmt: skip
@click.option("--jobs", type=click.IntRange(1, 64),
              help="Worker processes for parsing and diffing (default: 2, or 1 on one core).")  # fmt: skip
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
@fail_cleanly
def import_command(ctx: click.Context, paths: tuple[Path, ...], git: bool,
                   globs: tuple[str, ...], watch: bool, jobs: int | None, quiet: bool) -> None:  # fmt: skip
    """Import seed-format archives: folder trees, or (--git) a repository's history.

    Every file becomes a version of the article its URL names (URLs are
    normalised: scheme/host case, default port, trailing slash, fragment and
    tracking parameters such as utm_*, fbclid, spm, from=rss). Versions are
    ordered by the capture time the file states; a file stating none is dated
    by its modification time (or, with --git, its commit time). Consecutive
    versions get change records as if the daemon had captured them.

    Imported articles are added PAUSED: their history is kept but they are
    not checked. --watch makes them ACTIVE, so the daemon starts checking them.

    Safe to repeat or to resume after an interruption: what is already stored
    (same URL, capture time and content) is skipped. Files that cannot be read
    are listed at the end with their reasons; they do not stop the import and
    do not change the exit status (0), which is 2 only for a fatal error.

    \b
    Examples:
      watcher import ~/archives/waimei/_posts
      watcher import --git ~/src/waimei --path-glob '_posts/**/*.md' --watch
    """
    from watcher import api, importer

    settings = _settings(ctx)
    store = api.open_store(settings)
    bars = _ImportBars(enabled=not quiet)
    try:
        summary = importer.import_paths(
            store, settings.archive_dir, list(paths), git=git,
            globs=globs or importer.DEFAULT_GLOBS, watch=watch,
            workers=jobs or importer.DEFAULT_WORKERS, progress=bars, max_bytes=settings.max_body,
        )  # fmt: skip
    finally:
        bars.close()
        store.close()
    for rejected in summary.rejected:
        _say(f"rejected: {rejected.source}: {rejected.reason}", err=True)
    for note in summary.order_notes:
        _say(f"order: {note.source}: {note.reason}", err=True)
    _say(
        f"{summary.files} files, {summary.articles} articles: {summary.versions_added} versions "
        f"and {summary.changes_added} changes added, {summary.already_present} already present, "
        f"{len(summary.rejected)} rejected; {summary.watches_created} new watches "
        f"({'active' if watch else 'paused'})"
    )
    if summary.undated:
        source = "commit time" if git else "file modification time"
        _say(f"{summary.undated} files state no time: dated by their {source}")
    if summary.order_notes:
        order = "commit order" if git else "path order"
        _say(
            f"{len(summary.order_notes)} versions state a time that does not order them "
            f"(listed above as 'order:'): kept in {order}"
        )


@main.group()
def notify() -> None:
    """Notification channels, as configured in watcher.toml ([channels.NAME]).

    \b
    Example:
      watcher notify test desk    # send a sample message to the channel "desk"
    """


@notify.command("test")
@click.argument("channel")
@click.pass_context
@fail_cleanly
def notify_test(ctx: click.Context, channel: str) -> None:
    """Send a sample message to CHANNEL (a headline edit on a Chinese news
    article, as the daemon would send it). Exit status 1 if it was not
    delivered, with the reason.

    \b
    Example:
      watcher notify test desk
    """
    # Apprise is slow to import: only this command and the daemon need it.
    from watcher.errors import DeliveryError
    from watcher.notify.channels import send_sample

    try:
        sent = send_sample(_settings(ctx), channel)
    except DeliveryError as exc:
        _say(f"watcher: error: {exc}", err=True)
        sys.exit(1)
    _say(f"sent a sample to {sent.name} ({sent.type})")


# -- sources -----------------------------------------------------------------------
@main.group("source")
def source_group() -> None:
    """Feeds and section pages whose new articles become watches.

    The daemon polls each source (every 10m unless --interval or
    $WATCHER_SOURCE_INTERVAL say otherwise); every article it lists that is
    not watched yet is added with the source's tags, on the adaptive schedule.

    \b
    Example:
      watcher source add https://www.rfi.fr/cn/general/rss --tag rfi
      watcher source add https://www.bbc.com/zhongwen/simp --match '/simp/[a-z-]+-[0-9]+$'
      watcher source list
    """


@source_group.command("add")
@click.argument("url")
@click.option("--tag", "tags", multiple=True, help="Tag the watches it finds (repeatable).")
@click.option("--interval", help="How often to poll it, e.g. 30m (default 10m; at least 1m).")
@click.option("--match", metavar="REGEX",
              help="Only article URLs this regular expression finds become watches.")  # fmt: skip
@click.option("--now", "poll_now", is_flag=True, help="Poll it once now and say what it found.")
@click.pass_context
@fail_cleanly
def source_add(ctx: click.Context, url: str, tags: tuple[str, ...], interval: str | None,
               match: str | None, poll_now: bool) -> None:  # fmt: skip
    """Add a feed (RSS, Atom, JSON Feed) or a section page to discover articles from.

    Nothing is fetched unless --now: a running daemon polls it within
    $WATCHER_POLL. Adding a source again gives it the options of this command.

    \b
    Example:
      watcher source add https://feeds.bbci.co.uk/zhongwen/simp/rss.xml --tag bbc --interval 15m
    """
    from watcher import api

    try:
        every = parse_duration(interval) if interval else None
    except WatcherError as exc:
        raise WatcherError(f"--interval {exc}") from exc
    settings = _settings(ctx)
    store = api.open_store(settings)
    try:
        added = api.add_source(settings, store, url, tags=tags, interval_s=every, match=match)
        polled = api.require_sources(store, [added.url]) if poll_now else []
        results = api.poll_sources(settings, store, polled) if polled else []
    finally:
        store.close()
    _say(f"{'added' if added.created else 'updated'} source: {added.url}")
    if warning := api.address_warning(settings, added.url):
        _say(f"warning: {added.url}: polls will be {warning}", err=True)
    for r in results:
        _say(_poll_line(r), err=r.error is not None)
    if any(r.error for r in results):
        sys.exit(1)


def _poll_line(r: PollResult) -> str:
    if r.error:
        return f"{r.url}: error: {r.error}"
    if r.not_modified:
        return f"{r.url}: not modified (304)"
    return (
        f"{r.url}: {r.kind}, {_count(r.found, 'article', 'articles')} listed, "
        f"{r.added} new watches, {r.redated} re-dated"
    )


@source_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
@fail_cleanly
def source_list(ctx: click.Context, as_json: bool) -> None:
    """List sources: kind, tags, interval, watches added, last poll, last error.

    \b
    Example:
      watcher source list --json | jq '.[] | select(.last_error)'
    """
    from watcher import api

    settings = _settings(ctx)
    sources: list[SourceRecord] = []
    if api.database_exists(settings):
        store = api.open_store(settings, readonly=True)
        try:
            sources = api.list_sources(store)
        finally:
            store.close()
    if as_json:
        _show_json([_source_dict(src) for src in sources])
        return
    if not sources:
        _say("no sources yet: watcher source add URL")
        return
    table: list[tuple[str, ...]] = [
        (
            "URL",
            "KIND",
            "TAGS",
            "INTERVAL",
            "WATCHES",
            f"LAST CHECK ({_CLOCK.label})",
            "LAST ERROR",
        )
    ]
    table += [_source_row(src) for src in sources]
    for line in _table_lines(table):
        click.echo(line)  # every cell is made safe by _cell


def _source_row(src: SourceRecord) -> tuple[str, ...]:
    return (
        _cell(src.url, URL_CELL_MAX), src.kind or "-", _cell(",".join(src.tags) or "-", 20),
        format_duration(src.interval_s), str(src.articles), _when(src.last_checked_at),
        _cell(src.last_error or "-", 40),
    )  # fmt: skip


def _source_dict(src: SourceRecord) -> dict[str, Any]:
    return {
        "url": src.url, "kind": src.kind or None, "tags": list(src.tags),
        "interval_s": src.interval_s, "match": src.match, "state": src.state,
        "origin": src.origin, "articles": src.articles,
        "last_checked_at": _iso(src.last_checked_at), "next_check_at": _iso(src.next_check_at),
        "failures": src.failure_count, "last_error": src.last_error,
    }  # fmt: skip


@source_group.command("remove")
@click.argument("urls", nargs=-1, required=True)
@click.pass_context
@fail_cleanly
def source_remove(ctx: click.Context, urls: tuple[str, ...]) -> None:
    """Stop polling sources. The watches they found stay (see watcher remove).

    \b
    Example:
      watcher source remove https://www.rfi.fr/cn/general/rss
    """
    from watcher import api

    store = api.open_store(_settings(ctx))
    try:
        removed = api.remove_sources(store, urls)
    finally:
        store.close()
    for src in removed:
        _say(f"removed source: {src.url} ({_count(src.articles, 'watch', 'watches')} kept)")
        if src.origin == "config":
            _say(f"note: {src.url} is in {CONFIG_NAME}: it comes back at the daemon's "
                 "next start unless it is removed there", err=True)  # fmt: skip
