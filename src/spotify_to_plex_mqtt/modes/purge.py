"""`spotify-to-plex-mqtt purge`: list, then remove, every retained message of ours.

Ours: item and category configs and states, the bridge entities, the availability status,
and what the original `index-mqtt` service left (its topic layouts). Another publisher's
messages under the same prefixes are never touched: ownership is decided by the same test
as a sync's (`Topics.is_ours`).

A broker may cut a wildcard answer short (Mosquitto: `max_queued_messages`), so the topics
of the current library and of the ledger are read by name as well, and the read is repeated
after each removal until it finds nothing: each removal shrinks what the broker must send.
"""

from __future__ import annotations

import logging
import sys
from collections import Counter
from collections.abc import Callable, Iterable

from ..core.discovery import Topics
from ..core.entities import resolve
from ..core.plan import expected_topics
from ..inputs.ledger import ledger_topics
from ..inputs.source import LibrarySource
from ..mqtt.presence import OwnerRecord, PrefixTaken, Presence
from ..mqtt.session import BrokerError, BrokerSession
from ..settings.config import Settings

log = logging.getLogger(__name__)

# Rounds of read-and-remove; each round removes what the broker sent, so a cut-short read
# (~10k messages per QoS 0 round on Mosquitto) needs a few at most.
MAX_ROUNDS = 20
SHOWN = 10
# Mosquitto's default `max_queued_messages`: a first answer this big may be a part.
PARTIAL_AT = 1000


def owned_by(topics: Topics) -> Callable[[str, bytes], bool]:
    """Ours, as a sync decides it, and the availability message it publishes."""
    def owned(topic: str, payload: bytes) -> bool:
        if topic == topics.status:
            return payload in (b"online", b"offline")
        if topic == topics.owner:
            return OwnerRecord.decode(payload) is not None
        return topics.is_ours(topic, payload)
    return owned


def kind_of(topics: Topics, topic: str) -> str:
    """A word for the listing: what this retained message is."""
    if topic in (topics.status, topics.owner):
        return "status"
    if topic in (topics.categories_state, topics.config(topics.categories_object_id)):
        return "categories"
    if topic == topics.bridge_state or (topic.endswith("/config")
                                        and f"/{topics.node_id}_bridge" in topic):
        return "bridge entities"
    if topic.startswith(topics.item_state("")):
        return "item states" if "/" not in topic.removeprefix(topics.item_state("")) \
            else "original service's leftovers"
    if topic.startswith(topics.config(topics.item_object_id("")).removesuffix("/config")):
        return "item configs"
    return "original service's leftovers"


def known_topics(settings: Settings, topics: Topics) -> list[str]:
    """Topics that may hold ours, read by name: the library's, the ledger's, the fixed ones."""
    snapshot = LibrarySource(settings.settings_dir).read()
    slugs = [e.slug for e in resolve(snapshot.library).entities]
    return [*expected_topics(topics, slugs), topics.status, topics.owner,
            *ledger_topics(settings.settings_dir, topics)]


async def find_ours(session: BrokerSession, topics: Topics, expected: Iterable[str]
                    ) -> dict[str, bytes]:
    read = await session.scan(topics.scan_filters, owned_by(topics),
                              topics.scan_marker_prefix, expected=list(expected))
    return read.found


def listing(topics: Topics, found: Iterable[str]) -> list[str]:
    found = sorted(found)
    counts = Counter(kind_of(topics, t) for t in found)
    lines = [f"{len(found)} retained messages of ours on the broker: "
             + ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))]
    if len(found) >= PARTIAL_AT:
        lines.append("  (a broker may send only part of a big set at once: the removal reads "
                     "again until none is left)")
    lines += [f"  {t}" for t in found[:SHOWN]]
    if len(found) > SHOWN:
        lines.append(f"  ... and {len(found) - SHOWN} more")
    return lines


def confirm(count: int, ask: Callable[[str], str] = input,
            interactive: Callable[[], bool] = sys.stdin.isatty) -> bool:
    """Ask on a terminal; elsewhere (a pipe, a service manager) only --yes removes."""
    if not interactive():
        print("nothing removed: run `spotify-to-plex-mqtt purge --yes` to remove them")
        return False
    try:
        answer = ask(f"Remove these {count} retained messages? [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() in ("y", "yes"):
        return True
    print("nothing removed")
    return False


async def _remove_all(session: BrokerSession, topics: Topics,
                      found: dict[str, bytes]) -> tuple[int, int]:
    """Clear `found`, then read again until nothing of ours is left; (removed, left)."""
    removed = 0
    for _ in range(MAX_ROUNDS):
        if not found:
            return removed, 0
        removed += await session.publish_many([(t, b"") for t in sorted(found)])
        # The by-name list is spent: what it named was found (and cleared) or is absent.
        found = await find_ours(session, topics, ())
    return removed, len(found)


async def run_purge(settings: Settings) -> int:
    """List ours; remove after --yes or a "y" on the terminal. 0 when none is left."""
    topics = Topics(settings.mqtt.topic_prefix, settings.mqtt.discovery_prefix)
    expected = known_topics(settings, topics)
    try:
        async with BrokerSession(settings.mqtt, will=False) as session:
            # A running service would publish everything again at once: it must stop first.
            await Presence(topics, lambda _problem: None).claim(session, record=False)
            found = await find_ours(session, topics, expected)
            for line in listing(topics, found):
                print(line)
            if not found or not (settings.yes or confirm(len(found))):
                return 0
            removed, left = await _remove_all(session, topics, found)
    except PrefixTaken as exc:
        log.error("%s Purge removes what it would publish again at once: stop it first.",
                  exc)
        return 2
    except BrokerError as exc:
        log.error("%s", exc)
        return 1
    print(f"removed {removed} retained messages; {left} of ours left on the broker")
    if left:
        log.error("%d retained messages of ours are still on the broker: run purge again",
                  left)
        return 1
    return 0
