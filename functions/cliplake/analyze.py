"""Stage 1, analyze: a new object under `media-raw/` → probe, transcode when needed, start Rekognition jobs.

Started by the S3 event (via SQS). Never polls: the jobs report through SNS to the finalize stage.
Idempotent: a redelivered event starts no second job (same ClientRequestToken, catalog state, powertools
idempotency), and a re-run after a crash re-announces a job that finished meanwhile.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path
from typing import Literal

from aws_lambda_powertools import Logger
from pydantic import BaseModel

from cliplake.adapters.catalog import now_iso
from cliplake.adapters.rekognition import API_NAME, Backpressure, InvalidVideo
from cliplake.completion import fail_video, heartbeat_video
from cliplake.contracts import (
    Attribution,
    CompletionVideo,
    JobKind,
    JobStatus,
    ObjectRef,
    RekognitionCompletion,
    VideoRecord,
    VideoStatus,
)
from cliplake.lake import BATCH_ID_METADATA, FEATURES_METADATA, LakeKeyError, RawKey, parse_raw_key
from cliplake.media import MediaError, Probe, Unreadable, probe, transcode_to_h264
from cliplake.segments import fans_out, start_fan_out
from cliplake.services import Services
from cliplake.settings import RekognitionJobsSettings, parse_features

logger = Logger(service="analyze", child=True)


class AnalyzeResult(BaseModel):
    video_id: str = ""
    outcome: Literal["started", "failed", "skipped", "reconciled", "transcoding"]
    jobs: dict[str, str] = {}
    reason: str = ""


def chosen_kinds(stack: list[str], campaign: str | None) -> list[JobKind]:
    """The analyses to start: the stack's Features, narrowed by the campaign's (the object's ``features``
    metadata, set at ingest) when it has a choice; unknown or empty campaign values leave the stack's."""
    names = list(stack)
    if campaign:
        try:
            wanted = set(parse_features(campaign))
        except ValueError:
            logger.warning("ignoring the object's features metadata", extra={"features": campaign})
        else:
            names = [n for n in names if n in wanted] or names
    return [JobKind(n) for n in names]


def analyze_object(svc: Services, ref: ObjectRef) -> AnalyzeResult:
    try:
        raw = parse_raw_key(ref.key)
    except LakeKeyError as err:
        return AnalyzeResult(outcome="skipped", reason=str(err))
    info = svc.lake.head(raw.key)
    if info is None:
        return AnalyzeResult(video_id=raw.video_id, outcome="skipped", reason="object no longer exists")
    vid = raw.video_id
    attribution = Attribution.from_metadata(info.metadata) or Attribution(title=raw.filename, source=raw.source)
    videos = svc.catalog.videos
    videos.register(
        vid, raw.key, info.etag, info.size, raw.source, raw.campaign, raw.filename, attribution,
        batch_id=info.metadata.get(BATCH_ID_METADATA, ""),
    )  # fmt: skip
    video = videos.get(vid)
    if video is None or video.raw_etag != info.etag:  # a newer version arrived meanwhile: its own event handles it
        return AnalyzeResult(video_id=vid, outcome="skipped", reason="superseded by a newer version")
    if video.done:
        return AnalyzeResult(video_id=vid, outcome="skipped", reason=f"already {video.status.lower()}")
    kinds = chosen_kinds(svc.group(RekognitionJobsSettings).feature_kinds, info.metadata.get(FEATURES_METADATA))
    if video.jobs and all(kind in video.jobs for kind in kinds):
        return _reconcile(svc, vid, raw, video)

    try:
        analysed_key, probed, transcoded = _prepare(svc, raw, info.etag, info.size)
        if analysed_key is None:  # too long for one invocation: segment invocations transcode it, then analyse it
            queued = start_fan_out(svc, raw, info.etag, probed)
            videos.set_status(vid, VideoStatus.RECEIVED, transcode="segments", original_codec=probed.codec)
            heartbeat_video(svc, vid, "transcode fanned out")
            return AnalyzeResult(video_id=vid, outcome="transcoding", reason=f"{queued} segment tasks queued")
    except MediaError as err:
        reason = str(err)
        logger.warning("video rejected", extra={"video_id": vid, "key": raw.key, "reason": reason})
        fail_video(svc, video, reason)
        return AnalyzeResult(video_id=vid, outcome="failed", reason=reason)

    # Back-pressure: at most `max_jobs_in_flight` Rekognition jobs at once; when full, the message backs off (the
    # video stays RECEIVED). The slots and the ANALYZING status are one write.
    bound = svc.group(RekognitionJobsSettings).max_jobs_in_flight
    held = svc.catalog.slots.acquire(
        vid,
        len(kinds),
        bound,
        VideoStatus.ANALYZING,
        analysed_key=analysed_key,
        transcoded=transcoded,
        original_codec=probed.codec,
        original_container=probed.container.split(",")[0],
        analysis_started_at=video.analysis_started_at or now_iso(),
    )
    if not held:
        raise Backpressure(f"{bound} Rekognition jobs in flight already")
    try:
        started = svc.rekognition.start_all(kinds, ref.bucket, analysed_key, vid, info.etag, svc.channel)
    except InvalidVideo as err:
        fail_video(svc, video.model_copy(update={"job_slots": video.job_slots or len(kinds)}), str(err))
        return AnalyzeResult(video_id=vid, outcome="failed", reason=str(err))
    # Backpressure propagates: the message goes back to the queue; the retry's reused request tokens return the
    # jobs already started, and a crash before this record is reconciled the same way.
    videos.record_jobs(vid, started, started_at=now_iso())
    jobs = {kind.value: job_id for kind, job_id in started.items()}
    logger.info("analysis started", extra={"video_id": vid, "key": raw.key, "jobs": jobs})
    heartbeat_video(svc, vid, "analysis started", video.batch_id)
    return AnalyzeResult(video_id=vid, outcome="started", jobs=jobs)


