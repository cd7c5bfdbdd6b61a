"""Pixabay: search videos through the Pixabay API, cached 24 h as its terms require.

The API key lives in Secrets Manager (read by `cliplake.adapters.secrets`, parsed by `api_key_of`) and is sent
as the `key` query parameter, so the full request URL is a secret: it never reaches a log line, an exception
message or the response cache (the cache strips `key` from its keys and stored requests). The API allows 100
requests per 60 s per key and says so in `X-RateLimit-Limit/Remaining/Reset`; this client waits for the window
to reset when `Remaining` hits 0 and retries HTTP 429 with backoff. Error bodies are plain text, e.g.
`[ERROR 400] "per_page" is out of accepted range 3-200.`

Videos come in up to four renditions (`videos.large/medium/small/tiny`, `large` sometimes empty); the largest
one at or below the configured height is offered. Everything on Pixabay is under the Pixabay Content License.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import requests
import requests_cache

from cliplake.sources.http import Retryable, RetryPolicy, retry_after_seconds
from cliplake.sources.models import Candidate, SearchResult, short_side

log = logging.getLogger(__name__)

SOURCE = "pixabay"
LICENCE = "Pixabay Content License"
LICENCE_URL = "https://pixabay.com/service/license-summary/"
RENDITIONS = ("large", "medium", "small", "tiny")
PER_PAGE_MIN, PER_PAGE_MAX = 3, 200
CACHE_TTL = timedelta(hours=24)
REDACTED = "***"

SKIP_NO_RENDITION = "no_rendition_within_height"


class PixabayError(RuntimeError):
    """The Pixabay API refused a request; the message is the API's own text, with the key redacted."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


# ------------------------------------------------------------------------------------------ AWS adapter: key
NO_KEY = "no Pixabay API key in the secret (aws secretsmanager put-secret-value)"
_KEY_FIELDS = ("key", "api_key", "pixabay_api_key", "PIXABAY_API_KEY")


def api_key_of(secret: str, secret_id: str) -> str:
    """The key in a secret's value: a plain string or JSON with `key`/`api_key`/`pixabay_api_key`. An empty value,
    or an empty key field (the template's placeholder), is no key."""
    value = secret.strip()
    if value.startswith("{"):
        data = json.loads(value)
        for name in _KEY_FIELDS:
            if data.get(name):
                return str(data[name]).strip()
        if not any(name in data for name in _KEY_FIELDS):
            raise PixabayError(f"secret {secret_id!r} holds JSON without a key/api_key field")
        value = ""
    if not value:
        raise PixabayError(NO_KEY)
    return value


# ----------------------------------------------------------------------------------------------------- cache
def cached_session(
    work_dir: str | Path = "/tmp",
    *,
    backend: str | requests_cache.BaseCache | None = None,
    cache_name: str | None = None,
    expire_after: timedelta = CACHE_TTL,
) -> requests_cache.CachedSession:
    """A session caching Pixabay responses for 24 h in a store that outlives one Lambda invocation.

    Default: a SQLite file under `work_dir` (reused by warm Lambda containers, and across runs locally).
    On AWS, pass `backend=dynamodb_cache(table, boto3.resource("dynamodb"))` to share the cache between
    containers.
    Only HTTP 200 responses are cached, and the `key` parameter is left out of cache keys and stored requests.
    """
    if backend is None:
        backend = "sqlite"
        cache_name = cache_name or str(Path(work_dir) / "pixabay_cache.sqlite")
    where = {"cache_name": cache_name or "pixabay_cache"} if isinstance(backend, str) else {}
    return requests_cache.CachedSession(
        backend=backend,
        expire_after=expire_after,
        allowable_codes=(200,),
        allowable_methods=("GET",),
        ignored_parameters=("key",),
        stale_if_error=False,
        **where,
    )


def dynamodb_cache(table_name: str, dynamodb_resource: Any, *, create_table: bool = False) -> Any:
    """The AWS cache backend: a `requests_cache.DynamoDbCache` storing bodies as bytes.

    The table needs requests-cache's own schema (hash key `namespace`, range key `key`, TTL attribute `ttl`),
    so the catalog table can host it only with that schema. `decode_content=False` matters: with decoded JSON
    bodies, DynamoDB hands numbers back as `Decimal` and requests-cache 1.3 fails to read its own entries.
    """
    return requests_cache.DynamoDbCache(
        table_name, create_table=create_table, connection=dynamodb_resource, decode_content=False
    )


