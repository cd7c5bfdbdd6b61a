"""The Summarize task: received, processed, failed (with reasons) and top labels → the batch record and email.

Every item's outcome and reason goes on its own item record; the summary (the task's output, the email SNS
publishes, the batch record) lists the first failures only, within `MAX_LISTED_FAILURES` and
`LISTED_FAILURES_BYTES`, and counts the rest: a batch of 1,000 failing videos stays far under Step Functions'
256 KiB payloads (beside the Map's results) and SNS's 256 KB message.
"""

from __future__ import annotations

from cliplake.adapters.catalog import now_iso
from cliplake.contracts import (
    BatchFailure,
    BatchItemRef,
    BatchLabel,
    BatchRecord,
    BatchStatus,
    BatchSummary,
    SummarizeTask,
    VideoStatus,
)
from cliplake.services import Services
from cliplake.summarize import TOP_LABELS

MAX_LISTED_FAILURES = 50  # failures the summary lists (the email, the task output, the batch record)
LISTED_FAILURES_BYTES = 24 * 1024  # bytes of the email's failure lines, at most (SNS: 256 KB a message)
LISTED_REASON = 300  # characters of a listed failure's reason (its item record keeps up to MAX_REASON)


def outcomes(svc: Services, msg: SummarizeTask) -> tuple[list[BatchItemRef], list[BatchLabel]]:
    """Each planned item with its outcome (INDEXED, or FAILED with a reason from the catalog), in plan order, and
    the batch's top labels."""
    results = {r.get("video_id"): r for r in msg.results if isinstance(r, dict) and r.get("video_id")}
    planned = svc.catalog.batches.all_items(msg.batch_id)
    videos = svc.catalog.videos.get_many([it.video_id for it in planned])  # 100 a call, not one by one
    indexed = {vid for vid, v in videos.items() if v.status == VideoStatus.INDEXED}
    tasks = svc.catalog.tasks.get_many([it.video_id for it in planned if it.video_id not in indexed])
    items: list[BatchItemRef] = []
    labels: dict[str, BatchLabel] = {}
    for it in planned:
        vid = it.video_id
        video = videos.get(vid)
        if vid in indexed and video is not None:
            items.append(it.model_copy(update={"outcome": VideoStatus.INDEXED.value, "reason": ""}))
            for t in video.top_labels:
                seen = labels.setdefault(t.name, BatchLabel(name=t.name, videos=0, max_confidence=0.0))
                seen.videos += 1
                seen.max_confidence = max(seen.max_confidence, round(t.max_confidence, 2))
            continue
        task = tasks.get(vid)
        error = (results.get(vid) or {}).get("error", "")
        reason = (video.reason if video else "") or (task.reason if task else "")
        if not reason:
            status = video.status.lower() if video else "not ingested"
            reason = f"{error}: the video was still {status}" if error else f"did not finish ({status})"
        items.append(it.model_copy(update={"outcome": VideoStatus.FAILED.value, "reason": reason}))
    top = sorted(labels.values(), key=lambda x: (-x.videos, -x.max_confidence, x.name))[:TOP_LABELS]
    return items, top


def failure_line(f: BatchFailure) -> str:
    return f"  - {f.title or f.video_id} ({f.video_id}): {f.reason}"


def listed_failures(items: list[BatchItemRef]) -> tuple[list[BatchFailure], int]:
    """The failures the summary lists (the first, within its bounds; reasons shortened) and how many it leaves out."""
    failed = [i for i in items if i.outcome == VideoStatus.FAILED.value]
    listed: list[BatchFailure] = []
    used = 0
    for it in failed[:MAX_LISTED_FAILURES]:
        reason = it.reason if len(it.reason) <= LISTED_REASON else it.reason[: LISTED_REASON - 3] + "..."
        failure = BatchFailure(video_id=it.video_id, title=it.title, reason=reason)
        used += len(failure_line(failure).encode()) + 1
        if used > LISTED_FAILURES_BYTES:
            break
        listed.append(failure)
    return listed, len(failed) - len(listed)


def summarize(svc: Services, msg: SummarizeTask) -> tuple[BatchSummary, list[BatchItemRef]]:
    """Received, processed, failed (with reasons from the catalog) and the batch's top labels; and every item with
    its outcome."""
    record = svc.catalog.batches.get(msg.batch_id) or BatchRecord(batch_id=msg.batch_id)
    items, top = outcomes(svc, msg)
    listed, unlisted = listed_failures(items)
    failed = len(listed) + unlisted
    summary = BatchSummary(
        batch_id=msg.batch_id,
        reason=record.reason if not items else "",
        campaign=record.campaign,
        trigger=record.trigger,
        offline=record.offline,
        received=len(items),
        processed=len(items) - failed,
        failed=failed,
        failures=listed,
        failures_unlisted=unlisted,
        top_labels=top,
        started_at=record.started_at,
        ended_at=now_iso(),
    )
    summary.subject, summary.message = render(summary)
    return summary, items


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
        lines += ["", "Failures:"] + [failure_line(f) for f in summary.failures]
    if summary.failures_unlisted:
        lines.append(f"  ... and {summary.failures_unlisted} more (every reason: the dashboard's Last execution page, "
                     f"or the batch's items in the catalog)")  # fmt: skip
    if summary.top_labels:
        lines += ["", "Top labels:"] + [
            f"  - {t.name}: {t.videos} video(s), up to {t.max_confidence:.1f}%" for t in summary.top_labels
        ]
    return subject, "\n".join(lines) + "\n"


def run_summarize(svc: Services, msg: SummarizeTask) -> BatchSummary:
    summary, items = summarize(svc, msg)
    svc.catalog.batches.record_outcomes(msg.batch_id, items)
    svc.catalog.batches.update(
        msg.batch_id,
        status=BatchStatus.SUCCEEDED.value,
        received=summary.received,
        processed=summary.processed,
        failed=summary.failed,
        failures=[f.model_dump() for f in summary.failures],
        failures_unlisted=summary.failures_unlisted,
        top_labels=[t.model_dump() for t in summary.top_labels],
        ended_at=summary.ended_at,
    )
    if svc.tokens:
        svc.tokens.succeed(msg.token, summary.model_dump(mode="json"))
    return summary
