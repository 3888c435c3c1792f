"""deploy/spotify-to-plex-mqtt.service: what it promises, and systemd's own verdict on it.

`systemd-analyze` (Debian package `systemd`; `.ci/run` installs it) checks the unit as
systemd would load it: `verify` (syntax, and that ExecStart is executable) and `security`
(the exposure score of the hardening). No systemd runs as PID 1 here, so the unit is not
started; the ExecStart of the copy that is verified points at this interpreter's installed
script, as it points at the venv's in a real install.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "spotify-to-plex-mqtt.service"
VENV_SCRIPT = "/opt/spotify-to-plex-mqtt/bin/spotify-to-plex-mqtt"
SERVICE_WORST_SHUTDOWN = 5.0 + 2.0 + 3.0  # grace, `offline` publish, tasks (service.py)
MAX_EXPOSURE = 2.5  # systemd-analyze security's scale: 0 (locked down) to 10 (none)


def directives() -> dict[str, list[str]]:
    """Every `Key=value` of the unit, in order (systemd allows a key more than once)."""
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def one(key: str) -> str:
    values = directives().get(key, [])
    assert len(values) == 1, f"{key}= should be set once, is {values}"
    return values[0]


def systemd_analyze() -> str:
    """The binary; a missing one fails the test (`.ci/run` installs it), never skips."""
    found = shutil.which("systemd-analyze") or next(
        (p for p in ("/usr/bin/systemd-analyze", "/bin/systemd-analyze") if Path(p).exists()),
        None)
    if found is None:
        pytest.fail("systemd-analyze is missing: apt-get install systemd (bash .ci/run does)")
    return found


def installed_copy(tmp_path: Path, exec_start: str) -> Path:
    unit = tmp_path / UNIT.name
    text = re.sub(r"(?m)^ExecStart=.*$", f"ExecStart={exec_start}", UNIT.read_text())
    unit.write_text(text)
    return unit


def this_script() -> str:
    script = Path(sys.executable).parent / "spotify-to-plex-mqtt"
    assert script.exists(), f"the package is not installed in {sys.prefix}: pip install -e ."
    return str(script)


def test_the_unit_runs_as_its_own_user_from_a_venv() -> None:
    assert one("User") == "spotify-to-plex-mqtt"
    # The relative default SETTINGS_DIR resolves in a directory systemd creates for the user.
    assert one("WorkingDirectory") == f"/var/lib/{one('StateDirectory')}"
    assert one("ExecStart") == VENV_SCRIPT
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert VENV_SCRIPT in readme, "the README must show the venv install the unit expects"


def test_a_configuration_error_is_not_restarted_and_stopping_waits_for_the_grace() -> None:
    assert one("Restart") == "on-failure"
    assert one("RestartPreventExitStatus") == "2"
    assert one("KillSignal") == "SIGTERM"
    assert float(one("TimeoutStopSec")) > SERVICE_WORST_SHUTDOWN


def test_the_file_system_is_read_only_but_for_the_settings_and_state() -> None:
    assert one("ProtectSystem") == "strict"
    assert one("NoNewPrivileges") == "yes"
    assert one("ReadWritePaths").lstrip("-").startswith("/")


def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    unit = installed_copy(tmp_path, this_script())
    result = subprocess.run([systemd_analyze(), "verify", str(unit)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_systemd_analyze_verify_catches_a_missing_executable(tmp_path: Path) -> None:
    # What `verify` said about the old unit for a venv install: it can fail, so its silence
    # above means something.
    unit = installed_copy(tmp_path, str(tmp_path / "no-such" / "spotify-to-plex-mqtt"))
    result = subprocess.run([systemd_analyze(), "verify", str(unit)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "not executable" in result.stdout + result.stderr


def test_the_hardening_scores_as_systemd_rates_it(tmp_path: Path) -> None:
    unit = installed_copy(tmp_path, this_script())
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True, text=True, timeout=60, check=False)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout
