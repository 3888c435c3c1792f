"""The errors of the Plex client and of its settings (see `errors` for the whole tree)."""

from __future__ import annotations

from ..errors import Error


class PlexError(Error):
    """Plex could not be used; `str()` is a message for the user, free of the token."""


class PlexConfigError(PlexError):
    """plex.json or a PLEX_* variable is malformed; `setting` names which."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


class PlexAuthError(PlexError):
    """Plex rejected the token (HTTP 401/403)."""


class PlexUnavailable(PlexError):
    """Plex did not answer usefully: unreachable, timed out, or 5xx after all retries."""
