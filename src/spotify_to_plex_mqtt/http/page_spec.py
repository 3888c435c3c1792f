"""The OpenAPI description of the web page's routes (merged into `openapi.openapi_spec`)."""

from __future__ import annotations

from typing import Any

JSON = "application/json"
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "image/svg+xml")


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


_STR = {"type": "string"}
_NSTR = {"type": "string", "nullable": True}
_INT = {"type": "integer"}
_NINT = {"type": "integer", "nullable": True}
_COUNTS = {"type": "array", "items": _obj(["name", "count"], {"name": _STR, "count": _INT})}

PAGE_SCHEMAS: dict[str, Any] = {
    "LibraryItem": _obj(
        ["id", "name", "category", "kind", "media_type", "entity_id", "media_content_id",
         "artwork", "plex_web"],
        {"id": _STR, "name": _STR, "category": _STR, "kind": _STR,
         "media_type": {"type": "string", "enum": ["playlist", "album"]},
         "entity_id": _STR, "media_content_id": _STR,
         "artwork": {**_NSTR, "description": "URL of /artwork/<key> on this service"},
         "plex_web": {**_NSTR, "description": "The item in Plex Web, when the server is known"}}),
    "Library": _obj(["synced", "count", "categories", "kinds", "items"], {
        "synced": {"type": "boolean", "description": "false until a sync has finished"},
        "count": _INT, "categories": _COUNTS, "kinds": _COUNTS,
        "items": {"type": "array", "items": _ref("LibraryItem")}}),
    "Skipped": _obj(["synced", "count", "items", "files"], {
        "synced": {"type": "boolean"}, "count": _INT,
        "items": {"type": "array", "items": _obj(
            ["id", "name", "kind", "reason", "fix"],
            {"id": _STR, "name": _STR, "kind": _STR, "reason": _STR, "fix": _STR})},
        "files": {"type": "array", "items": _obj(
            ["file", "error", "malformed_count", "malformed"],
            {"file": _STR, "error": _NSTR, "malformed_count": _INT,
             "malformed": {"type": "array", "items": _STR,
                           "description": "The first 200 malformed entries' warnings"}})}}),
    "Activity": _obj(["syncs", "homeassistant", "plex"], {
        "plex": _obj(["last_error"], {"last_error": {
            **_NSTR, "description": "Why Plex could not be asked (artwork, last sync)"}}),
        "syncs": {"type": "array", "description": "The last 50 syncs, newest first",
                  "items": _obj(
                      ["id", "at", "trigger", "outcome", "entities", "published", "unchanged",
                       "removed", "skipped", "withheld", "duration", "error"],
                      {"id": _INT, "at": {"type": "number"},
                       "trigger": {"type": "array", "items": _STR},
                       "outcome": {"type": "string", "enum": ["finished", "failed"]},
                       "entities": _NINT, "published": _NINT, "unchanged": _NINT,
                       "removed": _NINT, "skipped": _NINT, "withheld": _NINT,
                       "duration": {"type": "number", "nullable": True}, "error": _NSTR})},
        "homeassistant": _obj(["births", "last"], {
            "births": {**_INT, "description": "Birth messages seen since the start"},
            "last": {"type": "array", "items": {"type": "number"},
                     "description": "When the last ten came (Unix time), newest first"}})}),
}


def _get(op: str, summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"get": {"operationId": op, "summary": summary, **extra, "responses": responses}}


def _data(op: str, summary: str, schema: str, secured: dict[str, Any],
          unauthorized: dict[str, Any]) -> dict[str, Any]:
    ok = {"description": summary, "content": {JSON: {"schema": _ref(schema)}}}
    return _get(op, summary, {"200": ok, "304": {"description": "Unchanged (If-None-Match)"},
                              **unauthorized}, **secured)


def _text(content_type: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {content_type: {"schema": {"type": "string"}}}}


def page_paths(secured: dict[str, Any], unauthorized: dict[str, Any]) -> dict[str, Any]:
    """The page's paths; `secured` / `unauthorized` as for the API's protected operations."""
    not_modified = {"304": {"description": "Unchanged (If-None-Match)"}}
    image = {"description": "The image, or a placeholder when Plex does not have it or "
                            "cannot be reached (never the Plex token)",
             "content": {t: {"schema": {"type": "string", "format": "binary"}}
                         for t in IMAGE_TYPES}}
    return {
        "/": _get("page", "The web page (HTML)",
                  {"200": _text("text/html", "The page"), **not_modified}),
        "/static/{name}": _get(
            "page_file", "A file of the web page (CSS, JavaScript, SVG)",
            {"200": {"description": "The file", "content": {
                t: {"schema": {"type": "string"}}
                for t in ("text/css", "text/javascript", "image/svg+xml")}},
             **not_modified,
             "404": {"description": "No such file",
                     "content": {JSON: {"schema": _ref("Error")}}}},
            parameters=[{"name": "name", "in": "path", "required": True,
                         "schema": {"type": "string"}}]),
        "/library": _data("library", "Published items with categories and kinds, as the "
                          "page shows them", "Library", secured, unauthorized),
        "/skipped": _data("skipped", "Labelled items that are not published (reason and "
                          "fix) and each input file's problems", "Skipped", secured,
                          unauthorized),
        "/activity": _data("activity", "The last 50 syncs and Home Assistant's birth "
                           "messages", "Activity", secured, unauthorized),
        "/artwork/{key}": _get(
            "artwork", "An item's artwork from Plex, through the service's cache",
            {"200": image},
            parameters=[{"name": "key", "in": "path", "required": True,
                         "description": "The item's Plex rating key",
                         "schema": {"type": "string"}},
                        {"name": "v", "in": "query", "required": False,
                         "description": "Version of the artwork (cache busting); ignored",
                         "schema": {"type": "string"}}]),
    }
