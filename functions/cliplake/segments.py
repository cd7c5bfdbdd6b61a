"""A long non-H.264 video transcoded by a fan-out of segment invocations, then joined into one H.264 rendition.

    analyze (the video is too long for one invocation)
      → split points at the source's keyframes, read from its index over a presigned URL (no download)
      → the TRANSCODE task record in the catalog, then one `video` task per time range and one `audio` task
        on the segment queue
    SegmentFunction, `video` / `audio` (in parallel, up to the event source's MaximumConcurrency)
      → reads only its range over a presigned URL, encodes a closed-GOP H.264 part (or the whole audio track once),
        puts it under `<name>_h264.parts/` next to the rendition, adds it to the record's done set
      → the task that completes the set queues one `join` task
    SegmentFunction, `join` (claimed once in the record)
      → concatenates the parts by stream copy, muxes the audio, puts `<name>_h264.mp4`, removes the parts
      → starts the analysis as analyze does (the same function: the rendition is now in the lake)

Idempotent: a redelivered part task finds its part (same source etag) and re-encodes nothing; the done set counts a
part once; the join is claimed with a conditional write and finds a rendition already made; analysis start is the
catalog-guarded analyze. Parts a failure leaves behind expire by the bucket's lifecycle rule.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Literal, Protocol

from aws_lambda_powertools import Logger
from pydantic import BaseModel

from cliplake.adapters.transcodes import SegmentQueue, Transcodes
from cliplake.completion import fail_video, heartbeat_video
from cliplake.contracts import ObjectRef, SegmentTask, VideoRecord, video_part
from cliplake.lake import RawKey, parse_raw_key
from cliplake.media import MAX_BYTES, MediaError, Probe, encode_audio, encode_segment, join_parts, split_points
from cliplake.services import Services
from cliplake.settings import SegmentsSettings

logger = Logger(service="segment", child=True)

PART_METADATA = "source-etag"
AUDIO_PART = "audio.m4a"
PART_TAGS = {"cliplake-part": "true"}  # the bucket's lifecycle rule expires parts a failed transcode left behind


class SegmentResult(BaseModel):
    video_id: str
    outcome: Literal["encoded", "reused", "joined", "skipped", "stale", "failed"]
    part: str = ""
    reason: str = ""


#: libx264 with TRANSCODE_ARGS encoded 73 fps of 1080p on 2 cores (FACTS.md): 151 Mpx/s; analyze's 3008 MB is
#: ≈ 1.7 vCPU, and real footage is ≈ 2x harder than the synthetic source measured: ≈ 64 Mpx/s in Lambda.
SINGLE_PASS_PIXELS_PER_S = 64e6
SINGLE_PASS_BUDGET_S = 600.0  # of the 900 s invocation: the rest for the download, the probe and the upload


def single_pass_estimate_s(probed: Probe) -> float:
    """The seconds one analyze invocation would take to transcode the video (0 when its frame rate is unknown)."""
    return probed.duration_s * probed.fps * probed.width * probed.height / SINGLE_PASS_PIXELS_PER_S


def fans_out(svc: Services, probed: Probe) -> bool:
    """Whether a video to transcode is too long for one invocation (analyze then queues segments instead): longer
    than `single_pass_max_s`, or too many pixels to encode in the budget (a 4K video of a few minutes)."""
    return (
        probed.duration_s > svc.group(SegmentsSettings).single_pass_max_s
        or single_pass_estimate_s(probed) > SINGLE_PASS_BUDGET_S
    )


def transcodes(svc: Services) -> Transcodes:
    return Transcodes(svc.catalog.table, svc.catalog.client)


def segment_queue(svc: Services) -> SegmentQueue:
    return SegmentQueue(svc.group(SegmentsSettings).segment_queue_url, svc.sqs)


# --------------------------------------------------------------------------------------------------- fan-out
def start_fan_out(svc: Services, raw: RawKey, etag: str, probed: Probe) -> int:
    """Plan the segments of this version at its keyframes and queue their tasks; returns how many tasks were queued
    (0 when an earlier attempt queued them already)."""
    vid = raw.video_id
    tasks = transcodes(svc)
    record = tasks.get(vid)
    if record is None or record.get("etag") != etag:
        s = svc.group(SegmentsSettings)
        splits = split_points(svc.lake.presigned_url(raw.key), probed.duration_s, s.segment_length_s, s.max_segments)
        parts = [video_part(i) for i in range(len(splits))]
        if probed.has_audio:
            parts.append(AUDIO_PART)
        tasks.create(vid, etag, parts, splits)
        record = tasks.get(vid) or {}
    if record.get("dispatched"):
        return 0
    splits = record["splits"]
    bodies = [
        SegmentTask(
            kind="video", bucket=svc.lake.bucket, raw_key=raw.key, etag=etag, index=i, start=start,
            end=splits[i + 1] if i + 1 < len(splits) else None,
        ).model_dump()
        for i, start in enumerate(splits)
    ]  # fmt: skip
    if AUDIO_PART in record["parts"]:
        bodies.append(SegmentTask(kind="audio", bucket=svc.lake.bucket, raw_key=raw.key, etag=etag).model_dump())
    sent = segment_queue(svc).send(bodies)
    tasks.mark_dispatched(vid, etag)
    logger.info("transcode fanned out", extra={"video_id": vid, "segments": len(splits), "tasks": sent})
    return sent


# ------------------------------------------------------------------------------------------------ one part
def run_part(svc: Services, task: SegmentTask) -> SegmentResult:
    """Encode one part (a video range or the audio track) unless it is in the lake already for this version."""
    raw = parse_raw_key(task.raw_key)
    vid = raw.video_id
    current = svc.lake.head(raw.key)
    if current is None or current.etag != task.etag:
        return SegmentResult(video_id=vid, outcome="stale", part=task.part, reason="the original changed or is gone")
    tasks = transcodes(svc)
    record = tasks.get(vid)
    if record is None or record.get("etag") != task.etag:
        return SegmentResult(video_id=vid, outcome="stale", part=task.part, reason="no transcode of this version")
    if record.get("joined_at"):  # a redelivery after the join: its part is in the rendition (and removed)
        return SegmentResult(video_id=vid, outcome="skipped", part=task.part, reason="joined already")
    if record.get("failed_at"):  # another part met a verdict on the media: the video has failed
        return SegmentResult(video_id=vid, outcome="skipped", part=task.part, reason="the transcode failed")
    key = raw.part_key(task.part)
    existing = svc.lake.head(key)
    outcome: Literal["encoded", "reused"] = "reused"
    if existing is None or existing.metadata.get(PART_METADATA) != task.etag:
        url = svc.lake.presigned_url(raw.key)
        with tempfile.TemporaryDirectory(dir=svc.settings.work_dir, prefix="cliplake-seg-") as tmp:
            out = Path(tmp) / task.part
            try:
                if task.kind == "audio":
                    encode_audio(url, out)
                    content_type = "audio/mp4"
                else:
                    encode_segment(url, out, task.start, task.end)
                    content_type = "video/mp4"
            except MediaError as err:  # the media itself (NetworkError is no MediaError: it is redelivered)
                span = "the audio" if task.kind == "audio" else f"the part from {task.start:.1f} s"
                return _give_up(svc, raw, task.etag, f"transcoding {span} failed: {err}", task.part)
            svc.lake.upload(out, key, content_type, metadata={PART_METADATA: task.etag}, tags=PART_TAGS)
        outcome = "encoded"
    record = tasks.part_done(vid, task.etag, task.part)
    if record is None:
        return SegmentResult(video_id=vid, outcome="stale", part=task.part, reason="no transcode of this version")
    heartbeat_video(svc, vid, f"part {task.part}")
    if set(record.get("done", [])) >= set(record["parts"]) and not record.get("joined_at"):
        # Every task that sees the set complete queues a join (a redelivery may); the join itself runs once.
        join = SegmentTask(kind="join", bucket=task.bucket, raw_key=raw.key, etag=task.etag)
        segment_queue(svc).send([join.model_dump()])
    return SegmentResult(video_id=vid, outcome=outcome, part=task.part)


# ---------------------------------------------------------------------------------------------------- join
class Analysis(Protocol):
    """What starts a video's analysis (`cliplake.analyze.analyze_object`: analyze imports this module)."""

    def __call__(self, svc: Services, ref: ObjectRef) -> Any: ...


