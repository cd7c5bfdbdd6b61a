"""Wikimedia Commons: search videos through the Action API, keep the freely licensed ones.

One `generator=search` request per page (`gsrnamespace=6`, `filetype:video <query>`) with `prop=videoinfo`
returns, for every file, its URL, size, MIME type, SHA-1, the description page's licence and author
(`extmetadata`) and the transcodes Commons made of it (`derivatives`). Pages are followed by copying the whole
`continue` object into the next request, and results are ordered by the search rank (`index`).

Etiquette the API asks for, and this client keeps: a descriptive User-Agent with a contact address, `maxlag=5`
with the advised wait on `maxlag` errors (they come with HTTP 200 and a `Retry-After` header), and waiting
`Retry-After` on HTTP 429/503. Only CC0, public domain, CC BY and CC BY-SA files are offered.
"""

from __future__ import annotations

import html
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlparse

import requests

from cliplake.sources.http import (
    ConfigurationError,
    Retryable,
    RetryPolicy,
    is_loopback,
    retry_after_seconds,
    user_agent,
)
from cliplake.sources.models import Candidate, SearchResult, short_side

log = logging.getLogger(__name__)

SOURCE = "wikimedia"
VIPROP = "url|size|mime|sha1|extmetadata|derivatives"
MAXLAG = 5
MAXLAG_DEFAULT_WAIT = 5.0
RETRY_STATUSES = frozenset({429, 503})

# Skip reasons (keys of SearchResult.skipped).
SKIP_LICENCE = "licence_not_allowed"
SKIP_NO_INFO = "no_videoinfo"
SKIP_NOT_VIDEO = "not_video"


class WikimediaError(RuntimeError):
    """The API answered with an error (its `error` object, or an HTTP error after the allowed retries)."""

    def __init__(self, code: str, info: str, *, status: int | None = None) -> None:
        self.code = code
        self.info = info
        self.status = status
        where = f" (HTTP {status})" if status else ""
        super().__init__(f"Wikimedia API error {code!r}{where}: {info}")


class _Maxlag(Retryable):
    """The API's `maxlag` error (HTTP 200): the replicas lag, come back after `Retry-After`."""


# ---------------------------------------------------------------------------------------------------- licences
@dataclass(frozen=True)
class Licence:
    name: str
    url: str


_CC_CODE_RE = re.compile(r"^cc-(by|by-sa)-(\d\.\d)(?:-([a-z]{2,3}))?$")
_CC_NAME_RE = re.compile(r"^cc[ -](by|by-sa)[ -](\d\.\d)(?:[ -]([a-z]{2,3}))?$", re.IGNORECASE)
_CC0_RE = re.compile(r"^cc-?0(?:[ -]1\.0)?$", re.IGNORECASE)
_PD_RE = re.compile(r"^(?:pd|pd-.+|public[ -]domain(?: .*)?)$", re.IGNORECASE)
CC0_URL = "https://creativecommons.org/publicdomain/zero/1.0/"


def _cc(kind: str, version: str, port: str | None, url: str) -> Licence:
    kind = kind.lower()
    name = f"CC {kind.upper()} {version}" + (f" {port.lower()}" if port else "")
    known = f"https://creativecommons.org/licenses/{kind}/{version}/" + (f"{port.lower()}/" if port else "")
    return Licence(name, url or known)


def classify_licence(short_name: str, code: str = "", url: str = "") -> Licence | None:
    """Map extmetadata `LicenseShortName` / `License` to an allowed licence, or None when not allowed.

    Allowed: CC0, public domain, CC BY and CC BY-SA (any version or port). `LicenseUrl` is often empty on
    Commons; the canonical Creative Commons URL is filled in then.
    """
    code = (code or "").strip().lower()
    short_name = html.unescape(short_name or "").strip()
    url = (url or "").strip()
    if url.startswith("//"):
        url = "https:" + url
    for text in (code, short_name):
        if not text:
            continue
        if _CC0_RE.match(text):
            return Licence("CC0 1.0", url or CC0_URL)
        if _PD_RE.match(text):
            return Licence("Public domain", url)
        m = _CC_CODE_RE.match(text.lower()) or _CC_NAME_RE.match(text)
        if m:
            return _cc(m.group(1), m.group(2), m.group(3), url)
    return None


