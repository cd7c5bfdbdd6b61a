"""The Plan task: campaign → candidates from the sources → a de-duplicated plan, and the batch record."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from cliplake.adapters.catalog import now_iso
from cliplake.contracts import BatchItem, BatchItemRef, BatchRecord, BatchStatus, BatchTrigger, PlanTask
from cliplake.lake import batch_timestamp, plan_items_key, raw_key, video_id_for
from cliplake.services import Services
from cliplake.sources.http import ConfigurationError, build_session
from cliplake.sources.pixabay import PixabayClient, PixabayError, api_key_of, cached_session
from cliplake.sources.planning import (
    Limits,
    Source,
    gather_candidates,
    plan_batch,
)
from cliplake.sources.samples import SamplesSource
from cliplake.sources.wikimedia import WikimediaClient

log = logging.getLogger(__name__)

PLAN_FAILED = "PlanFailed"
DEFAULT_CAMPAIGN = "travel"


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
        key = api_key_of(svc.secrets.value(s.pixabay_secret_id), s.pixabay_secret_id)
        sources["pixabay"] = PixabayClient(
            cached_session(s.work_dir), s.pixabay_api_url, key, max_height=s.max_height, max_retries=1, timeout=timeout
        )  # type: ignore[arg-type]
    except (PixabayError, ClientError, ValueError) as err:
        errors["pixabay"] = str(err)
    return sources, errors


def batch_record(msg: PlanTask, campaign: str, max_concurrency: int, started_at: str) -> BatchRecord:
    """A new batch's record (the dashboard reads it)."""
    return BatchRecord(
        batch_id=msg.batch_id,
        execution_arn=msg.execution_arn,
        campaign=campaign,
        batch_size=msg.input.batch_size,
        max_concurrency=max_concurrency,
        trigger=msg.input.trigger.value,
        status=BatchStatus.PLANNING.value,
        started_at=started_at,
    )


def plan(svc: Services, msg: PlanTask) -> dict[str, Any]:
    """Choose the batch's videos; returns the Plan state's output (where the Map finds the items)."""
    s, inp = svc.settings, msg.input
    campaign = inp.campaign or svc.campaigns.current() or DEFAULT_CAMPAIGN
    max_concurrency = inp.max_concurrency or s.default_max_concurrency
    started_at = now_iso()
    svc.catalog.batches.put(batch_record(msg, campaign, max_concurrency, started_at))
    if inp.campaign and inp.trigger in (BatchTrigger.MANUAL, BatchTrigger.DASHBOARD):
        svc.campaigns.set_current(campaign)  # the next scheduled run uses it
    chosen_campaign = svc.campaigns.load(campaign)
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
    # ... and the catalog lists them as records of their own under the batch (one item would pass 400 KB)
    refs = [BatchItemRef(video_id=i.video_id, source=i.source, title=i.title, raw_key=i.raw_key) for i in items]
    svc.catalog.batches.put_items(msg.batch_id, refs)
    svc.catalog.batches.update(
        msg.batch_id,
        status=BatchStatus.RUNNING.value,
        reason=reason,
        offline=offline,
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
            fixes.append(f"set a Pixabay key (aws secretsmanager put-secret-value --secret-id {s.pixabay_secret_id} "
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
    existing = svc.catalog.batches.get(msg.batch_id)
    if existing and existing.status != BatchStatus.PLANNING.value:
        log.info("plan message redelivered: batch %s already planned", msg.batch_id)
        return None
    try:
        output = plan(svc, msg)
    except Exception as err:
        reason = f"planning failed: {type(err).__name__}: {err}"
        log.exception("batch %s: %s", msg.batch_id, reason)
        if existing is None and svc.catalog.batches.get(msg.batch_id) is None:
            svc.catalog.batches.put(batch_record(msg, msg.input.campaign, 0, now_iso()))
        svc.catalog.batches.update(msg.batch_id, status=BatchStatus.FAILED.value, reason=reason, ended_at=now_iso())
        if svc.tokens:
            svc.tokens.fail(msg.token, PLAN_FAILED, reason)
        return None
    if svc.tokens:
        svc.tokens.succeed(msg.token, output)
    return output
