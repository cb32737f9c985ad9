"""The systemd unit (systemd/watcher.service) and its environment file example.

``systemd-analyze verify`` checks the unit the way systemd would load it; it
works without systemd running as PID 1 (containers, CI), but needs the
``systemd`` package (Debian: ``apt-get install -y systemd``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from watcher.settings import SPECS

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "watcher.service"
ENV_EXAMPLE = ROOT / "systemd" / "watcher.env.example"
SYSUSERS = ROOT / "systemd" / "watcher.sysusers.conf"

EXEC_BINARY = "/opt/watcher/.venv/bin/watcher"
EXEC_START = f"{EXEC_BINARY} run"

HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "SystemCallArchitectures": "native",
    "SystemCallFilter": "@system-service",
    "CapabilityBoundingSet": "",
    "UMask": "0027",
}

SERVICE = {
    "Type": "exec",
    "ExecStart": EXEC_START,
    "User": "watcher",
    "StateDirectory": "watcher",
    "Environment": "WATCHER_HOME=%S/watcher",
    "EnvironmentFile": "-/etc/watcher/watcher.env",
    "Restart": "on-failure",
    "RestartSec": "5",
    "KillSignal": "SIGTERM",
    "TimeoutStopSec": "45",
}


def sections(text: str) -> dict[str, dict[str, list[str]]]:
    """Unit file -> {section: {key: [values in order]}} (no line continuations used)."""
    out: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = out.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not KEY=VALUE: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return out


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return sections(UNIT.read_text(encoding="utf-8"))


def test_unit_has_hardening_keys(unit: dict[str, dict[str, list[str]]]) -> None:
    service = unit["Service"]
    wrong = {k: service.get(k) for k, v in HARDENING.items() if service.get(k) != [v]}
    assert not wrong, f"hardening keys missing or different (want {HARDENING})"


def test_unit_service_settings(unit: dict[str, dict[str, list[str]]]) -> None:
    service = unit["Service"]
    for key, value in SERVICE.items():
        assert value in service.get(key, []), f"{key}={value} missing from [Service]"
    assert "DynamicUser" not in service  # User=watcher is the choice; see the unit's comment


def test_unit_ordering_and_install(unit: dict[str, dict[str, list[str]]]) -> None:
    after = " ".join(unit["Unit"].get("After", [])).split()
    assert {"network-online.target", "postgresql.service"} <= set(after)
    assert "network-online.target" in " ".join(unit["Unit"].get("Wants", [])).split()
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_stop_timeout_exceeds_default_grace(unit: dict[str, dict[str, list[str]]]) -> None:
    grace = next(s for s in SPECS if s.env == "WATCHER_GRACE")
    assert float(unit["Service"]["TimeoutStopSec"][0]) > grace.parse(grace.default) + 10


def test_env_example_lists_every_setting() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    missing = [s.env for s in SPECS if not re.search(rf"^#\s*{s.env}=", text, re.M)]
    assert not missing, f"not in {ENV_EXAMPLE.name}: {missing}"


def test_env_example_is_all_comments() -> None:
    """Nothing is set by copying the example unchanged; every line is a comment."""
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    assert [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")] == []


def test_env_example_shows_defaults() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    for spec in SPECS:
        if spec.default and spec.env != "WATCHER_HOME":
            shown = re.search(rf"^#{spec.env}=(.*)$", text, re.M)
            assert shown is not None, spec.env
            assert shown.group(1).strip('"') == spec.default, spec.env


def test_sysusers_declares_the_unit_user() -> None:
    entries = [ln.split() for ln in SYSUSERS.read_text(encoding="utf-8").splitlines()]
    assert ["u", "watcher", "-"] in [e[:3] for e in entries if e and not e[0].startswith("#")]


def _existing_executable() -> str:
    """An executable that exists here, to stand in for /opt/watcher/.venv/bin/watcher."""
    for candidate in (Path(sys.prefix) / "bin" / "watcher", Path(sys.executable)):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise AssertionError("no executable to stand in for the watcher script")


def _verify(path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SYSTEMD_LOG_LEVEL": "notice",  # warnings and errors, no debug chatter
        "SYSTEMD_LOG_COLOR": "0",
        "SYSTEMD_PAGER": "",
    }
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not installed (Debian: apt-get install -y systemd)",
)


@needs_analyze
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify fails when ExecStart's binary is missing, and /opt/watcher is where
    # the installation puts it, not where the tests run: point ExecStart at an
    # executable that exists and verify everything else unchanged.
    text = UNIT.read_text(encoding="utf-8")
    assert text.count(f"\nExecStart={EXEC_START}\n") == 1
    copy = tmp_path / UNIT.name
    copy.write_text(
        text.replace(f"\nExecStart={EXEC_START}\n", f"\nExecStart={_existing_executable()} run\n"),
        encoding="utf-8",
    )
    result = _verify(copy)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    about_unit = [ln for ln in output.splitlines() if "watcher" in ln]
    assert about_unit == [], output


@needs_analyze
def test_systemd_analyze_verify_catches_mistakes(tmp_path: Path) -> None:
    """The check above can fail: a typo'd key and a missing binary are reported."""
    text = UNIT.read_text(encoding="utf-8")
    copy = tmp_path / UNIT.name
    copy.write_text(text.replace("\nProtectHome=", "\nProtectHom="), encoding="utf-8")
    result = _verify(copy)
    output = result.stdout + result.stderr
    assert "ProtectHom" in output
    if not Path(EXEC_BINARY).exists():
        assert result.returncode != 0
        assert "not executable" in output or "No such file" in output


def _exposure(path: Path) -> float:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": ""},
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", result.stdout)
    assert found is not None, result.stdout + result.stderr
    return float(found.group(1))


def _with_ip_address_deny(tmp_path: Path) -> Path:
    """The unit with its commented IPAddressDeny=/IPAddressAllow= lines enabled."""
    text = UNIT.read_text(encoding="utf-8")
    enabled = re.sub(r"^#(IPAddress(?:Deny|Allow)=)", r"\1", text, flags=re.M)
    assert enabled.count("\nIPAddressDeny=") == 1, "the unit should offer IPAddressDeny="
    copy = tmp_path / UNIT.name
    copy.write_text(enabled, encoding="utf-8")
    return copy


@needs_analyze
def test_security_exposure_is_at_most_2(tmp_path: Path) -> None:
    """`systemd-analyze security` scores the unit 2.0 or better ("OK"), with
    or without the optional kernel-enforced address filter."""
    assert _exposure(UNIT) <= 2.0
    assert _exposure(_with_ip_address_deny(tmp_path)) <= _exposure(UNIT)


@needs_analyze
def test_the_optional_ip_address_filter_is_valid(tmp_path: Path) -> None:
    copy = _with_ip_address_deny(tmp_path)
    text = copy.read_text(encoding="utf-8")
    copy.write_text(
        text.replace(f"\nExecStart={EXEC_START}\n", f"\nExecStart={_existing_executable()} run\n"),
        encoding="utf-8",
    )
    result = _verify(copy)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    assert [ln for ln in output.splitlines() if "watcher" in ln] == [], output
