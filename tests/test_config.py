"""watcher.toml: the example loads, every key is documented, each mistake is
one line naming the file, line and key, and the file is found where the README
says."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from watcher.cli import main
from watcher.config import Config
from watcher.configfile import CHANNEL_KEYS, ROUTE_KEYS, SITE_KEYS, SOURCE_KEYS, load_config
from watcher.errors import ConfigError, WatcherError
from watcher.settings import Settings
from watcher.tomllines import KeyLines, dotted

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXAMPLE = ROOT / "docs" / "watcher.example.toml"


def _write(tmp_path: Path, text: str, name: str = "watcher.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _config_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index("## The config file") : text.index("## Performance")]


def test_the_example_loads() -> None:
    config = load_config(EXAMPLE, {})
    assert list(config.channels) == ["desk", "hook", "script"]
    assert config.channels["hook"].type == "webhook" and config.channels["hook"].secret
    assert config.channels["script"].command == ("/usr/local/bin/on-change", "--json")
    assert config.channels["desk"].limit == 2000 and config.channels["script"].limit is None
    first = config.routes[0]
    assert first.quiet_hours == (time(22), time(7)) and first.digest == "hour"
    assert config.routes[1].verdicts == ("significant",)
    assert config.sources[0].interval_s == 600
    assert config.rules_for("WWW.BBC.COM") is config.sites["www.bbc.com"]
    assert config.settings["allow_hosts"] == "intranet.example, 10.20.0.0/16"
    settings = Settings.from_env({}, config_path=EXAMPLE)
    assert settings.per_host == 4 and settings.public_url == "https://watch.example.org/"
    assert settings.allow_hosts == ("intranet.example", "10.20.0.0/16")


def test_the_readme_shows_the_example_and_documents_every_key() -> None:
    section = _config_section()
    assert f"```toml\n{EXAMPLE.read_text(encoding='utf-8')}```" in section
    keys = {*ROUTE_KEYS, *SOURCE_KEYS, *SITE_KEYS, *(k for ks in CHANNEL_KEYS.values() for k in ks)}
    for key in sorted(keys):
        assert f"| `{key}` |" in section, f"{key} is not documented"
    for table in ("[watcher]", "[channels.NAME]", "[[routes]]", "[[sources]]", '[sites."HOST"]'):
        assert f"| `{table}` |" in section
    assert "`WATCHER_CONFIG`" in README.read_text(encoding="utf-8")


CHANNEL = '[channels.desk]\nurl = "mailto://a@example.org"\n'


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[feeds]\nurl = 1\n", 1, "feeds: unknown key; use watcher, channels, routes"),
        ('[channels.desk]\nulr = "mailto://x"\n', 2, "channels.desk.ulr: unknown key .*did you mean url"),
        ('\n[channels.desk]\nurl = "htp:/x"\n', 3, "channels.desk.url: 'htp:/x' is not an Apprise URL"),
        ('[channels.desk]\nurls = ["mailto://a", "x"]\n', 2, r"channels.desk.urls\[1\]: 'x' is not"),
        ('[channels.desk]\nurl = "mailto://a"\ncommand = ["x"]\n', 3, "command: is a key of exec"),
        ('[channels.h]\ntype = "webhook"\nurl = "ftp://x/"\nsecret = "s"\n', 3, "h.url: 'ftp://x/' is not an http"),
        ('[channels.h]\ntype = "webhook"\nurl = "https://x/"\n', 1, "channels.h: a webhook channel needs secret"),
        ('[channels.h]\ntype = "webhook"\nurl = "https://x/"\nsecret_env = "NOPE"\n', 4, "NOPE is not set"),
        ('[channels.h]\ntype = "hook"\n', 2, "channels.h.type: 'hook' is not a type; did you mean webhook"),
        ('[channels.x]\ntype = "exec"\ncommand = []\n', 3, "channels.x.command: must be a list like"),
        ('[channels.x]\ntype = "exec"\ncommand = "/bin/x --y"\n', 3, "command: must be a list"),
        ('[channels.reports]\nurl = "mailto://a"\n', 1, "channels.reports: 'reports' is the built-in"),
        (CHANNEL + "limit = 0\n", 3, "channels.desk.limit: must be a whole number"),
        (CHANNEL + 'timeout = "soon"\n', 3, "channels.desk.timeout: 'soon' is not a duration"),
        (CHANNEL + '[[routes]]\nchannels = ["desk"]\n[[routes]]\nchannels = ["dsk"]\n', 6,
         r"routes\[1\].channels\[0\]: no channel named 'dsk' \(channels: desk\)"),
        (CHANNEL + '[[routes]]\nchannels = ["reports"]\n', 4, "'reports' gets every change"),
        (CHANNEL + '[[routes]]\ntags = ["x"]\n', 3, r"routes\[0\]: a route needs channels"),
        (CHANNEL + '[[routes]]\nchannels = "desk"\nverdicts = ["big"]\n', 5, "'big' is not a verdict"),
        (CHANNEL + '[[routes]]\nchannels = "desk"\nkinds = ["gone", "titel"]\n', 5,
         r"routes\[0\].kinds\[1\]: 'titel' is not a change kind; did you mean title or time\?"),
        (CHANNEL + '[[routes]]\nchannels = "desk"\nquiet_hours = "25:00-07:00"\n', 5, "not a time range"),
        (CHANNEL + '[[routes]]\nchannels = "desk"\nquiet_hours = "07:00-7:00"\n', 5, "starts when it ends"),
        (CHANNEL + '[[routes]]\nchannels = "desk"\ndigest = "week"\n', 5, "'week' is not a digest"),
        (CHANNEL + '[[routes]]\nchannels = "desk"\nsilent = true\n', 5, r"routes\[0\].silent: unknown key"),
        ("[routes]\nchannels = 1\n", 1, r"routes: must be an array of tables \(\[\[routes\]\]\)"),
        ('[[sources]]\nurl = "ftp://example.org/feed"\n', 2, "sources.*url: 'ftp://example.org/feed' is not"),
        ('[[sources]]\nurl = "https://e.org/"\ninterval = "0s"\n', 3, "interval: must be more than 0s"),
        ('[[sources]]\nurl = "https://e.org/"\nmatch = "(x"\n', 3, r"match: '\(x' is not a regular expression"),
        ('[[sources]]\nurl = "https://e.org/"\n[[sources]]\nurl = "https://e.org/"\n', 4, "already a source"),
        ('[sites."www.bbc.com"]\nbody = "main["\n', 2, r"sites.\"www.bbc.com\".body: 'main\[' is not a CSS selector"),
        ('[sites."www.bbc.com"]\nignore = ["aside", "p::nope(1)"]\n', 2, r"ignore\[1\]: 'p::nope\(1\)' is not a CSS"),
        ('[sites."https://bbc.com/"]\nbody = "main"\n', 1, "is not a host name"),
        ("[watcher]\ntimout = 5\n", 2, "watcher.timout: unknown key .*did you mean timeout"),
        ('[watcher]\ntimeout = "soon"\n', 2, "watcher.timeout: 'soon' is not a duration"),
        ('[watcher]\nper_host = "x"\n', 2, "watcher.per_host: 'x' is not a whole number"),
        ("[watcher]\nretries = true\n", 2, "watcher.retries: must be text or a number, not true/false"),
        ('[watcher]\ntimeout = "20s"\nmin_interval = "2d"\n', 3,
         "watcher.min_interval=2d is longer than WATCHER_MAX_INTERVAL=1d"),
        ("[watcher]\n\nretries = -1\n", 3, "watcher.retries=-1: must be 0 to 20"),
        ('[watcher]\ntimezone = "Mars/Olympus"\n', 2, "watcher.timezone='Mars/Olympus': not a time zone"),
        ('[watcher]\ntimeout = "20s"\ntimeout = "1s"\n', 3, "not valid TOML: Cannot overwrite a value"),
        ("[channels.desk\n", 1, "not valid TOML"),
    ],
)  # fmt: skip
def test_each_mistake_is_one_line_naming_file_line_and_key(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(WatcherError) as info:
        Settings.from_env({}, config_path=path)  # load_config, then the settings' own checks
    error = str(info.value)
    assert isinstance(info.value, ConfigError), error
    assert "\n" not in error and len(error) < 240
    assert error.startswith(f"{path}:{line}: "), error
    assert re.search(message, error), error


def test_a_setting_in_the_environment_beats_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, '[watcher]\ntimeout = "5s"\nretries = 1\nmax_interval = 3600\n')
    from_file = Settings.from_env({}, config_path=path)
    assert (from_file.timeout, from_file.retries, from_file.max_interval) == (5, 1, 3600)
    env = {"WATCHER_TIMEOUT": "7s", "WATCHER_RETRIES": ""}  # set but empty: not set
    mixed = Settings.from_env(env, config_path=path)
    assert (mixed.timeout, mixed.retries, mixed.poll) == (7, 1, 5)
    assert Settings.from_env({}, config_path=path, retries=0).retries == 0  # options beat both
    # A bad environment value is still the variable's fault, not the file's.
    with pytest.raises(WatcherError, match=r"^WATCHER_MIN_INTERVAL=2h is longer than watcher\.max"):
        Settings.from_env({"WATCHER_MIN_INTERVAL": "2h"}, config_path=path)


def test_the_file_is_found_by_option_variable_or_data_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    assert Settings.from_env({}, home=home).config == Config()
    _write(home, "[watcher]\nper_host = 2\n")
    assert Settings.from_env({"WATCHER_HOME": str(home)}).per_host == 2
    assert Settings.from_env({}, home=home).config.path == home / "watcher.toml"
    other = _write(tmp_path, f"[watcher]\nper_host = 3\nhome = {str(home)!r}\n", "other.toml")
    assert Settings.from_env({"WATCHER_CONFIG": str(other)}).per_host == 3
    chosen = Settings.from_env({"WATCHER_CONFIG": str(other)}, config_path=home / "watcher.toml")
    assert chosen.per_host == 2  # --config beats WATCHER_CONFIG
    via_variable = Settings.from_env({"WATCHER_CONFIG": str(other)})
    assert via_variable.home == home and via_variable.database_url.endswith("home/watcher.db")
    with pytest.raises(ConfigError, match=r"missing.toml: cannot read"):
        Settings.from_env({"WATCHER_CONFIG": str(tmp_path / "missing.toml")})


def test_key_lines_follow_tables_arrays_and_quoted_keys() -> None:
    text = (
        '[watcher]\nnote = """\nfake = 1\n"""\nreal = 2\n'  # 1-5
        "[[routes]]\nchannels = []\n[[routes]]\n"  # 6-8
        "tags = []\n"  # 9
        "[sites.'a.b']\nbody.x = 1\n"  # 10-11
    )
    lines = KeyLines(text)
    assert lines.line(("watcher", "fake")) == 1  # inside a multi-line string: not a key
    assert lines.line(("watcher", "real")) == 5
    assert lines.line(("routes", 0, "channels", 3)) == 7
    assert lines.line(("routes", 1, "tags")) == 9
    assert lines.line(("routes", 1, "missing")) == 8
    assert lines.line(("sites", "a.b", "body", "x")) == 11
    assert lines.line(("nowhere",)) is None
    assert dotted(("sites", "a.b", "body", 0)) == 'sites."a.b".body[0]'


@pytest.fixture
def runner(tmp_path: Path) -> CliRunner:
    return CliRunner(env={"WATCHER_HOME": str(tmp_path / "home"), "WATCHER_CONFIG": None})


def test_config_check_prints_a_summary(runner: CliRunner) -> None:
    result = runner.invoke(main, ["config", "check", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert result.output == f"{EXAMPLE}: ok (3 channels, 2 routes, 1 source, 1 site rule)\n"
    via_option = runner.invoke(main, ["--config", str(EXAMPLE), "config", "check"])
    assert via_option.output == result.output


def test_config_check_reports_the_first_problem_and_exits_1(
    runner: CliRunner, tmp_path: Path
) -> None:
    bad = _write(tmp_path, CHANNEL + '[[routes]]\nchannels = ["desk"]\nkinds = "titel"\n')
    result = runner.invoke(main, ["config", "check", str(bad)])
    assert result.exit_code == 1
    assert result.output == (
        f"{bad}:5: routes[0].kinds: 'titel' is not a change kind; did you mean title or time?\n"
    )
    # Every other command refuses the bad file the usual way: one line, exit 2.
    other = runner.invoke(main, ["--config", str(bad), "list"])
    assert other.exit_code == 2 and other.output.count("\n") == 1
    assert f"{bad}:5: routes[0].kinds" in other.output


def test_config_check_finds_the_file_in_the_data_folder(runner: CliRunner, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    nothing = runner.invoke(main, ["config", "check"])
    assert nothing.exit_code == 0 and "no config file" in nothing.output
    _write(home, CHANNEL)
    found = runner.invoke(main, ["config", "check"])
    assert found.exit_code == 0
    assert (
        found.output
        == f"{home / 'watcher.toml'}: ok (1 channel, 0 routes, 0 sources, 0 site rules)\n"
    )
