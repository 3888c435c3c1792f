"""What the broker holds of ours, known without reading it again.

Loaded from a full read of the broker and updated from every acknowledged publish, on one
connection. A sync caused only by a file change compares with it instead of reading 20k
retained messages again (seconds at 10k items). It keeps digests, not payloads: 16 bytes a
message instead of ~550; the few payloads a sync reads back (`whole`) are kept as they are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Iterable, Mapping

from .reconcile import UNCHANGED, Payload, Unchanged

# Never one of our payloads (they are JSON or plain words): compares unequal to all of them.
STALE = b"\x00stale"


def _digest(payload: bytes) -> bytes:
    return hashlib.blake2b(payload, digest_size=16).digest()


class Mirror:
    """Digests of our retained messages by topic; whole payloads of the `whole` topics."""

    def __init__(self, whole: Callable[[str], bool] = lambda _topic: False) -> None:
        self._digests: dict[str, bytes] = {}
        self._payloads: dict[str, bytes] = {}
        self._whole = whole
        # What the payloads of a key's topics were rendered from (an entity, by slug), so
        # that an equal value need not be rendered again.
        self.sources: dict[str, Hashable] = {}
        # What else they were rendered with (the Plex settings): sources are only
        # comparable under the same context.
        self.context: object = None

    def __len__(self) -> int:
        return len(self._digests)

    def load(self, messages: Iterable[tuple[str, bytes]]) -> Mirror:
        for topic, payload in messages:
            self.record(topic, payload)
        return self

    def has(self, topic: str) -> bool:
        return topic in self._digests

    def record(self, topic: str, payload: bytes) -> None:
        """The broker acknowledged `payload` on `topic` (empty: cleared)."""
        if not payload:
            self._digests.pop(topic, None)
            self._payloads.pop(topic, None)
            return
        self._digests[topic] = _digest(payload)
        if self._whole(topic):
            self._payloads[topic] = payload

    def actual_for(self, desired: Mapping[str, Payload]) -> dict[str, Payload]:
        """A stand-in for the broker's messages that compares with `desired` as they would:
        the desired payload where the digest matches (or `UNCHANGED` where desired says so),
        else a payload equal to none."""
        actual: dict[str, Payload] = {}
        for topic, digest in self._digests.items():
            whole = self._payloads.get(topic)
            if whole is not None:
                actual[topic] = whole
                continue
            payload = desired.get(topic)
            if isinstance(payload, Unchanged):
                actual[topic] = UNCHANGED
            else:
                actual[topic] = payload if payload is not None and _digest(payload) == digest \
                    else STALE
        return actual
