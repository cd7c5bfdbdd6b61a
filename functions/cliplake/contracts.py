"""Pydantic contracts of every message and record that crosses a stage boundary.

Event shapes follow what AWS delivers (see `events/`); they are lenient where the local cloud (moto) leaves
documented fields out, and strict where the pipeline depends on a field.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, Literal
from urllib.parse import quote, unquote

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from pydantic import BaseModel, ConfigDict, Field, Json, field_validator, model_validator

from cliplake.lake import decode_event_key

SCHEMA_VERSION = 1


# --------------------------------------------------------------------------------------------------- S3 events
class S3Bucket(BaseModel):
    name: str


class S3Object(BaseModel):
    key: str
    size: int | None = None
    eTag: str | None = None
    versionId: str | None = None
    sequencer: str | None = None

    @field_validator("key")
    @classmethod
    def _decode(cls, v: str) -> str:
        return decode_event_key(v)


class S3Entity(BaseModel):
    bucket: S3Bucket
    object: S3Object


class S3EventRecord(BaseModel):
    eventName: str
    eventTime: datetime | None = None
    s3: S3Entity


class S3Notification(BaseModel):
    """An S3 event notification as S3 sends it to SQS. `Event == "s3:TestEvent"` carries no records."""

    Records: list[S3EventRecord] = Field(default_factory=list)
    Event: str | None = None


class S3NotificationSqsRecord(SqsRecordModel):
    body: Json[S3Notification]  # type: ignore[assignment]


class ObjectRef(BaseModel):
    """The object one S3 event names (bucket, decoded key, ETag): what analyze and index are keyed by."""

    bucket: str
    key: str
    etag: str = ""

    @classmethod
    def from_event(cls, record: S3EventRecord) -> ObjectRef:
        return cls(bucket=record.s3.bucket.name, key=record.s3.object.key, etag=record.s3.object.eTag or "")


# ------------------------------------------------------------------------------------ Rekognition completion
class JobKind(StrEnum):
    LABELS = "labels"
    MODERATION = "moderation"
    SEGMENTS = "segments"
    TEXT = "text"


#: Each analysis's Rekognition Video API, named by its Start operation (the one table: its Get operation, its
#: boto3 method names and the names a completion's `API` field takes all follow from it).
API_NAME: dict[JobKind, str] = {
    JobKind.LABELS: "StartLabelDetection",
    JobKind.MODERATION: "StartContentModeration",
    JobKind.SEGMENTS: "StartSegmentDetection",
    JobKind.TEXT: "StartTextDetection",
}


def _upper_snake(camel: str) -> str:
    """`LabelDetection` → `LABEL_DETECTION`."""
    return "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(camel)).upper()


#: A completion's `API` field → the analysis: the Start operation's name, or its upper-snake form (`LABEL_DETECTION`).
API_TO_KIND: dict[str, JobKind] = {
    name: kind for kind, api in API_NAME.items() for name in (api, _upper_snake(api.removeprefix("Start")))
}


class CompletionVideo(BaseModel):
    S3ObjectName: str
    S3Bucket: str


class RekognitionCompletion(BaseModel):
    """The message Rekognition publishes to the NotificationChannel's topic.

    Reaches SQS either wrapped in the SNS envelope or raw (RawMessageDelivery): both are accepted.
    """

    model_config = ConfigDict(extra="allow")

    JobId: str
    Status: str
    API: str
    JobTag: str | None = None
    Timestamp: int | None = None
    Video: CompletionVideo
    Message: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _unwrap_sns(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("Type") == "Notification" and isinstance(data.get("Message"), str):
            return json.loads(data["Message"])
        return data

    @property
    def kind(self) -> JobKind | None:
        return API_TO_KIND.get(self.API)

    @property
    def succeeded(self) -> bool:
        return self.Status == "SUCCEEDED"


class CompletionSqsRecord(SqsRecordModel):
    body: Json[RekognitionCompletion]  # type: ignore[assignment]


# ------------------------------------------------------------------------------------------------ attribution
class Attribution(BaseModel):
    """Who made a video and under which licence; stored with the object, in the summary and the catalog."""

    title: str = ""
    author: str = ""
    author_url: str = ""
    source: str = "dropin"
    source_id: str = ""
    source_url: str = ""
    licence: str = ""
    licence_url: str = ""
    modifications: list[str] = Field(default_factory=list)
    sha1: str = ""

    def credit_line(self) -> str:
        parts = [f'"{self.title}"' if self.title else "Untitled"]
        if self.author:
            parts[0] += f" by {self.author}"
        if self.licence:
            lic = f"{self.licence} ({self.licence_url})" if self.licence_url else self.licence
            parts.append(f"licensed under {lic}")
        if self.source_url:
            parts.append(f"via {self.source} ({self.source_url})")
        elif self.source:
            parts.append(f"via {self.source}")
        line = ", ".join(parts)
        if self.modifications:
            line += "; modified: " + "; ".join(self.modifications)
        return line

    # S3 user metadata is ASCII-only and small: the attribution travels as one percent-encoded JSON value.
    METADATA_KEY: ClassVar[str] = "attribution"

    def to_metadata(self) -> dict[str, str]:
        return {self.METADATA_KEY: quote(self.model_dump_json(), safe="")}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str] | None) -> Attribution | None:
        raw = (metadata or {}).get(cls.METADATA_KEY)
        return cls.model_validate_json(unquote(raw)) if raw else None


# -------------------------------------------------------------------------------------------- the summary JSON
class VideoMetadata(BaseModel):
    codec: str = ""
    format: str = ""
    duration_ms: int = 0
    frame_rate: float = 0.0
    width: int = 0
    height: int = 0
    color_range: str = ""


class LabelSegment(BaseModel):
    name: str
    start_ms: int
    end_ms: int
    max_confidence: float
    parents: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list)
    instances: int = 0


class TopLabel(BaseModel):
    name: str
    max_confidence: float
    total_ms: int
    segments: int
    categories: list[str] = Field(default_factory=list)


class ModerationFinding(BaseModel):
    name: str
    parent_name: str = ""
    taxonomy_level: int | None = None
    confidence: float
    start_ms: int
    end_ms: int


class Shot(BaseModel):
    index: int
    start_ms: int
    end_ms: int
    start_timecode: str
    end_timecode: str
    start_frame: int | None = None
    end_frame: int | None = None
    confidence: float


class TechnicalCue(BaseModel):
    type: str
    start_ms: int
    end_ms: int
    start_timecode: str
    end_timecode: str
    confidence: float


class JobProvenance(BaseModel):
    job_id: str
    status: str
    api: str
    model_version: str = ""
    completed_at: int | None = None


class Provenance(BaseModel):
    raw_key: str
    raw_etag: str = ""
    analysed_key: str
    transcoded: bool = False
    original_codec: str = ""
    jobs: dict[JobKind, JobProvenance] = Field(default_factory=dict)
    analysis_started_at: str = ""
    summary_written_at: str = ""


class TextLine(BaseModel):
    """A line of on-screen text and when it was on screen (Rekognition TEXT_DETECTION, type LINE)."""

    text: str
    start_ms: int
    end_ms: int
    confidence: float
    box: dict[str, float] = Field(default_factory=dict)  # BoundingBox of its first sighting (fractions)


def text_words(text: str) -> list[str]:
    """The searchable words of a text: lower case, letters and digits only, at least 2 characters."""
    import re

    return sorted({w for w in re.findall(r"[0-9a-z]+", text.lower()) if len(w) >= 2})


class VideoSummary(BaseModel):
    """`media-processed/.../<name>_labels.json`: everything an editor needs about one video."""

    schema_version: int = SCHEMA_VERSION
    video_id: str
    bucket: str
    raw_key: str
    source: str
    campaign: str
    filename: str
    video: VideoMetadata
    labels: list[LabelSegment] = Field(default_factory=list)
    top_labels: list[TopLabel] = Field(default_factory=list)
    moderation: list[ModerationFinding] = Field(default_factory=list)
    shots: list[Shot] = Field(default_factory=list)
    technical_cues: list[TechnicalCue] = Field(default_factory=list)
    text: list[TextLine] = Field(default_factory=list)
    attribution: Attribution
    credit_line: str = ""
    provenance: Provenance


# ------------------------------------------------------------------------------------------------ the catalog
class VideoStatus(StrEnum):
    RECEIVED = "RECEIVED"
    ANALYZING = "ANALYZING"
    SUMMARIZED = "SUMMARIZED"
    INDEXED = "INDEXED"
    FAILED = "FAILED"


class JobStatus(StrEnum):
    """A Rekognition job's status (`JobStatus` of its Get* answer, `Status` of its completion)."""

    IN_PROGRESS = "IN_PROGRESS"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    ERROR = "ERROR"