# ------------------------------------------------------------------------------------------------------ artist
class _ArtistParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.first_href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a" and self.first_href is None:
            href = dict(attrs).get("href")
            if href:
                self.first_href = href
        elif tag in {"br", "p", "div", "li"}:
            self.text.append(" ")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_artist(value: str, base_url: str = "https://commons.wikimedia.org/") -> tuple[str, str]:
    """The author's name (tags stripped, whitespace collapsed) and the first link in `Artist` HTML."""
    parser = _ArtistParser()
    parser.feed(value or "")
    parser.close()
    name = re.sub(r"\s+", " ", "".join(parser.text)).strip()
    href = parser.first_href or ""
    if href.startswith("//"):
        href = "https:" + href
    elif href and not urlparse(href).scheme:
        href = urljoin(base_url, href)
    return name, href


# ------------------------------------------------------------------------------------------------- renditions
@dataclass(frozen=True)
class Rendition:
    """The file to download for one Commons video: the original or one of its transcodes."""

    key: str  # "original" or the transcode key, e.g. "720p.vp9.webm"
    url: str
    mime: str
    width: int | None
    height: int | None
    size: int | None
    size_exact: bool
    sha1: str | None


def _media_type(type_attr: str) -> str:
    return (type_attr or "").split(";")[0].strip().lower()


def _derivative_rank(d: Mapping[str, Any]) -> tuple[int, int] | None:
    """Sort key of an acceptable transcode (higher is better), None when the format is not wanted."""
    media, codecs = _media_type(d.get("type", "")), (d.get("type") or "").lower()
    if media == "video/mp4":
        preference = 2 if "avc1" in codecs else 0  # H.264 spares the transcode before Rekognition
    elif media == "video/webm" and "vp9" in codecs:
        preference = 1
    else:
        return None
    return short_side(d.get("width"), d.get("height")), preference


def choose_rendition(info: Mapping[str, Any], max_height: int = 720, max_bytes: int | None = None) -> Rendition:
    """Pick what to download: the original when it is already small enough, else the largest transcode.

    The original is kept when its short side is at most `max_height` (and, when given, its size at most
    `max_bytes`): those are the untouched bytes, verifiable against the API's SHA-1. Otherwise the best WebM/VP9
    or MP4 transcode at or below `max_height` bounds the download. With none, the original is returned and
    the planner's size and duration limits decide.
    """
    original = Rendition(
        key="original",
        url=info.get("url", ""),
        mime=info.get("mime", ""),
        width=info.get("width"),
        height=info.get("height"),
        size=info.get("size"),
        size_exact=info.get("size") is not None,
        sha1=info.get("sha1"),
    )
    small = 0 < short_side(original.width, original.height) <= max_height
    if small and (max_bytes is None or (original.size or 0) <= max_bytes):
        return original
    best: tuple[tuple[int, int], Mapping[str, Any]] | None = None
    for d in info.get("derivatives") or []:
        if not d.get("transcodekey") or not d.get("src"):
            continue  # the entry without a transcode key is the original itself
        rank = _derivative_rank(d)
        if rank is None or not 0 < rank[0] <= max_height:
            continue
        if best is None or rank > best[0]:
            best = (rank, d)
    if best is None:
        return original
    d = best[1]
    duration, bandwidth = info.get("duration"), d.get("bandwidth")
    estimate = int(bandwidth * duration / 8) if bandwidth and duration else None
    return Rendition(
        key=d["transcodekey"],
        url=d["src"],
        mime=_media_type(d.get("type", "")),
        width=d.get("width"),
        height=d.get("height"),
        size=estimate,
        size_exact=False,
        sha1=None,
    )


