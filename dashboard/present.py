"""Pure functions from catalog records, summaries and execution histories to table rows (no I/O, no Streamlit)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

STAGES = ("WAITING", "RECEIVED", "ANALYZING", "SUMMARIZED", "INDEXED")
TERMINAL_BATCH = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
TERMINAL_VIDEO = {"INDEXED", "FAILED"}
_KEY_RE = re.compile(r"(?:s3://[^\s\"']+|media-(?:raw|processed)/[^\"'\n]+)")


# -------------------------------------------------------------------------------------------------- time
def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def duration_s(start: Any, end: Any) -> float | None:
    a, b = parse_time(start), parse_time(end)
    return round((b - a).total_seconds(), 1) if a and b else None


def short_time(value: Any) -> str:
    t = parse_time(value)
    return t.strftime("%Y-%m-%d %H:%M:%S") if t else ""


# ----------------------------------------------------------------------------------------------- batches
def batch_rows(batches: Iterable[dict[str, Any]], executions: Iterable[dict[str, Any]] = ()) -> list[dict]:
    """History rows, newest first: the catalog's batch records, plus executions that have none (yet)."""
    rows = []
    seen = set()
    for b in batches:
        seen.add(b.get("batch_id"))
        rows.append(
            {
                "status": b.get("status", ""),
                "campaign": b.get("campaign", ""),
                "batch size": b.get("batch_size"),
                "processed": f"{b.get('processed', 0)}/{b.get('received', 0)}",
                "failed": b.get("failed", 0),
                "started": short_time(b.get("started_at")),
                "ended": short_time(b.get("ended_at")),
                "duration (s)": duration_s(b.get("started_at"), b.get("ended_at")),
                "trigger": b.get("trigger", ""),
                "execution id": b.get("batch_id", ""),
            }
        )
    for e in executions:
        if e["name"] in seen:
            continue
        rows.append(
            {
                "status": e.get("status", ""),
                "campaign": "",
                "batch size": None,
                "processed": "",
                "failed": None,
                "started": short_time(e.get("startDate")),
                "ended": short_time(e.get("stopDate")),
                "duration (s)": duration_s(e.get("startDate"), e.get("stopDate")),
                "trigger": "",
                "execution id": e["name"],
            }
        )
    return sorted(rows, key=lambda r: r["started"], reverse=True)


