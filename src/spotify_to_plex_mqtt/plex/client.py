"""A small async Plex client for artwork and server identity.

Plex is enrichment only: every failure here becomes one of a few precise exceptions with a
message for the user, and the caller decides to carry on without artwork. The token travels
only in the `X-Plex-Token` header; no message, log line or repr ever contains it.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Self

import aiohttp

from ..core.backoff import Backoff
from .errors import PlexAuthError, PlexError, PlexUnavailable
from .settings import PlexSettings

_RATING_KEY = re.compile(r"^[0-9]+$")


def _container(data: Any) -> dict[str, Any] | None:
    container = data.get("MediaContainer") if isinstance(data, dict) else None
    return container if isinstance(container, dict) else None


def _entries(container: dict[str, Any]) -> list[dict[str, Any]]:
    entries = container.get("Metadata")
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _endpoint(path: str) -> str:
    """`path` with a batch of keys shortened to its first one, for messages."""
    first, comma, _ = path.partition(",")
    return first + (",..." if comma else "")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError) and exc.os_error.strerror:
        return exc.os_error.strerror.lower()
    return type(exc).__name__


# Told of every HTTP request to Plex: its latency and a small fixed word for its outcome
# (never a URL or a message: a bounded, secret-free metric label).
RequestObserver = Callable[[float, str], None]


def _outcome(status: int) -> str:
    if status in (401, 403):
        return "auth"
    if status in (404, 410):
        return "not_found"
    if status >= 500:
        return "server_error"
    return "ok" if status < 400 else "error"


class PlexClient:
    """Batched, bounded, retrying reads from one Plex server; no I/O until first use.

    `requests` counts HTTP attempts; `request_seconds` sums their latency and `latencies`
    keeps the most recent ones; `on_request` (the Prometheus metrics in the service) is told
    of each one.
    """

    def __init__(self, settings: PlexSettings, *, timeout: float = 10.0, batch_size: int = 100,
                 concurrency: int = 4, retries: int = 2, backoff_base: float = 0.2,
                 on_request: RequestObserver | None = None) -> None:
        if timeout <= 0 or batch_size < 1 or concurrency < 1 or retries < 0 or backoff_base < 0:
            raise ValueError("timeout > 0, batch_size >= 1, concurrency >= 1, retries >= 0")
        self.settings = settings
        self.timeout = timeout
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.retries = retries
        self.backoff_base = backoff_base
        self.requests = 0
        self.request_seconds = 0.0
        self.latencies: deque[float] = deque(maxlen=1000)
        self.on_request = on_request
        self._session: aiohttp.ClientSession | None = None
        self._slots: asyncio.Semaphore | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session, self._slots = self._session, None, None
            await session.close()

    def _open(self) -> tuple[aiohttp.ClientSession, asyncio.Semaphore]:
        if self._session is None or self._slots is None:
            self._session = aiohttp.ClientSession(
                headers={"Accept": "application/json",
                         "X-Plex-Token": self.settings.token.reveal(),
                         "X-Plex-Product": "spotify-to-plex-mqtt"},
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(ssl=self.settings.verify_tls,
                                               limit=self.concurrency),
            )
            self._slots = asyncio.Semaphore(self.concurrency)
        return self._session, self._slots

    async def _attempt(self, path: str) -> tuple[int, bytes]:
        session, slots = self._open()
        async with slots:
            started = time.perf_counter()
            outcome = "unreachable"
            try:
                # No redirects: a redirect to another host would carry the token header along.
                async with session.get(self.settings.url + path, allow_redirects=False) as resp:
                    outcome = _outcome(resp.status)
                    return resp.status, await resp.read()
            except TimeoutError:
                outcome = "timeout"
                raise
            finally:
                self._observe(time.perf_counter() - started, outcome)

    def _observe(self, elapsed: float, outcome: str) -> None:
        self.requests += 1
        self.request_seconds += elapsed
        self.latencies.append(elapsed)
        if self.on_request is not None:
            self.on_request(elapsed, outcome)

    async def _get(self, path: str) -> Any | None:
        """Parsed JSON of `GET path`, None on 404; retries timeouts, connection errors, 5xx."""
        where = f"Plex at {self.settings.address}"
        backoff = Backoff(base=self.backoff_base, cap=5.0)
        failure = "did not answer"
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(backoff.next())
            try:
                status, body = await self._attempt(path)
            except aiohttp.ClientConnectorCertificateError:
                raise PlexUnavailable(f"{where}: its TLS certificate is not trusted. Use a "
                                      "trusted certificate, or set PLEX_VERIFY_TLS=false"
                                      ) from None
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                failure = f"cannot be reached ({_reason(exc)})"
                continue
            if status >= 500:
                failure = f"answered HTTP {status}"
                continue
            if status in (401, 403):
                raise PlexAuthError(f"{where} rejected the token from "
                                    f"{self.settings.token_source} (HTTP {status}): it is wrong "
                                    "or expired. Sign in to Plex again in Spotify-to-Plex, or "
                                    "set PLEX_TOKEN to a valid token")
            if status == 404:
                return None
            if status != 200:
                raise PlexError(f"{where} answered HTTP {status} for {_endpoint(path)}")
            try:
                return json.loads(body)
            except ValueError:
                raise PlexError(f"{where} answered {_endpoint(path)} with something that "
                                "is not JSON; is PLEX_URL the address of a Plex server?"
                                ) from None
        raise PlexUnavailable(f"{where} {failure} ({self.retries + 1} attempts, "
                              f"{self.timeout:g} s timeout each). Check that Plex is running "
                              "and that PLEX_URL or plex.json uri points to it")

    async def _container(self, path: str) -> dict[str, Any] | None:
        data = await self._get(path)
        if data is None:
            return None
        container = _container(data)
        if container is None:
            raise PlexError(f"Plex at {self.settings.address} answered {_endpoint(path)} "
                            "without a MediaContainer")
        return container

    async def identity(self) -> str:
        """The server's machine identifier, as used in `plex://<id>/<key>` URIs."""
        container = await self._container("/identity")
        ident = _text(container.get("machineIdentifier")) if container else ""
        if not ident:
            raise PlexError(f"Plex at {self.settings.address} did not tell its identifier")
        return ident

    async def metadata(self, keys: Sequence[str]) -> dict[str, str]:
        """Rating key -> thumb path for the keys Plex knows; unknown keys are absent.

        Keys are fetched `batch_size` at a time, at most `concurrency` requests at once.
        Keys that are not plain rating keys are never sent (they would change the URL).
        """
        unique = list(dict.fromkeys(k for k in keys if _RATING_KEY.match(k)))
        batches = [unique[i:i + self.batch_size]
                   for i in range(0, len(unique), self.batch_size)]
        found: dict[str, str] = {}
        try:
            async with asyncio.TaskGroup() as group:
                for batch in batches:
                    group.create_task(self._metadata_batch(batch, found))
        except ExceptionGroup as errors:
            # The first failure cancelled the other batches; report that one.
            first: BaseException = errors
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            if isinstance(first, PlexError):
                raise first from None
            raise
        return found

    async def _metadata_batch(self, keys: list[str], found: dict[str, str]) -> None:
        container = await self._container("/library/metadata/" + ",".join(keys))
        if container is None:
            # A 404 for a batch may come from a single unknown key: split, so that it
            # cannot hide the others.
            if len(keys) > 1:
                middle = len(keys) // 2
                await self._metadata_batch(keys[:middle], found)
                await self._metadata_batch(keys[middle:], found)
            return
        wanted = set(keys)
        for entry in _entries(container):
            key = str(entry.get("ratingKey", ""))
            if key in wanted:
                found[key] = _text(entry.get("thumb")) or _text(entry.get("composite"))

    async def playlists(self) -> dict[str, str]:
        """Rating key -> artwork of every playlist, from one listing request.

        A poster the user set (`thumb`) wins over the generated `composite`.
        """
        container = await self._container("/playlists")
        if container is None:
            raise PlexError(f"Plex at {self.settings.address} has no /playlists; "
                            "is PLEX_URL the address of a Plex server?")
        return {str(entry["ratingKey"]): _text(entry.get("thumb")) or _text(entry.get("composite"))
                for entry in _entries(container) if entry.get("ratingKey") not in (None, "")}

    async def image(self, path: str, *, limit: int = 4 * 1024 * 1024) -> bytes | None:
        """The bytes of the image at `path` (a thumb path, possibly through Plex's photo
        transcoder); None when Plex does not have it. One attempt: the page retries later.
        Raises `PlexError` when Plex cannot be asked or answers something else."""
        session, slots = self._open()
        where = f"Plex at {self.settings.address}"
        async with slots:
            started = time.perf_counter()
            outcome = "unreachable"
            try:
                async with session.get(self.settings.url + path, allow_redirects=False,
                                       headers={"Accept": "image/*"}) as resp:
                    outcome = _outcome(resp.status)
                    if resp.status in (404, 410):
                        return None
                    if resp.status != 200:
                        raise PlexError(f"{where} answered HTTP {resp.status} for artwork")
                    body = await resp.content.read(limit + 1)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                if isinstance(exc, TimeoutError):
                    outcome = "timeout"
                raise PlexUnavailable(f"{where} cannot be reached ({_reason(exc)})") from None
            finally:
                self._observe(time.perf_counter() - started, outcome)
        if len(body) > limit:
            raise PlexError(f"{where} answered an image larger than {limit} bytes")
        return body
