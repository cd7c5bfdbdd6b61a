"""The Items tasks: one Map iteration per planned video, streamed into the lake with its task token stored."""

from __future__ import annotations

import logging

from cliplake.completion import complete_video
from cliplake.contracts import Attribution, ItemTask, VideoRecord
from cliplake.lake import BATCH_ID_METADATA, FEATURES_METADATA
from cliplake.services import Services
from cliplake.sources.http import build_session
from cliplake.sources.ingest import IngestError, ingest_candidate
from cliplake.sources.models import Candidate
from cliplake.tables import write_failed_rows

log = logging.getLogger(__name__)


def ingest_item(svc: Services, msg: ItemTask) -> str:
    """One Map iteration: remember the token with the video, then stream the video into `media-raw/`.

    The analyze → finalize → index choreography starts from the object's S3 event; the index stage (or the
    stage that gives up on the video) completes the token. A redelivered message uploads nothing twice.
    """
    item, inp = msg.input.item, msg.input
    vid = item.video_id
    svc.catalog.tasks.put(
        vid, msg.token, msg.batch_id, source=item.source, source_id=item.source_id, title=item.title,
        raw_key=item.raw_key,
    )  # fmt: skip
    if svc.lake.head(item.raw_key) is not None:
        log.info("item already in the lake", extra={"video_id": vid, "key": item.raw_key})
        return "exists"
    cand = Candidate.model_validate(item.candidate)
    try:
        key = ingest_candidate(
            cand,
            svc.lake,
            inp.campaign,
            inp.ts,
            build_session(svc.settings.contact_email),
            retries=2,
            backoff_base=1.0,
            metadata={
                BATCH_ID_METADATA: msg.batch_id,
                **({FEATURES_METADATA: ",".join(item.features)} if item.features is not None else {}),
            },
        )
    except IngestError as err:
        reason = f"download failed: {err.reason}"
        log.warning("item failed", extra={"video_id": vid, "reason": reason})
        filename = item.raw_key.rsplit("/", 1)[-1]
        planned = VideoRecord(video_id=vid, source=item.source, campaign=inp.campaign, raw_key=item.raw_key,
                              filename=filename, attribution=Attribution(title=item.title))  # fmt: skip
        write_failed_rows(svc.lake, planned, reason)
        complete_video(svc, vid, ok=False, reason=reason)
        return "failed"
    if key != item.raw_key:
        log.warning("ingested under %s, planned %s", key, item.raw_key)
    svc.catalog.ingested.mark(cand.source, cand.source_id, cand.content_hash or "", vid)
    return "ingested"
