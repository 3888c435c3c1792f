"""Print the pinned requirements of the Home Assistant integrations the real-HA tests load.

Run by `.ci/home-assistant.sh` with the Python of the Home Assistant venv. Home Assistant is
started with `--skip-pip`, so every requirement of every integration it sets up (the
default ones, ours, and their dependencies, read from each `manifest.json`) must already be
installed.
"""

import json
import sys
from pathlib import Path

import homeassistant.components
from homeassistant import bootstrap

# What tests/support/ha_instance.py configures, besides what bootstrap always sets up.
USED = {"mqtt", "conversation", "intent_script", "universal", "plex", "http", "api",
        "websocket_api", "script", "blueprint", "intent", "auth", "config", "media_player",
        "sensor", "input_boolean", "template"}

components = Path(next(iter(homeassistant.components.__path__)))
todo = set(USED) | set(bootstrap.DEFAULT_INTEGRATIONS) | set(bootstrap.CORE_INTEGRATIONS)
todo |= {"logger", "system_log", "network"}
seen: set[str] = set()
requirements: set[str] = set()
while todo:
    domain = todo.pop()
    manifest = components / domain / "manifest.json"
    if domain in seen or not manifest.is_file():
        continue
    seen.add(domain)
    data = json.loads(manifest.read_text(encoding="utf-8"))
    requirements.update(data.get("requirements", []))
    todo.update(data.get("dependencies", []))
    todo.update(data.get("after_dependencies", []))
sys.stdout.write("".join(f"{r}\n" for r in sorted(requirements)))
