#!/usr/bin/env bash
# Installs the real Home Assistant that tests/home_assistant/test_home_assistant.py runs, into a cached
# venv outside the repository, and prints that venv's Python on stdout (everything else
# goes to stderr). .ci/run exports it as S2P_HA_PYTHON for the tests. Idempotent: a venv
# that already has this release and the requirements below is reused as it is.
#
# Home Assistant 2025.4.4 is the newest release that a Python 3.13.0 interpreter can run
# (later releases need 3.13.2+). The tests start it with --skip-pip, so the pinned
# requirements of every integration it sets up are installed here, read from the
# integrations' own manifest.json files by .ci/ha_requirements.py.
set -euo pipefail
cd "$(dirname "$0")/.."

HA_VERSION=2025.4.4
cache="${XDG_CACHE_HOME:-$HOME/.cache}/spotify-to-plex-mqtt"
venv="$cache/homeassistant-$HA_VERSION"

find_python313() {
  local candidate root
  for candidate in python3.13 "$(pyenv prefix 3.13 2>/dev/null)/bin/python3.13"; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
  for candidate in "$root"/versions/3.13*/bin/python3.13; do
    [ -x "$candidate" ] && { echo "$candidate"; return 0; }
  done
  return 1
}

marker="$venv/.s2p-ready"
want="homeassistant==$HA_VERSION $(sha256sum .ci/ha_requirements.py | cut -c1-16)"
if [ -x "$venv/bin/python" ] && [ "$(cat "$marker" 2>/dev/null)" = "$want" ]; then
  echo "$venv/bin/python"
  exit 0
fi

if [ "${1:-}" = --check ]; then  # .ci/run asks first, to name every missing piece at once
  find_python313 >/dev/null && exit 0
  echo "no Python 3.13 for Home Assistant $HA_VERSION (python3.13 on PATH, or pyenv's 3.13)" >&2
  exit 1
fi
python313="$(find_python313)" || {
  echo "home-assistant.sh: no Python 3.13 found (python3.13 on PATH, or pyenv's 3.13); install one, e.g. 'pyenv install 3.13'" >&2
  exit 1
}
echo "home-assistant.sh: installing Home Assistant $HA_VERSION with $python313 into $venv" >&2
mkdir -p "$cache"
[ -x "$venv/bin/python" ] || "$python313" -m venv "$venv"
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
PIP_ROOT_USER_ACTION=ignore "${pip[@]}" "homeassistant==$HA_VERSION" >&2
constraints="$("$venv/bin/python" -c 'import homeassistant, pathlib; print(pathlib.Path(homeassistant.__file__).parent / "package_constraints.txt")')"
"$venv/bin/python" .ci/ha_requirements.py > "$venv/s2p-requirements.txt"
PIP_ROOT_USER_ACTION=ignore "${pip[@]}" -c "$constraints" -r "$venv/s2p-requirements.txt" >&2
echo "$want" > "$marker"
echo "$venv/bin/python"
