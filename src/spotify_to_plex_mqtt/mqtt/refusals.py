"""Publishes, subscriptions and reads the broker refused, told in one line, by topic.

An ACL that denies a topic makes an MQTT 3.1.1 broker drop the message silently; MQTT 5
brokers say so in the PUBACK / SUBACK. A denied read is silent in both (see `retained`'s
probe). What the user needs is the topics and the ACL line that allows them, once per
failed sync, not one line per message; a refusal is not retried (it would fail again).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

SHOWN = 5


@dataclass(frozen=True, slots=True)
class Refused:
    """One refused operation: `what` is "publish to" or "subscribe to"."""

    what: str
    topic: str
    reason: str


def acl_root(topic: str, roots: Sequence[str]) -> str:
    """The ACL pattern that covers `topic`: the first of `roots` (our prefixes) it is under."""
    for root in roots:
        if topic == root or topic.startswith(f"{root}/"):
            return f"{root}/#"
    return topic


def describe(refused: Sequence[Refused], roots: Sequence[str], username: str | None) -> str:
    """One message for `refused`: by topic (the first few), with the ACL lines to add."""
    topics = list(dict.fromkeys(r.topic for r in refused))
    shown = ", ".join(topics[:SHOWN]) + (f" and {len(topics) - SHOWN} more"
                                         if len(topics) > SHOWN else "")
    kinds = " and ".join(dict.fromkeys(r.what for r in refused))
    reasons = ", ".join(dict.fromkeys(r.reason for r in refused))
    patterns = list(dict.fromkeys(acl_root(t, roots) for t in topics))
    lines = "; ".join(f"topic readwrite {p}" for p in patterns)
    if username:
        who, where = f"user {username}", f"`user {username}` then `{lines}`"
    else:
        who, where = "anonymous clients", f"`{lines}` before any `user` line"
    return (f"The MQTT broker refused to let {who} {kinds} {len(topics)} topic(s) "
            f"({reasons}): {shown}. Allow them in the broker's ACL file, e.g. for Mosquitto "
            f"{where}, and reload the broker.")
