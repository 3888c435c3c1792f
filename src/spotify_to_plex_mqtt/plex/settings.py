"""Plex settings from plex.json and PLEX_* variables, and the errors of the Plex client.

The token is kept in a `Secret`; no message built here ever contains it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..core.problems import FileMissing, FileProblem
from ..secret import Secret, register_secret
from ..settings.jsonfile import read_json_file
from ..settings.values import parse_bool
from .errors import PlexConfigError

PLEX_JSON = "plex.json"
URL_EXAMPLE = "PLEX_URL=http://192.168.1.10:32400"



@dataclass(frozen=True, slots=True)
class PlexSettings:
    """Where Plex is and how to authenticate; `token_source` says where the token came from."""

    url: str
    token: Secret
    server_id: str
    verify_tls: bool
    token_source: str

    @property
    def address(self) -> str:
        """`host:port` of the server, for messages."""
        parts = urlsplit(self.url)
        host = parts.hostname or "?"
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def _read_plex_json(path: Path) -> dict[str, Any]:
    """The object in plex.json, `{}` if there is none; never echoes the file's content."""

    def bad(problem: str) -> PlexConfigError:
        return PlexConfigError(str(path), f"{path} {problem}. Fix or delete it, or sign in to "
                                          "Plex again in Spotify-to-Plex to rewrite it")

    try:
        data = read_json_file(path, PLEX_JSON)
    except FileMissing:
        return {}
    except FileProblem as problem:
        # The reason never quotes the document (it holds the token).
        raise bad(f"cannot be used: {problem.reason}") from None
    if not isinstance(data, dict):
        raise bad(f"should hold a JSON object, found {type(data).__name__}")
    for name in ("uri", "token", "serverToken", "id"):
        if data.get(name) is not None and not isinstance(data[name], str):
            raise bad(f"has {name!r} as {type(data[name]).__name__}, not text")
    return data


def _check_url(raw: str, source: str, token: str) -> str:
    """`raw` without trailing slashes, or a `PlexConfigError` naming `source`."""
    shown = "" if token in raw else f" (now {raw!r})"
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        problem = "is not a valid URL"
    else:
        if parts.scheme not in ("http", "https"):
            problem = "must start with http:// or https://"
        elif not parts.hostname:
            problem = "has no host name"
        elif "@" in parts.netloc or parts.query or parts.fragment:
            # Whatever is there may be a credential: do not repeat it.
            problem, shown = "must not contain a user, a ?query or a #fragment", ""
        else:
            return raw.rstrip("/")
    raise PlexConfigError(source, f"{source} {problem}{shown}. Set the address of your Plex "
                                  f"server, for example {URL_EXAMPLE}")


def load_plex_settings(settings_dir: Path, env: Mapping[str, str]) -> PlexSettings | None:
    """Plex settings from plex.json and PLEX_URL / PLEX_TOKEN / PLEX_VERIFY_TLS.

    Environment variables win over the file, `serverToken` over `token`. Returns None when
    neither an address nor a token is configured; raises `PlexConfigError` when the file or
    a variable is malformed, or only one of address and token is known.
    """
    path = settings_dir / PLEX_JSON
    data = _read_plex_json(path)
    url, url_source = env.get("PLEX_URL", "").strip(), "PLEX_URL"
    if not url:
        url, url_source = (data.get("uri") or "").strip(), f"{path} uri"
    token, token_source = env.get("PLEX_TOKEN", "").strip(), "PLEX_TOKEN"
    if not token:
        token, token_source = (data.get("serverToken") or "").strip(), "plex.json serverToken"
    if not token:
        token, token_source = (data.get("token") or "").strip(), "plex.json token"
    raw_verify = env.get("PLEX_VERIFY_TLS", "").strip().lower()
    verify_tls = parse_bool(raw_verify) if raw_verify else True
    if verify_tls is None:
        raise PlexConfigError("PLEX_VERIFY_TLS", f"PLEX_VERIFY_TLS is {raw_verify!r}, which is "
                                                 "not true or false. Example: "
                                                 "PLEX_VERIFY_TLS=false")
    if not url and not token:
        return None
    if not url:
        raise PlexConfigError("PLEX_URL", f"a Plex token is set ({token_source}) but no Plex "
                                          f"address. Set one, for example {URL_EXAMPLE}")
    if not token:
        raise PlexConfigError("PLEX_TOKEN", f"{url_source} is set but no Plex token. Set "
                                            "PLEX_TOKEN=<your Plex token>, or sign in to Plex "
                                            "in Spotify-to-Plex")
    # A token from plex.json was not known when logging started: mask it from now on.
    register_secret(token)
    return PlexSettings(
        url=_check_url(url, url_source, token), token=Secret(token),
        server_id=(data.get("id") or "").strip(), verify_tls=verify_tls,
        token_source=token_source,
    )