def _prepare(svc: Services, raw: RawKey, etag: str, size: int) -> tuple[str | None, Probe, bool]:
    """Probe the original; transcode it to an H.264 MP4 rendition unless Rekognition takes it as is.

    The original is probed where it lies, over a presigned URL: ffmpeg reads its header with range requests, so a
    video Rekognition takes as is, or one whose rendition a previous attempt already made, is never downloaded.
    Only a video to transcode is, or one whose header could not be read over HTTP; the local probe then decides, so
    a network hiccup never fails a video. A video too long to transcode in one invocation gets no key (None): it is
    transcoded by a fan-out of segment invocations instead.
    """
    probed = _probe_in_place(svc, raw.key, size)  # the size limits first: a verdict raises MediaError
    if probed is not None and probed.rekognition_ready:
        return raw.key, probed, False
    if probed is not None and _rendition_made(svc, raw, etag):
        return raw.rendition_key, probed, True
    if probed is not None and fans_out(svc, probed):
        return None, probed, True
    with tempfile.TemporaryDirectory(dir=svc.settings.work_dir, prefix="cliplake-") as tmp:
        local = svc.lake.download(raw.key, Path(tmp) / "original")
        probed = probed or probe(local)
        if probed.rekognition_ready:
            return raw.key, probed, False
        if not _rendition_made(svc, raw, etag):
            rendition = Path(tmp) / "rendition.mp4"
            transcode_to_h264(local, rendition)
            svc.lake.upload(rendition, raw.rendition_key, "video/mp4", metadata={"source-etag": etag})
        return raw.rendition_key, probed, True


def _rendition_made(svc: Services, raw: RawKey, etag: str) -> bool:
    """Whether the rendition of this version of the original is in the lake already (a retried message)."""
    existing = svc.lake.head(raw.rendition_key)
    return existing is not None and existing.metadata.get("source-etag") == etag


def _probe_in_place(svc: Services, key: str, size: int) -> Probe | None:
    """The object's probe over a presigned URL; None when its header could not be read that way. A verdict on the
    content (no video stream, too long...) is final and raises `MediaError`."""
    try:
        return probe(svc.lake.presigned_url(key), size=size)
    except (Unreadable, subprocess.TimeoutExpired) as err:
        reason = str(err) if isinstance(err, Unreadable) else "timed out"  # Unreadable's text holds no URL
        logger.info("probe over a presigned URL failed: downloading", extra={"key": key, "reason": reason})
        return None


def _reconcile(svc: Services, vid: str, raw: RawKey, video: VideoRecord) -> AnalyzeResult:
    """All jobs were started before. A reused token sends no new SNS message, so a job that finished while
    nobody recorded it is announced again on the topic, in the standard completion shape."""
    announced = {}
    for kind, job in video.jobs.items():
        if job.status != JobStatus.IN_PROGRESS:
            continue
        status, message = svc.rekognition.status(kind, job.job_id)
        if status == JobStatus.IN_PROGRESS:
            continue
        completion = RekognitionCompletion(
            JobId=job.job_id,
            Status=status,
            API=API_NAME[kind],
            JobTag=vid,
            Timestamp=int(time.time() * 1000),
            Video=CompletionVideo(S3ObjectName=video.analysed_key or raw.key, S3Bucket=svc.lake.bucket),
            Message=message or None,
        )
        svc.completions.announce(completion)
        announced[kind.value] = job.job_id
    if announced:
        return AnalyzeResult(video_id=vid, outcome="reconciled", jobs=announced)
    return AnalyzeResult(video_id=vid, outcome="skipped", reason="analysis already running")
