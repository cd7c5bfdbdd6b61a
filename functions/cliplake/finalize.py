"""Stage 2, finalize: a Rekognition completion (SNS → SQS) → read every result page → when all three jobs of
a video are done, write `media-processed/.../<name>_labels.json`.

Accepts the SNS envelope and raw delivery, `API` as `StartLabelDetection` or `LABEL_DETECTION`, and a missing
`JobTag`. Completions may arrive in any order and more than once: the catalog update is atomic and the
summary is written by whichever completion finds all three jobs done.
"""

from __future__ import annotations

from typing import Literal

from aws_lambda_powertools import Logger
from pydantic import BaseModel

from cliplake.adapters.catalog import now_iso
from cliplake.completion import fail_video, heartbeat_video
from cliplake.contracts import JobStatus, RekognitionCompletion, VideoStatus
from cliplake.lake import parse_raw_key
from cliplake.services import Services
from cliplake.summarize import build_summary

logger = Logger(service="finalize", child=True)

# A duplicate completion changes nothing once the video is indexed or failed. A SUMMARIZED video may still
# be waiting for its summary (a crash between the status and the write), so the summary is written again.
DONE = {VideoStatus.INDEXED, VideoStatus.FAILED}


class UnknownJob(Exception):
    """A completion for a job the catalog does not (yet) know: retried, then dead-lettered."""


class FinalizeResult(BaseModel):
    video_id: str = ""
    outcome: Literal["ignored", "waiting", "failed", "summarized", "stale", "duplicate"]
    summary_key: str = ""
    reason: str = ""


def finalize_completion(svc: Services, completion: RekognitionCompletion) -> FinalizeResult:
    kind = completion.kind
    if kind is None:
        return FinalizeResult(outcome="ignored", reason=f"not a cliplake job API: {completion.API}")
    videos = svc.catalog.videos
    vid = completion.JobTag or videos.video_for_job(completion.JobId)
    video = videos.get(vid) if vid else None
    if video is None:
        raise UnknownJob(f"no video known for job {completion.JobId} (tag {completion.JobTag!r})")
    known = video.jobs.get(kind)
    if known is not None and known.job_id != completion.JobId:
        return FinalizeResult(video_id=vid, outcome="stale", reason="completion of a superseded job")
    if known is not None and known.status == completion.Status and video.status in DONE:
        return FinalizeResult(video_id=vid, outcome="duplicate", reason=f"video already {video.status.lower()}")
    raw = parse_raw_key(video.raw_key)

    document = None
    if completion.succeeded:
        document = svc.rekognition.results(kind, completion.JobId)
        svc.lake.put_json(raw.job_result_key(kind.value), document)
        message = ""
    else:
        _, message = svc.rekognition.status(kind, completion.JobId)
        message = message or completion.Message or "no reason given"
    jobs = videos.complete_job(vid, kind, completion.JobId, JobStatus(completion.Status), message)

    failed = {k: j for k, j in jobs.items() if j.terminal and not j.succeeded}
    if failed:
        reason = "; ".join(f"{k.value} job {j.status.value}: {j.message}" for k, j in sorted(failed.items()))
        logger.warning("analysis failed", extra={"video_id": vid, "reason": reason})
        fail_video(svc, video, reason)  # every job of the video has ended or will never be waited for
        return FinalizeResult(video_id=vid, outcome="failed", reason=reason)
    started = list(jobs)  # the analyses analyze started for this video (its features)
    if not all(job.succeeded for job in jobs.values()):
        heartbeat_video(svc, vid, f"{kind.value} job done", video.batch_id)
        return FinalizeResult(video_id=vid, outcome="waiting")

    svc.catalog.slots.release(vid, video.job_slots)  # every job ended
    # this completion's results are at hand; the other jobs' were written by their own completions
    results = {k: document if k == kind else svc.lake.get_json(raw.job_result_key(k.value)) or {} for k in started}
    written_at = now_iso()
    summary = build_summary(video.model_copy(update={"jobs": jobs}), results, svc.lake.bucket, written_at)
    # The status goes first: the summary's S3 event starts the index stage, which must not be overtaken.
    videos.set_status(
        vid,
        VideoStatus.SUMMARIZED,
        unless=VideoStatus.INDEXED,
        summary_key=raw.summary_key,
        summary_written_at=written_at,
        last_completion_ms=completion.Timestamp or 0,
    )
    svc.lake.put_json(raw.summary_key, summary.model_dump_json(indent=2))
    logger.info("summary written", extra={"video_id": vid, "summary_key": raw.summary_key})
    return FinalizeResult(video_id=vid, outcome="summarized", summary_key=raw.summary_key)
