"""Batches: the logic behind the Step Functions wrapper (`infra/statemachine/batch.asl.json`).

    Plan       (BatchQueue, task "plan")       campaign → candidates from the sources → de-duplicated plan
    Items      (IngestQueue, one per item)     store the item's task token with its video, stream it into the lake
    ...        analyze → finalize → index      the choreography; whichever stage ends the video completes the token
    Summarize  (BatchQueue, task "summarize")  received/processed/failed with reasons, top labels → batch record

Every task is `sqs:sendMessage.waitForTaskToken`: the functions answer with SendTaskSuccess/SendTaskFailure.
Tokens live in the catalog (pk=VIDEO#<id>, sk=TASK); completing a video twice is harmless (`complete_video`).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cliplake.adapters.catalog import now_iso
from cliplake.contracts import (
    BatchFailure,
    BatchInput,
    BatchItem,
    BatchLabel,
    BatchStatus,
    BatchSummary,
    BatchTrigger,
    ItemTask,
    PlanTask,
    SummarizeTask,
    VideoStatus,
)
from cliplake.lake import batch_timestamp, plan_items_key, raw_key, video_id_for
from cliplake.services import Services
from cliplake.sources.http import ConfigurationError, build_session
from cliplake.sources.ingest import IngestError, ingest_candidate
from cliplake.sources.models import Candidate
from cliplake.sources.pixabay import PixabayClient, PixabayError, cached_session, read_api_key
from cliplake.sources.planning import (
    Limits,
    Source,
    gather_candidates,
    get_current_campaign,
    load_campaign,
    plan_batch,
    set_current_campaign,
)
from cliplake.sources.samples import SamplesSource
from cliplake.sources.wikimedia import WikimediaClient
from cliplake.tables import write_failed_rows

log = logging.getLogger(__name__)

VIDEO_FAILED = "VideoFailed"
PLAN_FAILED = "PlanFailed"
DEFAULT_CAMPAIGN = "travel"
BATCH_ID_METADATA = "batch-id"
FEATURES_METADATA = "features"  # on the raw object: the campaign's analyses, which analyze intersects with the stack's
TOP_LABELS = 10


# ---------------------------------------------------------------------------------------- token completion
def complete_video(svc: Services, video_id: str, *, ok: bool, reason: str = "", top_labels: Any = ()) -> bool:
    """Complete the batch item of a video, if it has one and it is still open. Called by whichever stage ends
    the video (index on success; analyze/finalize/ingest on failure). Returns True when this call completed it."""
    if svc.tokens is None:
        return False
    task = svc.catalog.finish_task(video_id, VideoStatus.INDEXED if ok else VideoStatus.FAILED, reason)
    if task is None:  # no batch item, or already completed: nothing to do
        return False
    try:
        if ok:
            names = [t["name"] if isinstance(t, Mapping) else getattr(t, "name", str(t)) for t in top_labels]
            svc.tokens.succeed(task["task_token"], {"video_id": video_id, "status": "INDEXED", "top_labels": names[:5]})
        else:
            # Step Functions keeps the cause (moto drops it): the readable reason is in the catalog as well.
            svc.tokens.fail(task["task_token"], VIDEO_FAILED, reason or "the video failed")
    except (ClientError, BotoCoreError):
        svc.catalog.reopen_task(video_id)  # the retry of this message completes it
        raise
    log.info("batch item completed", extra={"video_id": video_id, "batch_id": task.get("batch_id"), "ok": ok})
    return True


def heartbeat_video(svc: Services, video_id: str, step: str) -> bool:
    """Tell the batch item of a video (if it has an open one) that the video advanced (`step`: a segment done, the
    join, analysis started, a job finished), so its HeartbeatSeconds follow the work. Never fails the stage."""
    if svc.tokens is None:
        return False
    try:
        task = svc.catalog.get_task(video_id)
        if not task or task.get("completed_at") or not task.get("task_token"):
            return False
        sent = svc.tokens.heartbeat(task["task_token"])
    except (ClientError, BotoCoreError) as err:
        log.warning("heartbeat not sent", extra={"video_id": video_id, "step": step, "error": str(err)})
        return False
    log.debug("heartbeat", extra={"video_id": video_id, "step": step})
    return sent


# ---------------------------------------------------------------------------------------------------- plan
def live_sources(svc: Services) -> tuple[dict[str, Source], dict[str, str]]:
    """The Wikimedia and Pixabay clients, and the reasons a source cannot be used at all."""
    s = svc.settings
    sources: dict[str, Source] = {}
    errors: dict[str, str] = {}
    limits = Limits.from_settings(s)
    timeout = (min(5.0, s.source_timeout_s), s.source_timeout_s)
    try:
        sources["wikimedia"] = WikimediaClient(
            build_session(s.contact_email),
            s.wikimedia_api_url,
            s.contact_email,
            max_height=s.max_height,
            max_bytes=limits.effective_bytes,
            max_retries=1,
            timeout=timeout,  # type: ignore[arg-type]
        )
    except ConfigurationError as err:
        errors["wikimedia"] = str(err)
    try:
        raw = svc.secrets.get_secret_value(SecretId=s.pixabay_secret_id)["SecretString"] if s.pixabay_secret_id else ""
        if raw.strip() in {"", '{"key": ""}', '{"key":""}'}:
            raise PixabayError("no Pixabay API key in the secret (aws secretsmanager put-secret-value)")
        key = read_api_key(svc.secrets, s.pixabay_secret_id)
        sources["pixabay"] = PixabayClient(
            cached_session(s.work_dir), s.pixabay_api_url, key, max_height=s.max_height, max_retries=1, timeout=timeout
        )  # type: ignore[arg-type]
    except (PixabayError, ClientError, ValueError) as err:
        errors["pixabay"] = str(err)
    return sources, errors


def batch_record(msg: PlanTask, campaign: str, max_concurrency: int, started_at: str) -> dict[str, Any]:
    """A batch record in the documented shape (the dashboard reads it)."""
    return {
        "batch_id": msg.batch_id,
        "execution_arn": msg.execution_arn,
        "campaign": campaign,
        "batch_size": msg.input.batch_size,
        "max_concurrency": max_concurrency,
        "trigger": msg.input.trigger.value,
        "status": BatchStatus.PLANNING.value,
        "offline": False,
        "items": [],
        "received": 0,
        "processed": 0,
        "failed": 0,
        "failures": [],
        "top_labels": [],
        "started_at": started_at,
        "ended_at": "",
        "reason": "",
    }


def plan(svc: Services, msg: PlanTask) -> dict[str, Any]:
    """Choose the batch's videos; returns the Plan state's output (where the Map finds the items)."""
    s, inp = svc.settings, msg.input
    campaign = inp.campaign or get_current_campaign(svc.ssm, s.campaigns_parameter_path) or DEFAULT_CAMPAIGN
    max_concurrency = inp.max_concurrency or s.default_max_concurrency
    started_at = now_iso()
    svc.catalog.put_batch(batch_record(msg, campaign, max_concurrency, started_at))
    if inp.campaign and inp.trigger in (BatchTrigger.MANUAL, BatchTrigger.DASHBOARD):
        set_current_campaign(svc.ssm, campaign, s.campaigns_parameter_path)  # the next scheduled run uses it
    chosen_campaign = load_campaign(svc.ssm, s.campaigns_parameter_path, campaign)
    queries = chosen_campaign.queries
    size = min(inp.batch_size, s.max_batch_size)
    limits = Limits.from_settings(s)

    sources, unusable = live_sources(svc)
    found, skipped, errors = gather_candidates(sources, queries, per_query=max(2 * size, 5))
    errors = {**unusable, **errors}
    chosen = plan_batch(found, size, limits=limits, catalog=svc.catalog)
    live_skipped = Counter(chosen.skipped) + Counter(dict(skipped))
    offline = False
    samples_state = "none"  # "none": no bundled samples here; "used"; "known": all in the catalog already
    if not chosen.items and s.assets_dir and size:
        log.info("live sources gave nothing (%s): planning from the bundled samples", errors or "no new videos")
        samples, _, _ = gather_candidates({"samples": SamplesSource(s.assets_dir)}, {}, per_query=max(size, 50))
        chosen = plan_batch(samples, size, limits=limits, catalog=svc.catalog)
        offline = bool(chosen.items)
        samples_state = "used" if offline else ("known" if samples else "none")

    ts = batch_timestamp()
    items: list[BatchItem] = []
    keys: set[str] = set()
    for cand in chosen.items:
        key = raw_key(cand.source, campaign, cand.filename, ts)
        if key in keys:  # two candidates with the same file name: keep the first
            continue
        keys.add(key)
        items.append(
            BatchItem(
                video_id=video_id_for(key),
                source=cand.source,
                source_id=cand.source_id,
                title=cand.title,
                raw_key=key,
                candidate=cand.model_dump(mode="json"),
                features=chosen_campaign.features,
            )
        )
    reason = "" if items else empty_reason(size, campaign, sources, errors, len(found), live_skipped, samples_state, s)
    if reason:
        log.warning("batch plans nothing", extra={"batch_id": msg.batch_id, "reason": reason})
    # The Map reads the items from the lake (ItemReader): 1,000 of them are over the 256 KiB payload quota inline.
    items_key = plan_items_key(msg.batch_id)
    svc.lake.put_json(items_key, [i.model_dump(mode="json") for i in items])
    svc.catalog.update_batch(
        msg.batch_id,
        status=BatchStatus.RUNNING.value,
        reason=reason,
        offline=offline,
        items=[{"video_id": i.video_id, "source": i.source, "title": i.title, "raw_key": i.raw_key} for i in items],
        received=len(items),
        sources_failed=errors,
        skipped=dict(skipped + chosen.skipped),
    )
    log.info("batch planned", extra={"batch_id": msg.batch_id, "items": len(items), "offline": offline})
    return {
        "batch_id": msg.batch_id,
        "campaign": campaign,
        "ts": ts,
        "offline": offline,
        "max_concurrency": max_concurrency,
        "sources_failed": errors,
        "empty_reason": reason,
        "items_key": items_key,
        "item_count": len(items),
    }


def empty_reason(
    size: int,
    campaign: str,
    sources: Mapping[str, Any],
    errors: Mapping[str, str],
    found: int,
    skipped: Counter[str],
    samples_state: str,
    s: Any,
) -> str:
    """Why a batch planned nothing, with what to do about it (the summary, the email and the dashboard say it)."""
    if size <= 0:
        return "batch size 0: nothing to plan"
    samples = {
        "known": "; the bundled samples are all in the catalog already",
        "none": "",
        "used": "",
    }[samples_state]
    if not sources:
        fixes = []
        if "pixabay" in errors:
            secret = s.pixabay_secret_id or "PixabaySecret"
            fixes.append(f"set a Pixabay key (aws secretsmanager put-secret-value --secret-id {secret} "
                         "--secret-string '{\"key\": \"...\"}')")  # fmt: skip
        if "wikimedia" in errors:
            fixes.append("set a contact email for Wikimedia (the stack's ContactEmail parameter, "
                         "CLIPLAKE_CONTACT_EMAIL)")  # fmt: skip
        why = "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
        return f"no source configured ({why}){samples}: {' or '.join(fixes) or 'configure a source'}"
    failing = {k: v for k, v in errors.items() if k in sources or k not in ("wikimedia", "pixabay")}
    if not found:
        if failing:
            why = "; ".join(f"{k}: {v}" for k, v in sorted(failing.items()))
            return f"no source answered ({why}){samples}"
        return f"the sources found no video for campaign {campaign!r}'s queries{samples}"
    top = ", ".join(f"{n} {r.replace('_', ' ')}" for r, n in skipped.most_common(3))
    return (f"nothing new: the {found} video(s) found for campaign {campaign!r} are all in the catalog already or "
            f"skipped ({top}){samples}; add queries (cliplake campaigns add) or another campaign")  # fmt: skip


def run_plan(svc: Services, msg: PlanTask) -> dict[str, Any] | None:
    """The Plan task: plan, then answer the token (a failure fails the batch with a readable cause)."""
    existing = svc.catalog.get_batch(msg.batch_id)
    if existing and existing.get("status") != BatchStatus.PLANNING.value:
        log.info("plan message redelivered: batch %s already planned", msg.batch_id)
        return None
    try:
        output = plan(svc, msg)
    except Exception as err:
        reason = f"planning failed: {type(err).__name__}: {err}"
        log.exception("batch %s: %s", msg.batch_id, reason)
        if existing is None and svc.catalog.get_batch(msg.batch_id) is None:
            svc.catalog.put_batch(batch_record(msg, msg.input.campaign, 0, now_iso()))
        svc.catalog.update_batch(msg.batch_id, status=BatchStatus.FAILED.value, reason=reason, ended_at=now_iso())
        if svc.tokens:
            svc.tokens.fail(msg.token, PLAN_FAILED, reason)
        return None
    if svc.tokens:
        svc.tokens.succeed(msg.token, output)
    return output


# ---------------------------------------------------------------------------------------------------- items
def ingest_item(svc: Services, msg: ItemTask) -> str:
    """One Map iteration: remember the token with the video, then stream the video into `media-raw/`.

    The analyze → finalize → index choreography starts from the object's S3 event; the index stage (or the
    stage that gives up on the video) completes the token. A redelivered message uploads nothing twice.
    """
    item, inp = msg.input.item, msg.input
    vid = item.video_id
    svc.catalog.put_task(
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
            svc.lake.client,
            svc.settings.bucket,
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
        planned = {"video_id": vid, "source": item.source, "campaign": inp.campaign, "raw_key": item.raw_key,
                   "title": item.title, "filename": item.raw_key.rsplit("/", 1)[-1]}  # fmt: skip
        write_failed_rows(svc.lake, planned, reason)
        complete_video(svc, vid, ok=False, reason=reason)
        return "failed"
    if key != item.raw_key:
        log.warning("ingested under %s, planned %s", key, item.raw_key)
    svc.catalog.mark_ingested(cand.source, cand.source_id, cand.content_hash or "", vid)
    return "ingested"


# ------------------------------------------------------------------------------------------------- summary
def summarize(svc: Services, msg: SummarizeTask) -> BatchSummary:
    """Received, processed, failed (with reasons from the catalog) and the batch's top labels."""
    record = svc.catalog.get_batch(msg.batch_id) or {"batch_id": msg.batch_id, "items": []}
    results = {r.get("video_id"): r for r in msg.results if isinstance(r, dict) and r.get("video_id")}
    processed, failures = 0, []
    labels: dict[str, BatchLabel] = {}
    for it in record.get("items", []):
        vid = it["video_id"]
        video = svc.catalog.get_video(vid) or {}
        if video.get("status") == VideoStatus.INDEXED.value:
            processed += 1
            for t in video.get("top_labels", []):
                seen = labels.setdefault(t["name"], BatchLabel(name=t["name"], videos=0, max_confidence=0.0))
                seen.videos += 1
                seen.max_confidence = max(seen.max_confidence, round(float(t["max_confidence"]), 2))
            continue
        task = svc.catalog.get_task(vid) or {}
        error = (results.get(vid) or {}).get("error", "")
        reason = video.get("reason") or task.get("reason") or ""
        if not reason:
            status = video.get("status", "not ingested").lower()
            reason = f"{error}: the video was still {status}" if error else f"did not finish ({status})"
        failures.append(BatchFailure(video_id=vid, title=it.get("title", ""), reason=reason))
    top = sorted(labels.values(), key=lambda x: (-x.videos, -x.max_confidence, x.name))[:TOP_LABELS]
    summary = BatchSummary(
        batch_id=msg.batch_id,
        reason=record.get("reason", "") if not record.get("items") else "",
        campaign=record.get("campaign", ""),
        trigger=record.get("trigger", ""),
        offline=bool(record.get("offline")),
        received=len(record.get("items", [])),
        processed=processed,
        failed=len(failures),
        failures=failures,
        top_labels=top,
        started_at=record.get("started_at", ""),
        ended_at=now_iso(),
    )
    summary.subject, summary.message = render(summary)
    return summary