# ------------------------------------------------------------------------------------------------- redaction
class _Redact(logging.Filter):
    """Rewrites log records of the HTTP stack so the key never appears (urllib3 logs request URLs)."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secret and self.secret in record.getMessage():
            record.msg, record.args = record.getMessage().replace(self.secret, REDACTED), None
        return True


_HTTP_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "requests_cache")


@contextmanager
def _redacting_logs(secret: str) -> Iterator[None]:
    filt = _Redact(secret)
    loggers = [logging.getLogger(name) for name in _HTTP_LOGGERS]
    for lg in loggers:
        lg.addFilter(filt)
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeFilter(filt)


# ---------------------------------------------------------------------------------------------------- renditions
def choose_rendition(hit: Mapping[str, Any], max_height: int = 720) -> tuple[str, Mapping[str, Any]] | None:
    """The largest usable rendition whose short side is at most `max_height` (empty ones are skipped)."""
    videos = hit.get("videos") or {}
    for name in RENDITIONS:
        r = videos.get(name) or {}
        if not r.get("url") or not r.get("size"):
            continue  # `large` is often {"url": "", "width": 0, "height": 0, "size": 0}
        if 0 < short_side(r.get("width"), r.get("height")) <= max_height:
            return name, r
    return None


def user_url(hit: Mapping[str, Any]) -> str:
    user, user_id = hit.get("user"), hit.get("user_id")
    return f"https://pixabay.com/users/{user}-{user_id}/" if user and user_id else ""


def hit_to_candidate(hit: Mapping[str, Any], query: str, max_height: int = 720) -> Candidate | str:
    """A `Candidate` for one Pixabay hit, or the reason (a string) it is skipped."""
    chosen = choose_rendition(hit, max_height)
    if chosen is None:
        return SKIP_NO_RENDITION
    name, r = chosen
    tags = (hit.get("tags") or "").strip()
    return Candidate(
        source=SOURCE,
        source_id=str(hit["id"]),
        title=tags[:1].upper() + tags[1:] if tags else f"Pixabay video {hit['id']}",
        author=hit.get("user", ""),
        author_url=user_url(hit),
        page_url=hit.get("pageURL", ""),
        licence=LICENCE,
        licence_url=LICENCE_URL,
        download_url=r["url"],
        size=int(r["size"]),
        size_exact=True,
        mime="video/mp4",
        width=r.get("width"),
        height=r.get("height"),
        duration_s=float(hit["duration"]) if hit.get("duration") is not None else None,
        query=query,
        rendition=name,
    )


# ------------------------------------------------------------------------------------------------------ client
class PixabayClient:
    """A small client of the Pixabay videos endpoint over a (cached) `requests.Session`-like object."""

    def __init__(
        self,
        session: requests.Session,
        api_url: str,
        api_key: str,
        *,
        max_height: int = 720,
        max_retries: int = 4,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not api_key:
            raise PixabayError("no Pixabay API key")
        self.session = session
        self.api_url = api_url
        self._key = api_key
        self.max_height = max_height
        self.max_retries = max_retries
        self.timeout = timeout
        self.sleep = sleep
        self.clock = clock
        self._blocked_until: float | None = None

    def __repr__(self) -> str:
        return f"PixabayClient(api_url={self.api_url!r}, api_key={REDACTED!r})"

    def _redact(self, text: str) -> str:
        return text.replace(self._key, REDACTED)

    def _honour_rate_limit(self) -> None:
        if self._blocked_until is not None:
            wait = self._blocked_until - self.clock()
            self._blocked_until = None
            if wait > 0:
                log.info("Pixabay rate limit reached: waiting %.1f s for the window to reset", wait)
                self.sleep(wait)

    def _note_rate_limit(self, resp: requests.Response) -> None:
        if getattr(resp, "from_cache", False):
            return
        remaining, reset = resp.headers.get("X-RateLimit-Remaining"), resp.headers.get("X-RateLimit-Reset")
        try:
            if remaining is not None and int(remaining) <= 0:
                self._blocked_until = self.clock() + float(reset or 60)
        except ValueError:
            pass

    def search_page(self, query: str, page: int = 1, per_page: int = 50) -> dict[str, Any]:
        """One page of `GET <api_url>?key&q&safesearch=true&per_page&page`. Raises `PixabayError`."""
        params = {"key": self._key, "q": query, "safesearch": "true", "per_page": str(per_page), "page": str(page)}

        def attempt() -> requests.Response:
            self._honour_rate_limit()
            try:
                with _redacting_logs(self._key):
                    resp = self.session.get(self.api_url, params=params, timeout=self.timeout)
            except requests.RequestException as exc:
                raise Retryable(self._redact(f"Pixabay request failed: {type(exc).__name__}: {exc}")) from None
            self._note_rate_limit(resp)
            if resp.status_code == 429:
                self._blocked_until = None  # the 429's own wait replaces the window's
                wait = retry_after_seconds(resp.headers.get("Retry-After"))
                if wait is None:
                    wait = retry_after_seconds(resp.headers.get("X-RateLimit-Reset"))
                raise Retryable(self._error_text(resp), wait, status=429)
            return resp

        try:
            resp = RetryPolicy(self.max_retries, sleep=self.sleep, name="Pixabay").call(attempt)
        except Retryable as exc:
            raise PixabayError(exc.reason, status=exc.status) from None  # a chained exception would carry the URL
        if resp.status_code >= 400:
            raise PixabayError(self._error_text(resp), status=resp.status_code)
        try:
            return resp.json()
        except ValueError:
            raise PixabayError(f"Pixabay returned non-JSON: {self._redact(resp.text[:200])!r}") from None

    def _error_text(self, resp: requests.Response) -> str:
        body = self._redact((resp.text or "").strip()[:300]) or resp.reason
        return f"Pixabay API HTTP {resp.status_code}: {body}"

    def search(self, query: str, limit: int = 50, per_page: int | None = None) -> SearchResult:
        """Video candidates for `query` in Pixabay's order (pages followed up to `limit` hits)."""
        per_page = max(PER_PAGE_MIN, min(PER_PAGE_MAX, per_page or limit))
        result, page, seen = SearchResult(), 1, 0
        while seen < limit:
            data = self.search_page(query, page=page, per_page=per_page)
            hits = data.get("hits") or []
            for hit in hits[: limit - seen]:
                outcome = hit_to_candidate(hit, query, self.max_height)
                if isinstance(outcome, str):
                    result.skipped[outcome] += 1
                else:
                    result.candidates.append(outcome)
            seen += len(hits)
            if len(hits) < per_page or page * per_page >= int(data.get("totalHits") or 0):
                break
            page += 1
        return result
