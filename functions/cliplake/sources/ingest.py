"""Ingest: stream one candidate's bytes from its source into the lake's raw prefix, verified and attributed.

The download is never held in memory or on disk: the HTTP response body is read in bounded parts straight into
an S3 multipart upload (the lake adapter's `Lake.upload_stream`, with a `TransferConfig`), so memory stays around
`chunk_bytes x (in-memory chunks + threads)` whatever the file size. Size and SHA-1 are checked while the
bytes pass; a mismatch raises before the last part is sent, so the multipart upload is aborted and no object
(and no S3 event) appears. The attribution travels with the object as user metadata.

A failed download is retried with backoff; then `IngestError` is raised for that video alone, and callers mark
it failed while the rest of the batch goes on.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import urlparse
from urllib.request import url2pathname

import requests
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from cliplake.adapters.s3 import Lake, transfer_config
from cliplake.contracts import Attribution
from cliplake.lake import raw_key
from cliplake.sources.http import Retryable, RetryPolicy, retry_after_seconds
from cliplake.sources.models import Candidate

log = logging.getLogger(__name__)

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# S3 allows 2 KB of user metadata per object (keys + values).
METADATA_LIMIT = 2000


class IngestError(RuntimeError):
    """One video could not be ingested. `reason` is short and stable enough to record in the catalog."""

    def __init__(self, candidate: Candidate, reason: str, *, attempts: int = 1) -> None:
        self.source = candidate.source
        self.source_id = candidate.source_id
        self.reason = reason
        self.attempts = attempts
        super().__init__(
            f"ingest of {candidate.source}/{candidate.source_id} failed after {attempts} attempt(s): {reason}"
        )


class _Permanent(Exception):
    """A failure not worth retrying (HTTP 404, size or SHA-1 mismatch on a complete download)."""


# ------------------------------------------------------------------------------------------------- streaming
class VerifyingStream:
    """A read-only file object over a download that hashes and counts the bytes as they pass.

    When the stream ends (a short read, or the expected size reached) the size and SHA-1 are compared with the
    expected ones and `_Permanent` is raised from `read()`, before the caller receives the final bytes.
    """

    def __init__(self, raw: BinaryIO, expected_size: int | None = None, expected_sha1: str | None = None) -> None:
        self._raw = raw
        self._digest = hashlib.sha1()  # noqa: S324 - content identity as the sources publish it
        self.expected_size = expected_size
        self.expected_sha1 = (expected_sha1 or "").lower() or None
        self.bytes_read = 0
        self.verified = False

    @property
    def sha1(self) -> str:
        return self._digest.hexdigest()

    def read(self, amt: int | None = -1) -> bytes:
        try:
            data = self._raw.read() if amt is None or amt < 0 else self._raw.read(amt)
        except (requests.RequestException, Urllib3HTTPError, OSError) as exc:
            raise Retryable(f"download interrupted after {self.bytes_read} bytes: {type(exc).__name__}") from exc
        if data:
            self._digest.update(data)
            self.bytes_read += len(data)
        ended = (
            not data
            or (amt is not None and amt >= 0 and len(data) < amt)
            or (self.expected_size is not None and self.bytes_read >= self.expected_size)
        )
        if ended and amt != 0:
            self.verify()
        return data

    def verify(self) -> None:
        """Compare size and SHA-1 with the expected values (once the whole body has been read)."""
        if self.verified:
            if self.expected_size is not None and self.bytes_read > self.expected_size:
                raise _Permanent(f"size mismatch: got more than the expected {self.expected_size} bytes")
            return
        self.verified = True
        if self.expected_size is not None and self.bytes_read != self.expected_size:
            raise _Permanent(f"size mismatch: expected {self.expected_size} bytes, got {self.bytes_read}")
        if self.expected_sha1 and self.sha1 != self.expected_sha1:
            raise _Permanent(f"sha1 mismatch: expected {self.expected_sha1}, got {self.sha1}")

    def finish(self) -> None:
        """Drain to the end (normally nothing is left) and verify."""
        while self.read(64 * 1024):
            pass
        self.verify()


@contextmanager
def open_download(
    url: str, session: requests.Session, timeout: float | tuple[float, float] = (10, 60)
) -> Iterator[tuple[BinaryIO, int | None]]:
    """The body of `url` as a file object and its length when known. `file://` URLs are read directly."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        try:
            f = open(url2pathname(parsed.path), "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise _Permanent(f"cannot open {url}: {exc.strerror}") from exc
        with f:
            yield f, os.fstat(f.fileno()).st_size
        return
    if parsed.scheme not in {"http", "https"}:
        raise _Permanent(f"unsupported URL scheme {parsed.scheme!r}")
    try:
        resp = session.get(url, stream=True, timeout=timeout)
    except requests.RequestException as exc:
        raise Retryable(f"download failed: {type(exc).__name__}") from exc
    try:
        if resp.status_code in RETRYABLE_STATUSES:
            raise Retryable(f"HTTP {resp.status_code}", retry_after_seconds(resp.headers.get("Retry-After")))
        if resp.status_code >= 400:
            raise _Permanent(f"HTTP {resp.status_code}")
        resp.raw.decode_content = True
        length = resp.headers.get("Content-Length")
        encoded = resp.headers.get("Content-Encoding", "identity") not in {"", "identity"}
        yield resp.raw, (int(length) if length and length.isdigit() and not encoded else None)
    finally:
        resp.close()


# --------------------------------------------------------------------------------------------------- metadata
def object_metadata(attribution: Attribution) -> dict[str, str]:
    """`attribution.to_metadata()`, with over-long free text shortened to fit S3's 2 KB metadata limit."""
    att = attribution
    for _ in range(12):
        meta = att.to_metadata()
        if sum(len(k) + len(v) for k, v in meta.items()) <= METADATA_LIMIT:
            return meta
        longest = max(("title", "author", "author_url"), key=lambda f: len(getattr(att, f)))
        value = getattr(att, longest)
        att = att.model_copy(update={longest: value[: max(16, len(value) // 2)].rstrip() + "…"})
    return att.to_metadata()


# ------------------------------------------------------------------------------------------------------ ingest
def _upload_once(
    candidate: Candidate,
    lake: Lake,
    key: str,
    session: requests.Session,
    config: TransferConfig,
    timeout: float | tuple[float, float],
    metadata: dict[str, str] | None = None,
) -> VerifyingStream:
    with open_download(candidate.download_url, session, timeout) as (body, length):
        expected = candidate.size if candidate.size_exact else None
        if expected is not None and length is not None and length != expected:
            raise _Permanent(f"size mismatch: source lists {expected} bytes, server sends {length}")
        stream = VerifyingStream(body, expected if expected is not None else length, candidate.sha1)
        meta = {**object_metadata(candidate.to_attribution()), **(metadata or {})}
        try:
            lake.upload_stream(stream, key, candidate.mime or "", meta, config)
        except (Retryable, _Permanent):
            raise
        except (ClientError, BotoCoreError) as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, Retryable | _Permanent):  # raised from read() inside the transfer
                raise cause from None
            raise _Permanent(f"S3 upload failed: {exc}") from exc
        try:
            stream.finish()
        except (Retryable, _Permanent):
            lake.delete_object(key)  # a small object went up in one piece: take it back
            raise
        return stream


def ingest_candidate(
    candidate: Candidate,
    lake: Lake,
    campaign: str,
    ts: str,
    session: requests.Session,
    *,
    retries: int = 3,
    backoff_base: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    config: TransferConfig | None = None,
    timeout: float | tuple[float, float] = (10, 60),
    metadata: dict[str, str] | None = None,
) -> str:
    """Stream `candidate` into `media-raw/video/<source>/<campaign>/<ts>/<file>` and return the key.

    Retries transient failures (network errors, truncated bodies, HTTP 429/5xx honouring `Retry-After`)
    `retries` times with exponential backoff, then raises `IngestError`; permanent failures (HTTP 4xx, size or
    SHA-1 mismatch against the source's values) raise `IngestError` at once.
    """
    key = raw_key(candidate.source, campaign, candidate.filename, ts)
    config = config or transfer_config()
    name = f"ingest {candidate.source}/{candidate.source_id}"
    policy = RetryPolicy(retries, base_s=backoff_base, sleep=sleep, name=name)
    tried = 0

    def attempt() -> VerifyingStream:
        nonlocal tried
        tried += 1
        return _upload_once(candidate, lake, key, session, config, timeout, metadata)

    try:
        stream = policy.call(attempt)
    except (_Permanent, Retryable) as exc:
        raise IngestError(candidate, str(exc), attempts=tried) from None
    log.info(
        "ingested %s/%s -> s3://%s/%s (%d bytes, sha1 %s)",
        candidate.source,
        candidate.source_id,
        lake.bucket,
        key,
        stream.bytes_read,
        stream.sha1,
    )
    return key


@dataclass
class BatchOutcome:
    """What `ingest_batch` did: raw keys of the videos ingested, and reasons for those that failed."""

    ingested: dict[tuple[str, str], str] = field(default_factory=dict)
    failed: dict[tuple[str, str], str] = field(default_factory=dict)


def ingest_batch(
    candidates: Iterable[Candidate],
    lake: Lake,
    campaign: str,
    ts: str,
    session: requests.Session,
    **kwargs: Any,
) -> BatchOutcome:
    """Ingest each candidate in turn; a failure is recorded for that video and the batch goes on."""
    outcome = BatchOutcome()
    for cand in candidates:
        ident = (cand.source, cand.source_id)
        try:
            outcome.ingested[ident] = ingest_candidate(cand, lake, campaign, ts, session, **kwargs)
        except IngestError as exc:
            log.error("%s", exc)
            outcome.failed[ident] = exc.reason
    return outcome


def credits(attributions: Iterable[Attribution | Candidate]) -> list[str]:
    """Ready-to-paste credit lines, one per video (`Attribution.credit_line()`)."""
    return [(a.to_attribution() if isinstance(a, Candidate) else a).credit_line() for a in attributions]
