"""Batch planning: which candidates a batch ingests, and the campaigns (search queries) it draws from.

Plain functions over `Candidate`s: candidates are spread evenly over the sources that have some (a batch of 2
takes one from each; an odd remainder, or a source running short, is filled from the others), de-duplicated
against the catalog by source id and by content hash, and kept within the duration and size limits. Catalog
access is injected as two callables (or any object with `seen`/`seen_hash`), so the DynamoDB adapter plugs in
without this module knowing about it.

Campaigns live in SSM Parameter Store as JSON under `Settings.campaigns_parameter_path`:
`/cliplake/campaigns/<name>` = `{"queries": {"wikimedia": [...], "pixabay": [...]}}`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any, Protocol

# Campaigns live in `cliplake.campaigns` (their SSM parameters).
from cliplake.campaigns import (  # noqa: F401 (re-exported for the sources' callers)
    CURRENT_CAMPAIGN,
    DEFAULT_CAMPAIGNS,
    Campaign,
    CampaignNotFound,
    campaign_parameter_name,
    current_campaign_parameter_name,
    default_campaign,
    get_current_campaign,
    list_campaigns,
    load_campaign,
    seed_default_campaigns,
    set_current_campaign,
)
from cliplake.sources.models import Candidate, SearchResult

log = logging.getLogger(__name__)

# Rekognition Video's own limits: whatever the settings say, nothing above these is planned.
REKOGNITION_MAX_BYTES = 10 * 1024**3
REKOGNITION_MAX_DURATION_S = 6 * 3600.0

SKIP_SEEN_ID = "already_in_catalog"
SKIP_SEEN_HASH = "same_content_in_catalog"
SKIP_DUPLICATE = "duplicate_in_batch"
SKIP_TOO_LONG = "too_long"
SKIP_TOO_LARGE = "too_large"


# ------------------------------------------------------------------------------------------------- catalog view
class CatalogView(Protocol):
    """What planning needs to know about the catalog."""

    def seen(self, source: str, source_id: str) -> bool: ...

    def seen_hash(self, sha1: str) -> bool: ...


class Source(Protocol):
    """A candidate source: the Wikimedia and Pixabay clients and `SamplesSource` all fit."""

    def search(self, query: str, limit: int = ...) -> SearchResult: ...


def _never(*_: Any) -> bool:
    return False


@dataclass(frozen=True)
class Limits:
    """Per-video limits of a batch (capped at Rekognition's 10 GB / 6 h)."""

    max_duration_s: float = 7200.0
    max_bytes: int = 4096 * 1024**2

    @classmethod
    def from_settings(cls, settings: Any) -> Limits:
        return cls(max_duration_s=settings.max_duration_s, max_bytes=int(settings.max_size_mb * 1024**2))

    @property
    def effective_duration_s(self) -> float:
        return min(self.max_duration_s, REKOGNITION_MAX_DURATION_S)

    @property
    def effective_bytes(self) -> int:
        return min(self.max_bytes, REKOGNITION_MAX_BYTES)


@dataclass
class Plan:
    """The candidates a batch ingests, in order, and how many others were passed over, by reason."""

    items: list[Candidate] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def per_source(self) -> Counter[str]:
        return Counter(c.source for c in self.items)


# ---------------------------------------------------------------------------------------------------- planning
def skip_reason(
    candidate: Candidate,
    limits: Limits,
    seen: Callable[[str, str], bool],
    seen_hash: Callable[[str], bool],
) -> str | None:
    """Why `candidate` cannot go into a batch, or None when it can."""
    if candidate.duration_s is not None and candidate.duration_s > limits.effective_duration_s:
        return SKIP_TOO_LONG
    if candidate.size is not None and candidate.size > limits.effective_bytes:
        return SKIP_TOO_LARGE
    if seen(candidate.source, candidate.source_id):
        return SKIP_SEEN_ID
    if candidate.content_hash and seen_hash(candidate.content_hash):
        return SKIP_SEEN_HASH
    return None


def plan_batch(
    candidates_by_source: Mapping[str, Sequence[Candidate]],
    batch_size: int,
    *,
    limits: Limits | None = None,
    seen: Callable[[str, str], bool] | None = None,
    seen_hash: Callable[[str], bool] | None = None,
    catalog: CatalogView | None = None,
) -> Plan:
    """Pick up to `batch_size` candidates, round-robin over the sources in the mapping's order.

    Each source's candidates are taken in their own order (search rank); one that fails a limit or is already
    known (by id or content hash, in the catalog or earlier in this batch) is skipped and counted, and the
    next one is considered. A source that runs out simply drops out of the rotation, so the others fill its
    share. Catalog callbacks are only called for candidates actually considered.
    """
    limits = limits or Limits()
    seen = seen or (catalog.seen if catalog else _never)
    seen_hash = seen_hash or (catalog.seen_hash if catalog else _never)
    plan = Plan()
    queues = {source: iter(cands) for source, cands in candidates_by_source.items() if cands}
    picked_ids: set[tuple[str, str]] = set()
    picked_hashes: set[str] = set()
    while len(plan.items) < batch_size and queues:
        for source in list(queues):
            if len(plan.items) >= batch_size:
                break
            for cand in queues[source]:
                if (cand.source, cand.source_id) in picked_ids or (
                    cand.content_hash and cand.content_hash in picked_hashes
                ):
                    plan.skipped[SKIP_DUPLICATE] += 1
                    continue
                reason = skip_reason(cand, limits, seen, seen_hash)
                if reason:
                    plan.skipped[reason] += 1
                    log.debug("plan: skip %s/%s: %s", cand.source, cand.source_id, reason)
                    continue
                plan.items.append(cand)
                picked_ids.add((cand.source, cand.source_id))
                if cand.content_hash:
                    picked_hashes.add(cand.content_hash)
                break
            else:
                del queues[source]
    return plan


def interleave(lists: Iterable[Sequence[Candidate]]) -> list[Candidate]:
    """Round-robin merge (first of each query, then second of each ...), so a batch mixes the queries."""
    return [c for group in zip_longest(*lists) for c in group if c is not None]


def gather_candidates(
    sources: Mapping[str, Source],
    queries: Mapping[str, Sequence[str]],
    per_query: int = 20,
) -> tuple[dict[str, list[Candidate]], Counter[str], dict[str, str]]:
    """Search every source with its campaign queries.

    Returns the candidates per source (queries interleaved), the search-time skip counts (prefixed with the
    source, e.g. `wikimedia:licence_not_allowed`) and the sources that failed (source -> error message): a
    failing source is left out and the others fill the batch.
    """
    found: dict[str, list[Candidate]] = {}
    skipped: Counter[str] = Counter()
    errors: dict[str, str] = {}
    for name, source in sources.items():
        qs = list(queries.get(name) or [])
        if not qs:
            if getattr(source, "needs_query", True):
                continue
            qs = [""]
        per_q: list[list[Candidate]] = []
        try:
            for q in qs:
                result = source.search(q, limit=per_query)
                per_q.append(result.candidates)
                skipped.update({f"{name}:{reason}": n for reason, n in result.skipped.items()})
        except Exception as exc:  # one source down must not sink the batch
            log.warning("source %s failed: %s", name, exc)
            errors[name] = str(exc)
        found[name] = interleave(per_q)
    return found, skipped, errors
