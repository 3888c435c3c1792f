"""4. Plex down, hanging, answering 500 bursts and 404s while the library changes.

A Plex stand-in over real HTTP (`plex.json` in the settings directory points at it) knows
the artwork of every item but a few. Phase by phase, items are added while Plex answers 404
for every album batch, is down, hangs, answers every request with 500, then with 404: after
each phase's sync the broker must hold every entity (none removed or hidden), the thumbs
already known unchanged, and the new items without a thumb. When Plex recovers, the next
sync fills in every thumb Plex knows; the keys Plex never knew stay without one.

The Plex client's timeout is cut from 10 s to 0.5 s (and its retry backoff shortened) so
that a hanging Plex costs a second per sync, not half a minute. Keys answered with 404 are
asked again after `recheck_missing_after` (one hour); the recovery phase sets it to 0 to
stand for that hour having passed.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from mosquitto import Mosquitto
from plex_standin import PlexStandIn
from reliability_support import (
    GenLibrary,
    Running,
    expected_state,
    library_from_files,
    make_library,
    running_service,
    scaled,
    service_settings,
    wait_converged,
)
from spotify_to_plex_mqtt.core.discovery import Topics
from spotify_to_plex_mqtt.engine.events import SyncFinished
from spotify_to_plex_mqtt.plex import enricher as plexlink
from spotify_to_plex_mqtt.plex.client import PlexClient

pytestmark = pytest.mark.broker

LIBRARY = scaled(60)
PER_PHASE = 6
SERVER = "relmachineid"  # what the stand-in's /identity and plex.json both say
TOKEN = "rel-plex-token"  # noqa: S105 - a made-up token for the stand-in


def art(key: str, kind: str) -> str:
    return f"/library/metadata/{key}/thumb/17" if kind == "album" else \
        f"/playlists/{key}/composite/17"


def teach(plex: PlexStandIn, lib: GenLibrary, unknown: set[str]) -> dict[str, str]:
    """Give the stand-in the artwork of every key of `lib` but `unknown`; return it all."""
    thumbs = {}
    for key, kind in lib.keys.items():
        if key in unknown:
            continue
        thumbs[key] = art(key, kind)
        (plex.albums if kind == "album" else plex.playlists)[key] = thumbs[key]
    return thumbs


async def edit_and_sync(run: Running, lib: GenLibrary, kind: str | None) -> list[str]:
    """Add items, write the files, wait for the sync that read them; return the new keys."""
    before = set(lib.keys)
    for _ in range(PER_PHASE):
        lib.add(kind)
    finished = len(run.of(SyncFinished))
    lib.write()
    await run.wait_for(lambda: len(run.of(SyncFinished)) > finished, "the phase's sync")
    return sorted(set(lib.keys) - before)


async def test_plex_faults_never_remove_an_entity(fresh_mosquitto: Mosquitto, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    broker = fresh_mosquitto
    topics = Topics()
    monkeypatch.setattr(plexlink, "PlexClient",
                        functools.partial(PlexClient, timeout=0.5, backoff_base=0.01))
    for name in ("PLEX_URL", "PLEX_TOKEN", "PLEX_VERIFY_TLS"):
        monkeypatch.delenv(name, raising=False)
    lib = make_library(tmp_path / "settings", LIBRARY, seed=41)
    unknown = set(list(lib.keys)[:3])  # Plex never heard of these: 404, forever
    async with PlexStandIn(token=TOKEN, machine_id=SERVER) as plex:
        known = teach(plex, lib, unknown)
        lib.write()
        (lib.root / "plex.json").write_text(json.dumps(
            {"uri": plex.url, "token": TOKEN, "id": SERVER}))

        def expect(thumbs: dict[str, str]) -> dict[str, bytes]:
            return expected_state(topics, library_from_files(lib.root), thumbs=thumbs,
                                  server_id=SERVER)

        settings = service_settings(broker, lib.root)
        async with running_service(settings) as run:
            await wait_converged(broker, topics, lambda: expect(known))
            phases: dict[str, str] = {}

            async def phase(name: str, kind: str | None = None) -> None:
                asked = len(plex.log)
                new = await edit_and_sync(run, lib, kind)
                teach(plex, lib, unknown)  # Plex has them, but cannot tell now
                await wait_converged(broker, topics, lambda: expect(known))
                last = run.service.plex.last
                assert last is not None
                missing = sorted(set(new) & set(last.missing))
                assert last.error or missing, f"Plex {name}: the fault did not show"
                phases[name] = (f"{len(new)} new, {len(plex.log) - asked} requests, "
                                f"{last.error or f'{len(missing)} keys answered 404'}")
                print(f"[reliability] Plex {name}: {phases[name]}")

            plex.fail_next(10_000, 404)
            await phase("answering 404 for albums", "spotify-album")
            plex.fail_next(0)
            await plex.stop()
            await phase("down")
            await plex.start()
            plex.hang()
            await phase("hanging")
            plex.release()
            plex.fail_next(10_000, 500)
            await phase("500 burst")
            plex.fail_next(10_000, 404)
            await phase("answering 404 for everything")
            plex.fail_next(0)
            plex.strict_404 = True
            run.service.plex.cache.recheck_missing_after = 0.0  # the hour has passed
            known = teach(plex, lib, unknown)
            finished = len(run.of(SyncFinished))
            lib.write()  # any trigger will do
            await run.wait_for(lambda: len(run.of(SyncFinished)) > finished, "a sync")
            _, took = await wait_converged(broker, topics, lambda: expect(known))
            thumbless = sum(1 for key in lib.keys if key not in known)
    print(f"\n[reliability] Plex faults: {len(lib.keys)} entities, items added while Plex was "
          f"{', '.join(phases)}: none removed, known thumbs "
          f"kept; all thumbs back {took:.2f} s after recovery; {thumbless} keys Plex never "
          f"knew stay without a thumb; {len(plex.log)} requests to Plex")
