"""The README's quick start, read from the README itself and run as a newcomer runs it.

Command 1 runs in a clean copy of the checkout's files, with `python3` on PATH being the
distribution's own interpreter where there is one (on Debian 12 / Ubuntu 24.04 it refuses
`pip install` outside a venv, PEP 668): the command must create its venv and run the demo
there. Command 2 is `.ci/run`, which is what runs this test: it is checked, not recursed into.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")


def quick_start_commands() -> dict[str, str]:
    """{"1": command, "2": command} from the first `sh` block under "## Quick start"."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "no sh block in the Quick start"
    commands: dict[str, str] = {}
    number = None
    for line in block.group(1).splitlines():
        label = re.match(r"# (\d+)\.", line)
        if label:
            number = label.group(1)
        elif line.strip() and number is not None:
            commands[number] = line.strip()
            number = None
    return commands


def copy_checkout(target: Path) -> Path:
    """The checkout's tracked files (what a fresh clone has), nothing built or cached."""
    listed = subprocess.run(["git", "-c", f"safe.directory={ROOT}", "-C", str(ROOT),
                             "ls-files", "-z"], capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.fail(f"cannot list the checkout's files with git: {listed.stderr!r}")
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def python3_on_path(bin_dir: Path) -> Path:
    """A PATH entry whose `python3` is the system's interpreter if it is new enough, else
    this test's (pyenv's, a venv's): the README promises both work."""
    bin_dir.mkdir()
    chosen = Path(sys.executable)
    if SYSTEM_PYTHON.exists():
        check = subprocess.run([str(SYSTEM_PYTHON), "-c",
                                "import sys; sys.exit(sys.version_info < (3, 11))"],
                               check=False)
        if check.returncode == 0:
            chosen = SYSTEM_PYTHON
    (bin_dir / "python3").symlink_to(chosen)
    return chosen


def test_command_2_is_the_ci_script() -> None:
    assert quick_start_commands()["2"] == "bash .ci/run"


def test_command_1_runs_the_demo_from_a_venv_it_creates(tmp_path: Path) -> None:
    command = quick_start_commands()["1"]
    checkout = copy_checkout(tmp_path / "checkout")
    bin_dir = tmp_path / "bin"
    python = python3_on_path(bin_dir)
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
           and not k.startswith(("MQTT_", "PLEX_"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    result = subprocess.run(["bash", "-c", command], cwd=checkout, env=env,
                            capture_output=True, text=True, timeout=540, check=False)

    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{command!r} with {python} failed:\n{output}"
    assert re.search(r"mqtt://127\.0\.0\.1:\d+", result.stdout), output
    assert "Traceback" not in output
    # The demo ran from the venv the command made, not from this test's environment.
    assert (checkout / ".venv" / "bin" / "spotify-to-plex-mqtt").exists()
