"""The models every source speaks: a `Candidate` video and the outcome of a search."""

from __future__ import annotations

import posixpath
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

from pydantic import BaseModel, Field

from cliplake.contracts import Attribution


class Candidate(BaseModel):
    """One video a source offers, with everything needed to download, verify and credit it.

    `size` and `sha1` describe the bytes behind `download_url` when the source publishes them; `size_exact`
    is False when `size` is an estimate (a Commons transcode: bitrate x duration). `source_sha1` is the
    source's hash of the *original* file, kept for de-duplication even when a smaller rendition is fetched.
    """

    source: str
    source_id: str
    title: str = ""
    author: str = ""
    author_url: str = ""
    page_url: str = ""
    licence: str = ""
    licence_url: str = ""
    download_url: str
    size: int | None = None
    size_exact: bool = True
    sha1: str | None = None
    source_sha1: str | None = None
    mime: str = ""
    width: int | None = None
    height: int | None = None
    duration_s: float | None = None
    query: str = ""
    rendition: str = "original"
    modifications: list[str] = Field(default_factory=list)

    @property
    def content_hash(self) -> str | None:
        """The hash that identifies the work across sources and batches (the original's SHA-1)."""
        return self.source_sha1 or self.sha1

    @property
    def filename(self) -> str:
        """The file name the download is stored under (the last path segment of `download_url`)."""
        name = unquote(posixpath.basename(urlparse(self.download_url).path))
        return name or f"{self.source}-{self.source_id}"

    def to_attribution(self) -> Attribution:
        """The attribution stored with the object, the summary and the catalog."""
        return Attribution(
            title=self.title,
            author=self.author,
            author_url=self.author_url,
            source=self.source,
            source_id=self.source_id,
            source_url=self.page_url,
            licence=self.licence,
            licence_url=self.licence_url,
            modifications=list(self.modifications),
            sha1=self.content_hash or "",
        )


@dataclass
class SearchResult:
    """Candidates in the source's ranking order, plus what was skipped and why."""

    candidates: list[Candidate] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def extend(self, other: SearchResult) -> None:
        self.candidates.extend(other.candidates)
        self.skipped.update(other.skipped)


def short_side(width: int | None, height: int | None) -> int:
    """The "p" of a rendition (720 for 1280x720 and for a 720x1280 portrait clip); 0 when unknown."""
    sides = [s for s in (width, height) if s]
    return min(sides) if sides else 0
