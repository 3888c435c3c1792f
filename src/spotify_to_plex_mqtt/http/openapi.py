"""The OpenAPI 3.0 description of the HTTP API, as data (served at `/openapi.json`).

Kept next to, not generated from, the handlers in `api.py`; a test compares the two route
tables so that neither can drift from the other.
"""

from __future__ import annotations

from typing import Any

from .. import __version__
from ..engine.events import _KINDS
from .page_spec import PAGE_SCHEMAS, page_paths

JSON = "application/json"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(description, _ref("Error"))


_TIME = {"type": "string", "format": "date-time",
         "description": "When it happened: ISO 8601 in UTC, e.g. 2026-12-02T06:03:33.123Z"}


def _event_schema(*, nullable: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "required": ["event", "at"],
        "properties": {
            "event": {"type": "string", "enum": sorted(_KINDS.values())},
            "at": _TIME,
        },
        "additionalProperties": True,
    }
    if nullable:
        schema["nullable"] = True
    return schema


_STRING_LIST = {"type": "array", "items": {"type": "string"}}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
    "Health": {
        "type": "object",
        "required": ["status", "reason"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "unhealthy"]},
            "reason": {"type": "string"},
        },
    },
    "Event": _event_schema(),
    "FileState": {
        "type": "object",
        "required": ["state", "last_error", "malformed", "malformed_first"],
        "properties": {
            "state": {"type": "string", "enum": ["ok", "error", "unknown"]},
            "last_error": {"type": "string", "nullable": True},
            "malformed": {"type": "integer", "minimum": 0,
                          "description": "Entries skipped as malformed at the last read"},
            "malformed_first": {**_STRING_LIST,
                                "description": "The first few of those, with the reason"},
        },
    },
    "Status": {
        "type": "object",
        "required": ["running", "connected", "broker", "syncing", "healthy", "last_sync",
                     "last_failure", "file_errors", "version", "settings", "files", "plex",
                     "sync", "entities"],
        "properties": {
            "running": {"type": "boolean"},
            "connected": {"type": "boolean"},
            "broker": {"type": "string"},
            "syncing": {"type": "boolean"},
            "healthy": {"type": "boolean"},
            "last_sync": _event_schema(nullable=True),
            "last_failure": _event_schema(nullable=True),
            "file_errors": {"type": "object", "additionalProperties": {"type": "string"}},
            "availability": {"type": "string", "nullable": True,
                             "description": "Why the status topic is not online, if so"},
            "version": {"type": "string"},
            "settings": {"type": "object", "description": "Settings, secrets masked"},
            "files": {"type": "object", "additionalProperties": _ref("FileState")},
            "plex": {
                "type": "object",
                "required": ["configured"],
                "properties": {"configured": {"type": "boolean"}},
            },
            "sync": {
                "type": "object",
                "required": ["pending", "running"],
                "properties": {
                    "pending": _STRING_LIST,
                    "running": {
                        "type": "object",
                        "nullable": True,
                        "required": ["id", "reasons"],
                        "properties": {"id": {"type": "integer"}, "reasons": _STRING_LIST},
                    },
                },
            },
            "entities": {"type": "integer", "nullable": True,
                         "description": "Entities at the last sync; null before the first"},
        },
    },
    "SyncAccepted": {
        "type": "object",
        "required": ["id"],
        "properties": {"id": {"type": "integer", "minimum": 1}},
    },
    "SyncOutcome": {
        "type": "object",
        "required": ["event", "at", "id", "reasons", "outcome"],
        "properties": {
            "event": {"type": "string", "enum": ["sync_finished", "sync_failed"]},
            "at": _TIME,
            "id": {"type": "integer"},
            "reasons": _STRING_LIST,
            "outcome": {"type": "string", "enum": ["finished", "failed"]},
        },
        "additionalProperties": True,
    },
    "Entity": {
        "type": "object",
        "required": ["id", "name", "category", "type", "media_content_id", "entity_id",
                     "state_topic", "config_topic"],
        "properties": {
            **{name: {"type": "string"} for name in (
                "id", "name", "category", "type", "entity_id", "state_topic", "config_topic")},
            "media_content_id": {
                "type": "string", "pattern": "^plex://([A-Za-z0-9]+/)?[0-9]+$",
                "description": "what media_player.play_media plays: plex://<server id>/<key>, "
                               "or plex://<key> while the server id is unknown"},
        },
    },
    "EntityList": {
        "type": "object",
        "required": ["synced", "count", "entities"],
        "properties": {
            "synced": {"type": "boolean", "description": "false until a sync has finished"},
            "count": {"type": "integer"},
            "entities": {"type": "array", "items": _ref("Entity")},
        },
    },
}


