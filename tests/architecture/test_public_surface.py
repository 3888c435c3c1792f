"""bench/ uses only `spotify_to_plex_mqtt.public`, so that the package's layout may change
without breaking the benchmark; and all of that surface is importable."""

from __future__ import annotations

import ast
from pathlib import Path

from spotify_to_plex_mqtt import public

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _package_imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every import of the package in `path`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "spotify_to_plex_mqtt"):
            found += [(node.module or "", alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names
                      if alias.name.startswith("spotify_to_plex_mqtt")]
    return found


def test_bench_imports_only_the_public_surface() -> None:
    files = sorted(BENCH.glob("*.py"))
    assert files, f"no benchmark modules in {BENCH}"
    used = {(path.name, module, name) for path in files for module, name in _package_imports(path)}
    assert used, "bench/ imports nothing of the package: this test checks nothing"
    outside = sorted((f, m, n) for f, m, n in used
                     if m != "spotify_to_plex_mqtt.public" or n not in public.__all__)
    assert outside == []


def test_everything_in_the_surface_is_importable() -> None:
    missing = [name for name in public.__all__ if not hasattr(public, name)]
    assert missing == []
