"""Pure reconciliation: what to publish and what to clear so the broker matches the desired."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

Retained = Mapping[str, bytes]


class Unchanged:
    """Stands for "as the broker already holds it" (see `mirror`): a payload that is never
    published, and by its type never can be (`Plan.publish` holds bytes only)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = Unchanged()
# A desired (or mirrored) payload: bytes to publish, or `UNCHANGED`.
Payload = bytes | Unchanged


@dataclass(frozen=True, slots=True)
class Plan:
    """Messages to publish (retained, QoS 1) and topics to clear (empty retained payload)."""

    publish: tuple[tuple[str, bytes], ...] = ()
    clear: tuple[str, ...] = ()
    unchanged: int = 0
    withheld: tuple[str, ...] = ()

    @property
    def messages(self) -> tuple[tuple[str, bytes], ...]:
        """Everything to send, in a safe order.

        Clears go first: Home Assistant ignores a new config whose unique_id another config
        topic still holds, which happens when an entity moves to a new topic (the original
        service's layout). Configs are cleared before states, states published before configs.
        """
        return tuple((topic, b"") for topic in self.clear) + self.publish

    def __len__(self) -> int:
        return len(self.publish) + len(self.clear)


def _is_config(topic: str) -> bool:
    return topic.endswith("/config")


def reconcile(desired: Mapping[str, Payload], actual: Mapping[str, Payload], *,
              allow_removal: bool = True) -> Plan:
    """Compare desired and actual retained messages (both only ours) and plan the difference.

    With `allow_removal=False` (an input could not be read) nothing is cleared; the topics
    that would have been cleared are reported as `withheld`.
    """
    publish = [(t, p) for t, p in desired.items()
               if not isinstance(p, Unchanged) and actual.get(t) != p]
    # State topics first: when Home Assistant sees a new config it subscribes and at once gets
    # the retained state, instead of showing "unknown" until the next publish.
    publish.sort(key=lambda tp: (_is_config(tp[0]), tp[0]))
    gone = sorted((t for t, p in actual.items() if t not in desired and p),
                  key=lambda t: (not _is_config(t), t))
    unchanged = len(desired) - len(publish)
    if not allow_removal:
        return Plan(publish=tuple(publish), unchanged=unchanged, withheld=tuple(gone))
    return Plan(publish=tuple(publish), clear=tuple(gone), unchanged=unchanged)
