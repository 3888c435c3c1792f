"""What a broker holds after a plan is carried out: the model the reconcile tests check
`core.reconcile` against (the service itself publishes; it never needs this)."""

from __future__ import annotations

from collections.abc import Mapping

from spotify_to_plex_mqtt.core.reconcile import Plan


def apply_plan(actual: Mapping[str, bytes], plan: Plan) -> dict[str, bytes]:
    """The retained state a broker holds after `plan` is carried out on `actual`."""
    result = dict(actual)
    for topic, payload in plan.publish:
        result[topic] = payload
    for topic in plan.clear:
        result.pop(topic, None)
    return result