TERMINAL_JOB = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.ERROR})


class JobState(BaseModel):
    """One Rekognition job of a video, in its record's `jobs` map."""

    job_id: str
    status: JobStatus = JobStatus.IN_PROGRESS
    message: str = ""

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_JOB

    @property
    def succeeded(self) -> bool:
        return self.status == JobStatus.SUCCEEDED


class CatalogRecord(BaseModel):
    """A stored catalog item: its attributes by their stored names; attributes a newer version added are kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def item(self) -> dict[str, Any]:
        """Every attribute, by its stored name: what a store writes."""
        return self.model_dump(mode="json", by_alias=True)

    def plain(self) -> dict[str, Any]:
        """The attributes the item has (as read, or as given), by their stored names: the operator side's view."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class VideoRecord(CatalogRecord):
    """One video: status, attribution, metadata, jobs, top labels (keys: `adapters.catalog`, as for each record)."""

    video_id: str = ""
    status: VideoStatus = VideoStatus.RECEIVED
    reason: str = ""
    raw_key: str = ""
    raw_etag: str = ""
    size: int = Field(default=0, alias="bytes")
    source: str = "dropin"
    campaign: str = ""
    filename: str = ""
    attribution: Attribution = Field(default_factory=Attribution)
    batch_id: str = ""
    jobs: dict[JobKind, JobState] = Field(default_factory=dict)
    job_slots: int | None = None  # Rekognition jobs in flight held by this video (back-pressure)
    created_at: str = ""
    updated_at: str = ""
    jobs_started_at: str = ""
    analysis_started_at: str = ""
    analysed_key: str = ""
    transcoded: bool = False
    transcode: str = ""  # "segments": transcoded by a fan-out of segment invocations
    original_codec: str = ""
    original_container: str = ""
    failed_at: str = ""
    summary_key: str = ""
    summary_etag: str = ""
    summary_written_at: str = ""
    last_completion_ms: int = 0
    indexed_at: str = ""
    duration_ms: int = 0
    width: int = 0
    height: int = 0
    codec: str = ""
    frame_rate: float = 0.0
    top_labels: list[TopLabel] = Field(default_factory=list)
    label_scores: dict[str, float] = Field(default_factory=dict)
    shots: int = 0
    moderation: list[str] = Field(default_factory=list)
    credit_line: str = ""
    text_words: list[str] = Field(default_factory=list)
    text_lines: int = 0

    @property
    def done(self) -> bool:
        """Summarized, indexed or failed: nothing left to start for this version."""
        return self.status in (VideoStatus.SUMMARIZED, VideoStatus.INDEXED, VideoStatus.FAILED)


