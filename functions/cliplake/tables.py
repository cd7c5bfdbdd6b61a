"""Tables in the lake: rows for SQL engines (Athena through the Glue catalog, DuckDB locally), written as videos end.

    media-processed/tables/videos/source=<source>/campaign=<campaign>/<video_id>.json   one row per video
    media-processed/tables/labels/source=<source>/campaign=<campaign>/<video_id>.json   one row per label segment

Newline-delimited JSON, one object per video per table, its key derived from the video id: writing the rows of a
video again rewrites the same bytes (re-indexing is idempotent, no duplicates), and deleting the tables then
re-indexing the lake rebuilds them. The partition columns (`source`, `campaign`) live in the key only, Hive style,
so a query on one campaign reads only that campaign's files. None of these keys ends in `_labels.json`, so the
bucket notification that starts the index stage never fires for them.

The index stage writes a video's rows from its summary; the stage that marks a video FAILED writes its video row
(status and reason) and empties its label rows. A text-lines table joins `SUMMARY_TABLES` once summaries carry
text detections.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field

from cliplake.contracts import VideoRecord, VideoStatus, VideoSummary
from cliplake.lake import TS_FORMAT, parse_raw_key

TABLES_PREFIX = "media-processed/tables/"
PARTITIONS = ("source", "campaign")


class Writer(Protocol):
    """What the tables need of the lake adapter (`cliplake.adapters.s3.Lake`)."""

    def put_json(self, key: str, data: Any) -> str: ...


# ------------------------------------------------------------------------------------------------------ rows
class VideoRow(BaseModel):
    """`videos`: one row per video, INDEXED or FAILED (with its reason)."""

    video_id: str
    status: str
    reason: str = ""
    filename: str = ""
    title: str = ""
    author: str = ""
    licence: str = ""
    source_url: str = ""
    raw_key: str = ""
    summary_key: str = ""
    ingested_at: str = Field(description="When the video entered the lake: `YYYY-MM-DD HH:MM:SS` UTC.")
    duration_ms: int = 0
    width: int = 0
    height: int = 0
    codec: str = ""
    frame_rate: float = 0.0
    transcoded: bool = False
    shots: int = 0
    label_segments: int = 0
    top_labels: list[str] = Field(default_factory=list)
    moderation: list[str] = Field(default_factory=list)
    credit_line: str = ""


class LabelRow(BaseModel):
    """`labels`: one row per label segment (a label on screen from `start_ms` to `end_ms`)."""

    video_id: str
    name: str
    start_ms: int
    end_ms: int
    max_confidence: float
    instances: int = 0
    parents: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    ingested_at: str


#: Each table's row model and its columns in the order of the Glue table and the DuckDB views.
TABLES: dict[str, type[BaseModel]] = {"videos": VideoRow, "labels": LabelRow}


def table_key(table: str, source: str, campaign: str, video_id: str) -> str:
    return f"{TABLES_PREFIX}{table}/source={source}/campaign={campaign}/{video_id}.json"


def ingested_at(raw_key: str, fallback_iso: str = "") -> str:
    """When a video entered the lake: its key's batch timestamp, else the given ISO time (an ad-hoc drop), else now."""
    try:
        ts = parse_raw_key(raw_key).timestamp
    except ValueError:
        ts = ""
    if ts:
        moment = datetime.strptime(ts, TS_FORMAT).replace(tzinfo=UTC)
    elif fallback_iso:
        moment = datetime.fromisoformat(fallback_iso)
        moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    else:
        moment = datetime.now(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def video_row(summary: VideoSummary, summary_key: str) -> VideoRow:
    a = summary.attribution
    return VideoRow(
        video_id=summary.video_id,
        status=VideoStatus.INDEXED.value,
        filename=summary.filename,
        title=a.title,
        author=a.author,
        licence=a.licence,
        source_url=a.source_url,
        raw_key=summary.raw_key,
        summary_key=summary_key,
        ingested_at=ingested_at(summary.raw_key, summary.provenance.summary_written_at),
        duration_ms=summary.video.duration_ms,
        width=summary.video.width,
        height=summary.video.height,
        codec=summary.video.codec,
        frame_rate=summary.video.frame_rate,
        transcoded=summary.provenance.transcoded,
        shots=len(summary.shots),
        label_segments=len(summary.labels),
        top_labels=[t.name for t in summary.top_labels],
        moderation=sorted({m.name for m in summary.moderation}),
        credit_line=summary.credit_line,
    )


def label_rows(summary: VideoSummary) -> list[LabelRow]:
    when = ingested_at(summary.raw_key, summary.provenance.summary_written_at)
    segments = sorted(summary.labels, key=lambda s: (s.start_ms, s.name, s.end_ms))
    return [
        LabelRow(
            video_id=summary.video_id,
            name=s.name,
            start_ms=s.start_ms,
            end_ms=s.end_ms,
            max_confidence=round(s.max_confidence, 3),
            instances=s.instances,
            parents=s.parents,
            categories=s.categories,
            ingested_at=when,
        )
        for s in segments
    ]


#: The tables built from a summary: name -> rows. The text-lines table of text detection goes here.
SUMMARY_TABLES: dict[str, Callable[[VideoSummary, str], list[BaseModel]]] = {
    "videos": lambda summary, key: [video_row(summary, key)],
    "labels": lambda summary, key: list(label_rows(summary)),
}


def to_ndjson(rows: Iterable[BaseModel]) -> str:
    """One JSON object a line, keys in model order: the same rows always give the same bytes."""
    return "".join(
        json.dumps(r.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows
    )


# ---------------------------------------------------------------------------------------------------- writes
def write_summary_rows(lake: Writer, summary: VideoSummary, summary_key: str) -> dict[str, str]:
    """Write every table's rows of an indexed video; returns table -> key."""
    keys = {}
    for table, build in SUMMARY_TABLES.items():
        key = table_key(table, summary.source, summary.campaign, summary.video_id)
        lake.put_json(key, to_ndjson(build(summary, summary_key)))
        keys[table] = key
    return keys


def as_video_record(video: VideoRecord | Mapping[str, Any]) -> VideoRecord:
    """A catalog record as the model (the operator side holds plain dicts of it)."""
    return video if isinstance(video, VideoRecord) else VideoRecord.model_validate(dict(video))


def failed_row(video: VideoRecord | Mapping[str, Any], reason: str) -> VideoRow:
    """The `videos` row of a failed video, from its catalog record (or a planned item's)."""
    video = as_video_record(video)
    attribution = video.attribution
    return VideoRow(
        video_id=video.video_id,
        status=VideoStatus.FAILED.value,
        reason=reason[:1000],
        filename=video.filename,
        title=attribution.title or (video.model_extra or {}).get("title", ""),
        author=attribution.author,
        licence=attribution.licence,
        source_url=attribution.source_url,
        raw_key=video.raw_key,
        ingested_at=ingested_at(video.raw_key, video.created_at),
    )


def write_failed_rows(lake: Writer, video: VideoRecord | Mapping[str, Any], reason: str) -> dict[str, str]:
    """A failed video: its `videos` row says FAILED and why; every other table holds no row of it (an earlier
    version's label rows are emptied: the object stays, so no delete permission is needed)."""
    video = as_video_record(video)
    source, campaign, vid = video.source or "dropin", video.campaign or "adhoc", video.video_id
    keys = {}
    for table in SUMMARY_TABLES:
        key = table_key(table, source, campaign, vid)
        rows = [failed_row(video, reason)] if table == "videos" else []
        lake.put_json(key, to_ndjson(rows))
        keys[table] = key
    return keys