def run_join(svc: Services, task: SegmentTask, message_id: str, lease_s: int, analyze: Analysis) -> SegmentResult:
    """Join the parts into the rendition once, remove them, then start the analysis with `analyze` (the analyze
    stage's `analyze_object`)."""
    raw = parse_raw_key(task.raw_key)
    vid = raw.video_id
    tasks = transcodes(svc)
    record = tasks.get(vid)
    if record is None or record.get("etag") != task.etag:
        return SegmentResult(video_id=vid, outcome="stale", reason="no transcode of this version")
    outcome: Literal["joined", "skipped"] = "skipped"
    if not record.get("joined_at"):
        if tasks.claim_join(vid, task.etag, message_id, lease_s, time.time()):
            try:
                size = _join(svc, raw, task.etag, record["parts"])
            except MediaError as err:
                return _give_up(svc, raw, task.etag, str(err))
            tasks.mark_joined(vid, task.etag, size)
            logger.info("rendition joined", extra={"video_id": vid, "parts": len(record["parts"]), "bytes": size})
            outcome = "joined"
            if size > MAX_BYTES:
                reason = f"the H.264 rendition is {size / 1024**3:.1f} GB; Rekognition Video takes at most 10 GB"
                fail_video(svc, _record(svc, raw), reason)
                return SegmentResult(video_id=vid, outcome=outcome, reason=reason)
            heartbeat_video(svc, vid, "joined")
        elif not (tasks.get(vid) or {}).get("joined_at"):  # another join holds the claim and starts the analysis
            return SegmentResult(video_id=vid, outcome="skipped", reason="being joined by another invocation")
    # The rendition is in the lake: analyze takes it as a retried attempt would (catalog-guarded, idempotent).
    result = analyze(svc, ObjectRef(bucket=task.bucket, key=task.raw_key, etag=task.etag))
    return SegmentResult(video_id=vid, outcome=outcome, reason=f"analysis {result.outcome}")


