"""The Summarize task: received, processed, failed (with reasons) and top labels → the batch record and email."""

from __future__ import annotations

from cliplake.adapters.catalog import now_iso
from cliplake.contracts import (
    BatchFailure,
    BatchLabel,
    BatchRecord,
    BatchStatus,
    BatchSummary,
    SummarizeTask,
    VideoStatus,
)
from cliplake.services import Services
from cliplake.summarize import TOP_LABELS


def summarize(svc: Services, msg: SummarizeTask) -> BatchSummary:
    """Received, processed, failed (with reasons from the catalog) and the batch's top labels."""
    record = svc.catalog.batches.get(msg.batch_id) or BatchRecord(batch_id=msg.batch_id)
    results = {r.get("video_id"): r for r in msg.results if isinstance(r, dict) and r.get("video_id")}
    processed, failures = 0, []
    labels: dict[str, BatchLabel] = {}
    for it in record.items:
        vid = it.video_id
        video = svc.catalog.videos.get(vid)
        if video is not None and video.status == VideoStatus.INDEXED:
            processed += 1
            for t in video.top_labels:
                seen = labels.setdefault(t.name, BatchLabel(name=t.name, videos=0, max_confidence=0.0))
                seen.videos += 1
                seen.max_confidence = max(seen.max_confidence, round(t.max_confidence, 2))
            continue
        task = svc.catalog.tasks.get(vid)
        error = (results.get(vid) or {}).get("error", "")
        reason = (video.reason if video else "") or (task.reason if task else "")
        if not reason:
            status = video.status.lower() if video else "not ingested"
            reason = f"{error}: the video was still {status}" if error else f"did not finish ({status})"
        failures.append(BatchFailure(video_id=vid, title=it.title, reason=reason))
    top = sorted(labels.values(), key=lambda x: (-x.videos, -x.max_confidence, x.name))[:TOP_LABELS]
    summary = BatchSummary(
        batch_id=msg.batch_id,
        reason=record.reason if not record.items else "",
        campaign=record.campaign,
        trigger=record.trigger,
        offline=record.offline,
        received=len(record.items),
        processed=processed,
        failed=len(failures),
        failures=failures,
        top_labels=top,
        started_at=record.started_at,
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
    svc.catalog.batches.update(
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