def item_rows(batch: dict[str, Any], videos: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each planned item of a batch with its stage, read from its video record."""
    rows = []
    for item in batch.get("items", []):
        v = videos.get(item.get("video_id", ""), {})
        stage = v.get("status", "WAITING")
        rows.append(
            {
                "title": item.get("title") or v.get("filename", ""),
                "source": item.get("source", ""),
                "stage": stage,
                "progress": stage_progress(stage),
                "reason": v.get("reason", ""),
                "updated": short_time(v.get("updated_at") or v.get("created_at")),
                "video id": item.get("video_id", ""),
            }
        )
    return rows


def batch_failures(batch: dict[str, Any]) -> list[dict[str, Any]]:
    """Every failure of a summarised batch, from its items' outcomes (the record lists only the first ones)."""
    failed = [
        {"video_id": i.get("video_id", ""), "title": i.get("title", ""), "reason": i.get("reason", "")}
        for i in batch.get("items", [])
        if i.get("outcome") == "FAILED"
    ]
    return failed or list(batch.get("failures", []))


def stage_progress(stage: str) -> int:
    """0..100 through the stages (FAILED counts as done)."""
    if stage == "FAILED":
        return 100
    return round(100 * STAGES.index(stage) / (len(STAGES) - 1)) if stage in STAGES else 0


def batch_is_running(batch: dict[str, Any] | None) -> bool:
    return bool(batch) and batch.get("status") not in TERMINAL_BATCH


# ------------------------------------------------------------------------------------------- statistics
def reason_class(reason: str) -> str:
    """A failure reason without its specifics (file names, numbers), so equal causes group together."""
    head = re.split(r"[:(\n]", reason or "unknown", maxsplit=1)[0].strip()
    return re.sub(r"\d+", "N", head)[:80] or "unknown"


def failure_reasons(videos: Iterable[dict[str, Any]], batches: Iterable[dict[str, Any]] = ()) -> list[dict]:
    """Failures by reason: failed videos, plus batch failures not matched to one of those videos."""
    counts: Counter[str] = Counter()
    seen = set()
    for v in videos:
        if v.get("status") == "FAILED":
            seen.add(v.get("video_id"))
            counts[reason_class(v.get("reason", ""))] += 1
    for b in batches:
        for f in b.get("failures", []):
            if f.get("video_id") not in seen:
                seen.add(f.get("video_id"))
                counts[reason_class(f.get("reason", ""))] += 1
    return [{"reason": r, "videos": n} for r, n in counts.most_common()]


def outcomes_by_day(videos: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per day: videos received, processed (indexed) and failed, by the day each happened."""
    days: dict[str, Counter[str]] = {}
    for v in videos:
        for field, what in (("created_at", "received"), ("indexed_at", "processed"), ("failed_at", "failed")):
            t = parse_time(v.get(field))
            if t:
                days.setdefault(t.date().isoformat(), Counter())[what] += 1
    return [
        {"day": d, "received": c["received"], "processed": c["processed"], "failed": c["failed"]}
        for d, c in sorted(days.items())
    ]


# ------------------------------------------------------------------------------------------ the summary
def label_segments(summary: dict[str, Any], top: int = 15) -> list[dict[str, Any]]:
    """The summary's label segments for the `top` labels by time on screen, in seconds."""
    segs = summary.get("labels", [])
    total: Counter[str] = Counter()
    for s in segs:
        total[s["name"]] += s["end_ms"] - s["start_ms"]
    keep = {n for n, _ in total.most_common(top)}
    return [
        {
            "label": s["name"],
            "start (s)": s["start_ms"] / 1000,
            "end (s)": max(s["end_ms"], s["start_ms"] + 40) / 1000,  # a single-frame hit stays visible
            "confidence": round(s["max_confidence"], 1),
        }
        for s in segs
        if s["name"] in keep
    ]


def moderation_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "finding": m["name"],
            "category": m.get("parent_name", ""),
            "confidence": round(m["confidence"], 1),
            "from (s)": m["start_ms"] / 1000,
            "to (s)": m["end_ms"] / 1000,
        }
        for m in summary.get("moderation", [])
    ]