# ------------------------------------------------------------------------------------------------- candidates
def _meta(ext: Mapping[str, Any], name: str) -> str:
    value = (ext.get(name) or {}).get("value", "")
    return value if isinstance(value, str) else str(value)


def page_to_candidate(
    page: Mapping[str, Any],
    query: str,
    *,
    max_height: int = 720,
    max_bytes: int | None = None,
    site_url: str = "https://commons.wikimedia.org/",
) -> Candidate | str:
    """A `Candidate` for one search result page, or the reason (a string) it is skipped."""
    infos = page.get("videoinfo") or []
    if not infos or page.get("missing") or infos[0].get("filehidden"):
        return SKIP_NO_INFO
    info = infos[0]
    mime = info.get("mime", "")
    if mime.startswith(("audio/", "image/")):
        return SKIP_NOT_VIDEO
    ext = info.get("extmetadata") or {}
    licence = classify_licence(_meta(ext, "LicenseShortName"), _meta(ext, "License"), _meta(ext, "LicenseUrl"))
    if licence is None:
        return SKIP_LICENCE
    author, author_url = parse_artist(_meta(ext, "Artist"), site_url)
    if not author:
        author, author_url = parse_artist(_meta(ext, "Credit"), site_url)
    file_title = page.get("title", "").split(":", 1)[-1]
    title = re.sub(r"\s+", " ", parse_artist(_meta(ext, "ObjectName"))[0]) or file_title.rsplit(".", 1)[0]
    rendition = choose_rendition(info, max_height=max_height, max_bytes=max_bytes)
    modifications = []
    if rendition.key != "original":
        modifications.append(f"Wikimedia Commons transcode {rendition.key} of the original file {file_title}")
    return Candidate(
        source=SOURCE,
        source_id=str(page.get("pageid", file_title)),
        title=title,
        author=author,
        author_url=author_url,
        page_url=info.get("descriptionurl") or info.get("descriptionshorturl", ""),
        licence=licence.name,
        licence_url=licence.url,
        download_url=rendition.url,
        size=rendition.size,
        size_exact=rendition.size_exact,
        sha1=rendition.sha1,
        source_sha1=info.get("sha1"),
        mime=rendition.mime or mime,
        width=rendition.width,
        height=rendition.height,
        duration_s=info.get("duration"),
        query=query,
        rendition=rendition.key,
        modifications=modifications,
    )