def render(summary: BatchSummary) -> tuple[str, str]:
    """An email-ready subject (≤ 100 ASCII characters, as SNS requires) and plain-text body."""
    if not summary.received and summary.reason:
        subject = f"cliplake batch {summary.campaign or '-'}: nothing planned: {summary.reason}"
        subject = subject.encode("ascii", "replace").decode()
        subject = subject if len(subject) <= 100 else subject[:99] + "~"
        lines = [
            f"Batch {summary.batch_id} ({summary.trigger or 'manual'}), campaign {summary.campaign or '-'}",
            f"Started {summary.started_at}, ended {summary.ended_at}",
            "",
            "Nothing was planned: " + summary.reason,
        ]
        return subject, "\n".join(lines) + "\n"
    subject = (
        f"cliplake batch {summary.campaign or '-'}: {summary.processed}/{summary.received} indexed"
        + (f", {summary.failed} failed" if summary.failed else "")
        + (" (offline)" if summary.offline else "")
    )
    subject = subject.encode("ascii", "replace").decode()[:100]
    lines = [
        f"Batch {summary.batch_id} ({summary.trigger or 'manual'}), campaign {summary.campaign or '-'}",
        f"Started {summary.started_at}, ended {summary.ended_at}",
    ]
    if summary.offline:
        lines.append("Ran offline: the live sources were unreachable or had nothing new; bundled samples were used.")
    lines += [
        "",
        f"Received:  {summary.received}",
        f"Processed: {summary.processed}",
        f"Failed:    {summary.failed}",
    ]
    if summary.failures:
        lines += ["", "Failures:"] + [
            f"  - {f.title or f.video_id} ({f.video_id}): {f.reason}" for f in summary.failures
        ]
    if summary.top_labels:
        lines += ["", "Top labels:"] + [
            f"  - {t.name}: {t.videos} video(s), up to {t.max_confidence:.1f}%" for t in summary.top_labels
        ]
    return subject, "\n".join(lines) + "\n"


def run_summarize(svc: Services, msg: SummarizeTask) -> BatchSummary:
    summary = summarize(svc, msg)
    svc.catalog.update_batch(
        msg.batch_id,
        status=BatchStatus.SUCCEEDED.value,
        received=summary.received,
        processed=summary.processed,
        failed=summary.failed,
        failures=[f.model_dump() for f in summary.failures],
        top_labels=[t.model_dump() for t in summary.top_labels],
        ended_at=summary.ended_at,
    )
    if svc.tokens:
        svc.tokens.succeed(msg.token, summary.model_dump(mode="json"))
    return summary


def parse_batch_task(body: Mapping[str, Any]) -> PlanTask | SummarizeTask:
    return PlanTask.model_validate(body) if body.get("task") == "plan" else SummarizeTask.model_validate(body)


__all__ = ["BatchInput", "complete_video", "ingest_item", "parse_batch_task", "run_plan", "run_summarize"]