def openapi_spec(*, auth: bool) -> dict[str, Any]:
    """The document; `auth` says whether a bearer token guards the protected operations."""
    secured: dict[str, Any] = {"security": [{"bearerAuth": []}]} if auth else {}
    unauthorized = {"401": _error("Missing or wrong bearer token")} if auth else {}
    paths: dict[str, Any] = {
        "/health": {"get": {
            "operationId": "health",
            "summary": "Connected to the broker and the last sync succeeded",
            "responses": {"200": _json("Healthy", _ref("Health")),
                          "503": _json("Unhealthy", _ref("Health"))},
        }},
        "/status": {"get": {
            "operationId": "status",
            "summary": "What the service is doing, its settings (secrets masked), file states",
            "responses": {"200": _json("The status snapshot", _ref("Status"))},
        }},
        "/sync": {"post": {
            "operationId": "sync",
            "summary": "Request a sync; optionally wait for it to end",
            "parameters": [{
                "name": "wait", "in": "query", "required": False,
                "description": "Wait until the sync ends and return its outcome",
                "schema": {"type": "boolean", "default": False},
            }],
            **secured,
            "responses": {
                "200": _json("The sync ended (finished or failed)", _ref("SyncOutcome")),
                "202": _json("The sync is scheduled", _ref("SyncAccepted")),
                "400": _error("Malformed query parameter"),
                **unauthorized,
                "413": _error("Request body too large"),
                "503": _error("The service is stopping"),
                "504": _error("The sync did not end in time (it goes on)"),
            },
        }},
        "/entities": {"get": {
            "operationId": "entities",
            "summary": "Entities published by the last sync",
            "parameters": [{
                "name": "category", "in": "query", "required": False,
                "description": "Only this category (case-insensitive)",
                "schema": {"type": "string"},
            }],
            "responses": {"200": _json("The entities", _ref("EntityList"))},
        }},
        "/metrics": {"get": {
            "operationId": "metrics",
            "summary": "Prometheus metrics",
            "responses": {"200": {
                "description": "Prometheus text exposition format 0.0.4",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }},
        }},
        "/events": {"get": {
            "operationId": "events",
            "summary": "WebSocket stream of events; each text message is one Event as JSON",
            **secured,
            "responses": {
                "101": {"description": "Switching to the WebSocket protocol"},
                "400": _error("Not a WebSocket upgrade request"),
                **unauthorized,
            },
        }},
        "/openapi.json": {"get": {
            "operationId": "openapi",
            "summary": "This document",
            "responses": {"200": _json("OpenAPI 3.0 document", {"type": "object"})},
        }},
    }
    paths.update(page_paths(secured, unauthorized))
    components: dict[str, Any] = {"schemas": {**SCHEMAS, **PAGE_SCHEMAS}}
    if auth:
        components["securitySchemes"] = {"bearerAuth": {"type": "http", "scheme": "bearer"}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "spotify-to-plex-mqtt",
            "version": __version__,
            "description": "Control plane of the Spotify-to-Plex MQTT bridge. Reads are open; "
                           "state-changing operations, the event stream and the web page's "
                           "data need the bearer token when API_TOKEN is set.",
        },
        "paths": paths,
        "components": components,
    }