class JobRef(CatalogRecord):
    """A Rekognition job → its video (pk=JOB#<job id>): for completions without a JobTag."""

    video_id: str
    kind: JobKind


class TaskRecord(CatalogRecord):
    """The batch item of a video: its task token, batch, ingest and completion."""

    video_id: str
    task_token: str = ""
    batch_id: str = ""
    source: str = ""
    source_id: str = ""
    title: str = ""
    raw_key: str = ""
    ingest_started_at: str = ""
    completed_at: str = ""
    outcome: str = ""
    reason: str = ""

    @property
    def open(self) -> bool:
        return bool(self.task_token) and not self.completed_at


class BatchItemRef(BaseModel):
    """A planned video of a batch (one catalog record per item, under the batch: `Batches.put_items`), in plan
    order (`position`), with what it came to once the batch is summarised (`outcome` INDEXED or FAILED, and why)."""

    model_config = ConfigDict(extra="allow")

    video_id: str
    source: str = ""
    title: str = ""
    raw_key: str = ""
    position: int = 0
    outcome: str = ""
    reason: str = ""


class LabelHit(CatalogRecord):
    """One video in the label index (by label, sorted by confidence): best first."""

    video_id: str
    name: str
    confidence: float
    total_ms: int = 0
    campaign: str = ""
    source: str = ""
    filename: str = ""


class TextHit(CatalogRecord):
    """One video in the text index (by word): the first line the word appears in."""

    video_id: str
    word: str
    line: str = ""
    start_ms: int = 0
    confidence: float = 0.0
    campaign: str = ""
    source: str = ""
    filename: str = ""


class IngestedRecord(CatalogRecord):
    """A source's video, or a content hash, already ingested (planning de-duplicates)."""

    video_id: str
    source: str = ""
    source_id: str = ""


class SourceCounters(BaseModel):
    """Per-source counters: each video counted once."""

    raw: int = 0
    processed: int = 0
    failed: int = 0