# ------------------------------------------------------------------------------------------------------ client
class WikimediaClient:
    """A small client of the Commons Action API over a `requests.Session`-like object.

    `sleep` is injectable so tests never wait; `max_retries` bounds the waits on `maxlag` and HTTP 429/503.
    A contact address is mandatory against any non-loopback host (the live API blocks anonymous clients).
    """

    def __init__(
        self,
        session: requests.Session,
        api_url: str,
        contact_email: str,
        *,
        max_height: int = 720,
        max_bytes: int | None = None,
        max_retries: int = 5,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not contact_email and not is_loopback(api_url):
            raise ConfigurationError(
                "refusing to call the Wikimedia API without a contact address: set CLIPLAKE_CONTACT_EMAIL"
            )
        self.session = session
        self.api_url = api_url
        self.user_agent = user_agent(contact_email or "no-contact@localhost")
        self.max_height = max_height
        self.max_bytes = max_bytes
        self.max_retries = max_retries
        self.timeout = timeout
        self.sleep = sleep
        parsed = urlparse(api_url)
        self.site_url = f"{parsed.scheme}://{parsed.netloc}/"

    # -- one request -----------------------------------------------------------------------------------------
    def request(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """One API call, with `maxlag` and HTTP 429/503 waited out (bounded). Raises `WikimediaError`."""
        full = {"format": "json", "formatversion": "2", "maxlag": str(MAXLAG), **params}

        def attempt() -> dict[str, Any]:
            try:
                resp = self.session.get(
                    self.api_url, params=full, headers={"User-Agent": self.user_agent}, timeout=self.timeout
                )
            except requests.RequestException as exc:
                raise Retryable(f"request failed: {exc}") from exc
            retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
            if resp.status_code in RETRY_STATUSES:
                raise Retryable(f"HTTP {resp.status_code}", retry_after, status=resp.status_code)
            if resp.status_code >= 400:
                raise WikimediaError("http", resp.text[:200].strip() or resp.reason, status=resp.status_code)
            try:
                data = resp.json()
            except ValueError as exc:
                raise WikimediaError("badjson", f"not JSON: {resp.text[:200]!r}") from exc
            error = data.get("error")
            if error:
                code, info = error.get("code", "unknown"), error.get("info", "")
                if code == "maxlag":
                    raise _Maxlag(info, MAXLAG_DEFAULT_WAIT if retry_after is None else retry_after)
                raise WikimediaError(code, info)
            return data

        try:
            data = RetryPolicy(self.max_retries, sleep=self.sleep, name="Wikimedia API").call(attempt)
        except _Maxlag as exc:
            raise WikimediaError("maxlag", exc.reason) from None
        except Retryable as exc:
            if exc.status:
                raise WikimediaError(
                    "http", f"still HTTP {exc.status} after {exc.attempts - 1} retries", status=exc.status
                ) from None
            raise WikimediaError("http", exc.reason) from exc.__cause__
        for module, warning in (data.get("warnings") or {}).items():
            log.warning("Wikimedia API warning from %s: %s", module, warning)
        return data

    # -- search ----------------------------------------------------------------------------------------------
    def search_params(self, query: str, page_size: int) -> dict[str, Any]:
        return {
            "action": "query",
            "generator": "search",
            "gsrnamespace": "6",
            "gsrsearch": f"filetype:video {query}".strip(),
            "gsrlimit": str(max(1, min(page_size, 50))),
            "prop": "videoinfo",
            "viprop": VIPROP,
        }

    def iter_pages(self, query: str, page_size: int = 50, max_requests: int = 20) -> Iterator[dict[str, Any]]:
        """Every search-result page object, following `continue`; each response's pages in `index` order."""
        base = self.search_params(query, page_size)
        cont: dict[str, Any] = {}
        for _ in range(max_requests):
            data = self.request({**base, **cont})
            pages = (data.get("query") or {}).get("pages") or []
            yield from sorted(pages, key=lambda p: p.get("index", 0))
            if "continue" not in data:
                return
            cont = dict(data["continue"])

    def search_pages(
        self, query: str, limit: int = 50, page_size: int | None = None, max_requests: int = 20
    ) -> list[dict[str, Any]]:
        """Up to `limit` result pages, merged by page id (prop continuation repeats pages), in `index` order.

        `page_size` is `gsrlimit` (at most 50 for anonymous clients); further pages follow `continue`.
        """
        merged: dict[Any, dict[str, Any]] = {}
        pages = self.iter_pages(query, page_size=page_size or limit, max_requests=max_requests)
        for page in pages:
            key = page.get("pageid", page.get("title"))
            if key in merged:
                if not merged[key].get("videoinfo") and page.get("videoinfo"):
                    merged[key]["videoinfo"] = page["videoinfo"]
                continue
            merged[key] = dict(page)
            if len(merged) >= limit and all(p.get("videoinfo") for p in merged.values()):
                break
        return sorted(merged.values(), key=lambda p: p.get("index", 0))[:limit]

    def search(self, query: str, limit: int = 50, page_size: int | None = None) -> SearchResult:
        """Freely licensed video candidates for `query`, in search rank order, with skip counts by reason."""
        result = SearchResult()
        for page in self.search_pages(query, limit=limit, page_size=page_size):
            outcome = page_to_candidate(
                page, query, max_height=self.max_height, max_bytes=self.max_bytes, site_url=self.site_url
            )
            if isinstance(outcome, str):
                result.skipped[outcome] += 1
                log.debug("skip %s: %s", page.get("title"), outcome)
            else:
                result.candidates.append(outcome)
        return result
