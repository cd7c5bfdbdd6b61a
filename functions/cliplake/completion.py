"""The batch item of a video, as the per-video stages see it: complete its task token, or tell it the video advanced.

A video a batch ingested has a TASK record in the catalog (its `.waitForTaskToken` token, written by the batch's
ingest before the object reaches the lake). Whichever stage ends the video completes the token (index on success;
analyze, finalize, segment or ingest on failure); completing twice is harmless. This module sits below the stages
and knows nothing of the batch wrapper (`cliplake.batches`) or the sources.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cliplake.contracts import VideoRecord, VideoStatus
from cliplake.services import Services
from cliplake.tables import write_failed_rows

log = logging.getLogger(__name__)

VIDEO_FAILED = "VideoFailed"


def complete_video(svc: Services, video_id: str, *, ok: bool, reason: str = "", top_labels: Any = ()) -> bool:
    """Complete the batch item of a video, if it has one and it is still open. Called by whichever stage ends
    the video (index on success; analyze/finalize/ingest on failure). Returns True when this call completed it."""
    if svc.tokens is None:
        return False
    task = svc.catalog.tasks.finish(video_id, VideoStatus.INDEXED if ok else VideoStatus.FAILED, reason)
    if task is None:  # no batch item, or already completed: nothing to do
        return False
    try:
        if ok:
            names = [t["name"] if isinstance(t, Mapping) else getattr(t, "name", str(t)) for t in top_labels]
            svc.tokens.succeed(task.task_token, {"video_id": video_id, "status": "INDEXED", "top_labels": names[:5]})
        else:
            # Step Functions keeps the cause (moto drops it): the readable reason is in the catalog as well.
            svc.tokens.fail(task.task_token, VIDEO_FAILED, reason or "the video failed")
    except (ClientError, BotoCoreError):
        svc.catalog.tasks.reopen(video_id)  # the retry of this message completes it
        raise
    log.info("batch item completed", extra={"video_id": video_id, "batch_id": task.batch_id, "ok": ok})
    return True


def fail_video(svc: Services, video: VideoRecord, reason: str) -> None:
    """Give up on a video: FAILED with a readable `reason` (counted once), the job slots its record shows given
    back, its FAILED rows in the lake's tables, its batch item failed. Every stage that meets a verdict calls this
    with the video's current record."""
    svc.catalog.videos.mark_failed(video.video_id, video.source, reason)
    svc.catalog.slots.release(video.video_id, video.job_slots)
    write_failed_rows(svc.lake, video, reason)
    complete_video(svc, video.video_id, ok=False, reason=reason)


def heartbeat_video(svc: Services, video_id: str, step: str, batch_id: str | None = None) -> bool:
    """Tell the batch item of a video (if it has an open one) that the video advanced (`step`: a segment done, the
    join, analysis started, a job finished), so its HeartbeatSeconds follow the work. Never fails the stage.
    A caller holding the video's record passes its `batch_id`: "" (a video no batch ingested) reads nothing."""
    if svc.tokens is None or batch_id == "":
        return False
    try:
        task = svc.catalog.tasks.get(video_id)
        if task is None or not task.open:
            return False
        sent = svc.tokens.heartbeat(task.task_token)
    except (ClientError, BotoCoreError) as err:
        log.warning("heartbeat not sent", extra={"video_id": video_id, "step": step, "error": str(err)})
        return False
    log.debug("heartbeat", extra={"video_id": video_id, "step": step})
    return sent
