"""The `samples` source: the sample videos bundled at set-up, so planning and batches run offline.

`<assets_dir>/samples.json` (written by `cliplake_cli.assets`) lists each file with its attribution; every
entry becomes a candidate with a `file://` download URL that `cliplake.sources.ingest` reads directly.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
from pathlib import Path

from cliplake.sources.models import Candidate, SearchResult

SOURCE = "samples"
INDEX = "samples.json"


def _sha1_of(path: Path) -> str:
    digest = hashlib.sha1()  # noqa: S324 - content identity, as Commons publishes it; not security
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def load_samples(assets_dir: str | Path, query: str = "") -> list[Candidate]:
    """The bundled samples as candidates (missing files are left out). Empty when there is no index."""
    root = Path(assets_dir)
    index = root / INDEX
    if not index.is_file():
        return []
    out = []
    for entry in json.loads(index.read_text()):
        path = (root / entry["file"]).resolve()
        if not path.is_file():
            continue
        out.append(
            Candidate(
                source=SOURCE,
                source_id=Path(entry["file"]).stem,
                title=entry.get("title", ""),
                author=entry.get("author", ""),
                author_url=entry.get("author_url", ""),
                page_url=entry.get("source_url", ""),
                licence=entry.get("licence", ""),
                licence_url=entry.get("licence_url", ""),
                download_url=path.as_uri(),
                size=path.stat().st_size,
                sha1=_sha1_of(path),
                mime=mimetypes.guess_type(path.name)[0] or "video/mp4",
                query=query,
            )
        )
    return out


class SamplesSource:
    """The samples behind the same `search(query, limit)` interface as the API clients (query ignored)."""

    needs_query = False

    def __init__(self, assets_dir: str | Path) -> None:
        self.assets_dir = Path(assets_dir)

    def search(self, query: str = "", limit: int = 50) -> SearchResult:
        return SearchResult(candidates=load_samples(self.assets_dir, query)[:limit])