# ------------------------------------------------------------------------------------------------ batches
class BatchTrigger(StrEnum):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    DASHBOARD = "dashboard"
    SMOKE = "smoke"


class BatchStatus(StrEnum):
    PLANNING = "PLANNING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class BatchInput(BaseModel):
    """The execution input: from the schedule, `cliplake run`, the dashboard or `cliplake smoke`.
    An empty campaign means the current one (SSM `/cliplake/current-campaign`)."""

    model_config = ConfigDict(extra="ignore")

    campaign: str = ""
    batch_size: int = Field(default=2, ge=0)
    max_concurrency: int | None = Field(default=None, ge=1)
    trigger: BatchTrigger = BatchTrigger.MANUAL


class PlanTask(BaseModel):
    """BatchQueue message of the Plan state (`sqs:sendMessage.waitForTaskToken`)."""

    task: Literal["plan"]
    token: str
    batch_id: str
    execution_arn: str = ""
    input: BatchInput = Field(default_factory=BatchInput)


class SummarizeTask(BaseModel):
    """BatchQueue message of the Summarize state: the Map's results (one per item: the index stage's output,
    or the Catch's failure record)."""

    task: Literal["summarize"]
    token: str
    batch_id: str
    execution_arn: str = ""
    results: list[dict[str, Any]] = Field(default_factory=list)


class BatchItem(BaseModel):
    """One planned video: where it will land in the lake, and the candidate to download (a `Candidate` dump)."""

    video_id: str
    source: str
    source_id: str = ""
    title: str = ""
    raw_key: str
    candidate: dict[str, Any]
    features: list[str] | None = None  # the campaign's choice of analyses (None: the stack's Features)


class ItemInput(BaseModel):
    batch_id: str
    campaign: str
    ts: str
    item: BatchItem


class ItemTask(BaseModel):
    """IngestQueue message of one Map iteration (`sqs:sendMessage.waitForTaskToken`)."""

    token: str
    batch_id: str
    input: ItemInput


class ItemSqsRecord(SqsRecordModel):
    body: Json[ItemTask]  # type: ignore[assignment]


class BatchFailure(BaseModel):
    video_id: str
    title: str = ""
    reason: str


class BatchLabel(BaseModel):
    name: str
    videos: int
    max_confidence: float


class BatchOutcome(BaseModel):
    """What a batch came to: counts, failures with their reasons, top labels (its summary and its record). The
    failures listed are the first ones, as many as fit the summary's bounds (`failures_unlisted` counts the
    rest); every item's outcome and reason is on its own item record (`Batches.items`)."""

    batch_id: str
    campaign: str = ""
    trigger: str = ""
    offline: bool = False
    received: int = 0
    processed: int = 0
    failed: int = 0
    failures: list[BatchFailure] = Field(default_factory=list)
    failures_unlisted: int = 0
    top_labels: list[BatchLabel] = Field(default_factory=list)
    started_at: str = ""
    ended_at: str = ""
    reason: str = ""  # why nothing was planned, when nothing was


class BatchSummary(BatchOutcome):
    """What the Summarize state returns; the state machine publishes `subject`/`message` to the topic."""

    subject: str = ""
    message: str = ""


class BatchRecord(CatalogRecord, BatchOutcome):
    """One batch (its id is the execution name): plan, status, summary; the dashboard reads it. Its planned items
    are records of their own (`BatchItemRef`), so the record stays small whatever the batch's size."""

    execution_arn: str = ""
    batch_size: int = 0
    max_concurrency: int = 0
    status: str = BatchStatus.PLANNING.value  # a BatchStatus, or the execution's status the local cloud records
    sources_failed: dict[str, str] = Field(default_factory=dict)
    skipped: dict[str, int] = Field(default_factory=dict)


# ------------------------------------------------------------------------------------------ segmented transcode
class SegmentTask(BaseModel):
    """A message on the segment queue: encode one time range (`video`), the whole audio track (`audio`), or join
    the parts into the rendition (`join`) of one version (`etag`) of a raw video."""

    kind: Literal["video", "audio", "join"]
    bucket: str
    raw_key: str
    etag: str
    index: int = 0
    start: float = 0.0
    end: float | None = None  # None: to the end of the video

    @property
    def part(self) -> str:
        return "audio.m4a" if self.kind == "audio" else video_part(self.index)


def video_part(index: int) -> str:
    return f"v{index:05d}.mp4"


class SegmentSqsRecord(SqsRecordModel):
    body: Json[SegmentTask]  # type: ignore[assignment]