def _record(svc: Services, raw: RawKey) -> VideoRecord:
    return svc.catalog.videos.get(raw.video_id) or VideoRecord(video_id=raw.video_id, source=raw.source)


def _give_up(svc: Services, raw: RawKey, etag: str, reason: str, part: str = "") -> SegmentResult:
    """A verdict on the media (a part or the join could not be made from it): retrying is futile. The transcode is
    marked failed (the tasks still queued skip their work) and the video FAILED with the reason."""
    transcodes(svc).mark_failed(raw.video_id, etag, reason)
    fail_video(svc, _record(svc, raw), reason)
    logger.warning("segmented transcode failed", extra={"video_id": raw.video_id, "part": part, "reason": reason})
    return SegmentResult(video_id=raw.video_id, outcome="failed", part=part, reason=reason)


def _join(svc: Services, raw: RawKey, etag: str, parts: list[str]) -> int:
    """Make the rendition from the parts, read over presigned URLs (unless a crashed join put it already); remove
    the parts. Only the rendition takes local disk."""
    existing = svc.lake.head(raw.rendition_key)
    if existing is not None and existing.metadata.get(PART_METADATA) == etag:
        size = existing.size
    else:
        urls: dict[str, str] = {}
        for part in parts:
            info = svc.lake.head(raw.part_key(part))
            if info is None or info.metadata.get(PART_METADATA) != etag:
                raise RuntimeError(f"part {part} of the transcode is missing")  # retried, then the DLQ
            urls[part] = svc.lake.presigned_url(raw.part_key(part))
        with tempfile.TemporaryDirectory(dir=svc.settings.work_dir, prefix="cliplake-join-") as tmp:
            rendition = Path(tmp) / "rendition.mp4"
            join_parts([urls[p] for p in parts if p != AUDIO_PART], urls.get(AUDIO_PART), rendition)
            size = rendition.stat().st_size
            svc.lake.upload(rendition, raw.rendition_key, "video/mp4", metadata={PART_METADATA: etag})
    svc.lake.delete([raw.part_key(p) for p in parts])
    return size