def shot_times_ms(summary: dict[str, Any], limit: int = 24) -> list[int]:
    """The middle of each shot, where its thumbnail is taken."""
    return [(s["start_ms"] + s["end_ms"]) // 2 for s in summary.get("shots", [])[:limit]]


# -------------------------------------------------------------------------------- an execution's history
def _details(event: dict[str, Any]) -> dict[str, Any]:
    return next((v for k, v in event.items() if k.endswith("EventDetails") and isinstance(v, dict)), {})


def _json_values(details: dict[str, Any]) -> list[Any]:
    out = []
    for k in ("input", "output", "parameters", "cause", "error"):
        raw = details.get(k)
        if isinstance(raw, str):
            try:
                out.append(json.loads(raw))
            except ValueError:
                out.append(raw)
    return out


def _walk(value: Any, found: dict[str, set[str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            lk = k.lower()
            if lk in {"jobid", "job_id"} and isinstance(v, str):
                found["job ids"].add(v)
            if lk in {"top_labels", "labels"} and isinstance(v, list):
                found["labels"].update(x["name"] for x in v if isinstance(x, dict) and "name" in x)
            _walk(v, found)
    elif isinstance(value, list):
        for v in value:
            _walk(v, found)
    elif isinstance(value, str):
        found["s3 keys"].update(_KEY_RE.findall(value))


def extract_facts(event: dict[str, Any]) -> dict[str, str]:
    """Job ids, S3 keys and labels mentioned in an event's input, output or parameters."""
    found: dict[str, set[str]] = {"job ids": set(), "s3 keys": set(), "labels": set()}
    for v in _json_values(_details(event)):
        _walk(v, found)
    return {k: ", ".join(sorted(v)) for k, v in found.items()}


def _compact(details: dict[str, Any], width: int = 300) -> str:
    parts = []
    for k, v in details.items():
        if k.endswith("Details") or v in (None, "", {}):
            continue
        text = v if isinstance(v, str) else json.dumps(v, default=str)
        parts.append(f"{k}={text}")
    line = "; ".join(parts)
    return line if len(line) <= width else line[: width - 1] + "…"


def event_rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One readable row per history event: time, seconds since start and since the previous event, the
    state it belongs to, the task's resource, and job ids / S3 keys / labels found in its data."""
    rows = []
    start = prev = None
    state_of: dict[int, str] = {}
    for e in events:
        ts = parse_time(e.get("timestamp"))
        start = start or ts
        d = _details(e)
        state = d.get("name") or state_of.get(e.get("previousEventId", -1), "")
        state_of[e["id"]] = state
        rows.append(
            {
                "#": e["id"],
                "time": ts.strftime("%H:%M:%S.%f")[:-3] if ts else "",
                "t+ (s)": round((ts - start).total_seconds(), 3) if ts and start else None,
                "Δ prev (s)": round((ts - prev).total_seconds(), 3) if ts and prev else None,
                "event": e.get("type", ""),
                "state": state,
                "resource": d.get("resource", ""),
                **extract_facts(e),
                "details": _compact(d),
            }
        )
        prev = ts or prev
    return rows


def state_spans(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """(state, start, end) for each entered/exited pair: the timeline of an execution."""
    open_: dict[str, list[datetime]] = {}
    spans = []
    start = parse_time(events[0]["timestamp"]) if events else None
    for e in events:
        t = parse_time(e.get("timestamp"))
        name = _details(e).get("name")
        if not (t and name and start):
            continue
        if e["type"].endswith("StateEntered"):
            open_.setdefault(name, []).append(t)
        elif e["type"].endswith("StateExited") and open_.get(name):
            began = open_[name].pop()
            spans.append(
                {
                    "state": name,
                    "from (s)": (began - start).total_seconds(),
                    "to (s)": max((t - start).total_seconds(), (began - start).total_seconds() + 0.01),
                    "duration (s)": round((t - began).total_seconds(), 3),
                }
            )
    return spans


def failure_cause(execution: dict[str, Any] | None, events: list[dict[str, Any]] = ()) -> str:
    """Why an execution failed: the error and cause of its failing state (the last `*Failed` event with details),
    else the execution's own error and cause."""
    events = list(events)
    failed = [e for e in events if e.get("type", "").endswith(("Failed", "TimedOut", "Aborted"))]
    # the last failure that says why (the execution's own event often repeats the error without its cause)
    for wanted in ("cause", "error"):
        for event in reversed(failed):
            details = _details(event)
            if details.get(wanted):
                state = _state_of(events, event)
                where = f" in state {state}" if state else ""
                return f"{details.get('error', '')}{where}: {details.get('cause', '')}".strip(": ")
    if execution and (execution.get("error") or execution.get("cause")):
        return f"{execution.get('error', '')}: {execution.get('cause', '')}".strip(": ")
    return ""


def _state_of(events: list[dict[str, Any]], event: dict[str, Any]) -> str:
    """The state an event belongs to: the last state entered before it."""
    name = ""
    for e in events:
        if e is event:
            return name
        entered = e.get("stateEnteredEventDetails")
        if entered:
            name = entered.get("name", "")
    return name


def batch_notice(batch: dict[str, Any] | None, execution: dict[str, Any] | None, events: Any = ()) -> tuple[str, str]:
    """(level, text) to show above a batch: why it failed or was aborted, or why it planned nothing; ("", "")."""
    batch = batch or {}
    status = (execution or {}).get("status") or batch.get("status", "")
    if status in {"FAILED", "TIMED_OUT", "ABORTED"} or batch.get("status") in {"FAILED", "ABORTED"}:
        cause = failure_cause(execution, events) or batch.get("reason", "")
        if batch.get("reason") and batch["reason"] not in cause:
            cause = f"{cause}\n\n{batch['reason']}" if cause else batch["reason"]
        return "error", f"{status or batch.get('status')}: {cause or 'no cause recorded'}"
    if batch.get("reason") and not batch.get("items") and not batch_is_running(batch):
        return "warning", f"Nothing was planned: {batch['reason']}"
    return "", ""
