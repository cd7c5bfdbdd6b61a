"""Stage 3, index: a new `media-processed/..._labels.json` → the catalog (DynamoDB) and the lake's tables
(`cliplake.tables`, for SQL engines).

Re-indexing the same summary changes nothing; the catalog can be rebuilt from the lake by re-indexing.
"""

from __future__ import annotations

from typing import Literal

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ValidationError

from cliplake.completion import complete_video
from cliplake.contracts import ObjectRef, VideoSummary
from cliplake.lake import LakeKeyError, summary_key_to_raw_stem
from cliplake.services import Services
from cliplake.tables import write_summary_rows

logger = Logger(service="index", child=True)


class InvalidSummary(Exception):
    """A summary that does not match the contract: retrying is futile, so it ends in the DLQ (and its alarm)."""


class IndexResult(BaseModel):
    video_id: str = ""
    outcome: Literal["indexed", "unchanged", "skipped"]
    reason: str = ""


def index_summary(svc: Services, ref: ObjectRef) -> IndexResult:
    try:
        summary_key_to_raw_stem(ref.key)
    except LakeKeyError as err:
        return IndexResult(outcome="skipped", reason=str(err))
    info = svc.lake.head(ref.key)
    text = svc.lake.get_text(ref.key) if info else None
    if info is None or text is None:
        return IndexResult(outcome="skipped", reason="summary no longer exists")
    try:
        summary = VideoSummary.model_validate_json(text)
    except ValidationError as err:
        reason = f"invalid summary {ref.key}: {err.error_count()} errors, first: {err.errors()[0]['msg']}"
        raise InvalidSummary(reason) from err
    changed = svc.catalog.index_summary(summary, ref.key, info.etag)
    write_summary_rows(svc.lake, summary, ref.key)  # the same rows again when unchanged: tables rebuild by re-index
    complete_video(svc, summary.video_id, ok=True, top_labels=summary.top_labels)
    return IndexResult(video_id=summary.video_id, outcome="indexed" if changed else "unchanged")
