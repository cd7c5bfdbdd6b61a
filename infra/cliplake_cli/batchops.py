"""Batches from the command line: start one, follow it, print its summary, fire the schedule, smoke-test a
deployment, print credits. Works against the local cloud and a real deployment alike (resources and the batch
start from `stack`). The CLI may poll for display; the pipeline itself never does."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3

from cliplake.adapters.catalog import Catalog
from cliplake.adapters.s3 import Lake
from cliplake.contracts import Attribution, VideoSummary
from cliplake.lake import SOURCES, batch_timestamp, parse_raw_key, raw_key, video_id_for
from cliplake_cli.console import say
from cliplake_cli.stack import PREFIX, StackConfig, execution_name, start_batch

TERMINAL_VIDEO = {"INDEXED", "FAILED"}


def follow_batch(
    catalog: Catalog, arn: str, name: str, timeout_s: float = 900, sfn: Any = None, interval_s: float = 0.5
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Print each change of the batch and of its videos until the execution ends; returns (execution, record)."""
    sfn = sfn or boto3.client("stepfunctions")
    deadline = time.monotonic() + timeout_s
    last: dict[str, str] = {}
    while True:
        execution = sfn.describe_execution(executionArn=arn)
        record = catalog.get_batch(name) or {}
        status = record.get("status", "STARTING")
        if last.get("batch") != status:
            last["batch"] = status
            extra = f", {len(record.get('items', []))} video(s) planned" if status == "RUNNING" else ""
            say(f"  batch {name}: {status.lower()}{extra}" + (" (offline: bundled samples)" if record.get("offline")
                                                              else ""))  # fmt: skip
            if record.get("reason") and status != "PLANNING":
                say(f"  batch {name}: {record['reason']}")
        items = record.get("items", [])
        pending = [i for i in items if last.get(i["video_id"]) not in TERMINAL_VIDEO]  # the others were said
        videos = catalog.videos.get_many([i["video_id"] for i in pending])  # BatchGetItem: 100 videos a call
        tasks = catalog.tasks.get_many([i["video_id"] for i in pending])
        for item in pending:
            video = videos[item["video_id"]].plain() if item["video_id"] in videos else {}
            task = tasks[item["video_id"]].plain() if item["video_id"] in tasks else {}
            state = video.get("status") or ("FAILED" if task.get("outcome") == "FAILED" else "DOWNLOADING")
            if last.get(item["video_id"]) != state:
                last[item["video_id"]] = state
                done = sum(1 for i in items if last.get(i["video_id"]) in TERMINAL_VIDEO)
                why = f": {video.get('reason') or task.get('reason')}" if state == "FAILED" else ""
                say(f"  [{done}/{len(items)}] {item['source']:9} {item.get('title', '')[:50]}: {state.lower()}{why}")
        if execution["status"] != "RUNNING":
            return execution, catalog.get_batch(name) or record
        if time.monotonic() > deadline:
            raise TimeoutError(f"batch {name} still running after {timeout_s:.0f} s")
        time.sleep(interval_s)


def print_summary(execution: dict[str, Any], record: dict[str, Any]) -> None:
    output = json.loads(execution.get("output") or "{}")
    print(f"\ncliplake batch {record.get('batch_id', '')}: execution {execution['status']}")
    if output.get("message"):
        print("  " + output["message"].rstrip().replace("\n", "\n  "))
    else:
        print(f"  status {record.get('status')}: {record.get('reason') or execution.get('cause') or ''}")


# -------------------------------------------------------------------------------------------------- schedule
def fire_schedule(config: StackConfig, name: str | None = None, scheduler: Any = None, sfn: Any = None) -> list[str]:
    """Start the batch of every schedule targeting the state machine (or the named one) now, with its input."""
    scheduler = scheduler or boto3.client("scheduler")
    sfn = sfn or boto3.client("stepfunctions")
    machine = config.require_state_machine()
    started = []
    for page in scheduler.get_paginator("list_schedules").paginate():
        for summary in page.get("Schedules", []):
            if name and summary["Name"] != name:
                continue
            schedule = scheduler.get_schedule(Name=summary["Name"], GroupName=summary.get("GroupName", "default"))
            target = schedule.get("Target", {})
            if target.get("Arn") != machine:
                continue
            arn = sfn.start_execution(
                stateMachineArn=machine, name=execution_name(PREFIX["schedule"], summary["Name"][-30:]),
                input=target.get("Input") or "{}",
            )["executionArn"]  # fmt: skip
            say(f"  fired {summary['Name']} ({schedule.get('ScheduleExpression')}) -> {arn}")
            started.append(arn)
    if not started:
        raise SystemExit(f"cliplake schedule: no schedule targets {machine}")
    return started


# ----------------------------------------------------------------------------------------------------- smoke
def smoke(config: StackConfig, timeout_s: float = 900, campaign: str = "") -> int:
    """A batch of 1, then verify: the execution succeeded, the raw object and the summary JSON are in the lake,
    the catalog has the video INDEXED with the batch id. On a used stack where the batch finds nothing new, it
    says why, and re-runs a video the catalog has through the pipeline instead (a copy under campaign "smoke").
    Prints one line per check; returns the exit code."""
    catalog, lake = Catalog(config.table), Lake(config.bucket)
    name, arn = start_batch(config, campaign, 1, trigger="smoke")
    say(f"cliplake smoke: batch {name}")
    execution, record = follow_batch(catalog, arn, name, timeout_s)
    checks: list[tuple[str, bool, str]] = [("execution succeeded", execution["status"] == "SUCCEEDED",
                                            execution["status"])]  # fmt: skip
    items = record.get("items", [])
    if not items and execution["status"] == "SUCCEEDED":
        print(f"  note: the batch planned nothing: {record.get('reason') or 'no reason given'}")
        known = next((v for s in SOURCES for v in catalog.list_videos(source=s, limit=20)
                      if v.get("status") == "INDEXED" and v.get("raw_key")), None)  # fmt: skip
        if known is None:
            checks.append(("a video to check", False, "nothing planned and no indexed video to re-run"))
        else:
            return _smoke_rerun(catalog, lake, known, timeout_s, checks)
    checks.append(("one video planned", len(items) == 1, f"{len(items)} planned (offline={record.get('offline')})"))
    if items:
        item = items[0]
        raw = lake.head(item["raw_key"])
        checks.append(("raw object in the lake", raw is not None, item["raw_key"]))
        summary_key = parse_raw_key(item["raw_key"]).summary_key
        text = lake.get_text(summary_key)
        try:
            ok = text is not None and VideoSummary.model_validate_json(text).video_id == item["video_id"]
        except ValueError:
            ok = False
        checks.append(("summary JSON valid", ok, summary_key))
        video = catalog.get_video(item["video_id"]) or {}
        checks.append(("catalog entry indexed", video.get("status") == "INDEXED" and video.get("batch_id") == name,
                       f"{video.get('status')} {video.get('reason', '')}".strip()))  # fmt: skip
    checks.append(("batch record summarised", record.get("status") == "SUCCEEDED", str(record.get("status"))))
    for label, ok, detail in checks:
        print(f"  {'ok  ' if ok else 'FAIL'} {label}: {detail}")
    return 0 if all(ok for _, ok, _ in checks) else 1


def _smoke_rerun(
    catalog: Catalog, lake: Lake, known: dict[str, Any], timeout_s: float, checks: list[tuple[str, bool, str]]
) -> int:
    """Copy a known video's original to a new drop-in key (campaign "smoke") and follow it through analyze,
    finalize and index."""
    src = known["raw_key"]
    key = raw_key("dropin", "smoke", src.rsplit("/", 1)[-1], batch_timestamp())
    print(f"  re-running known video {known['video_id']} ({known.get('filename', '')}) through the pipeline as {key}")
    lake.client.copy_object(Bucket=lake.bucket, Key=key, CopySource={"Bucket": lake.bucket, "Key": src},
                            MetadataDirective="COPY")  # fmt: skip
    vid = video_id_for(key)
    deadline = time.monotonic() + timeout_s
    video: dict[str, Any] = {}
    while time.monotonic() < deadline:
        video = catalog.get_video(vid) or {}
        if video.get("status") in TERMINAL_VIDEO:
            break
        time.sleep(0.5)
    checks.append(("raw object in the lake", lake.head(key) is not None, key))
    summary_key = parse_raw_key(key).summary_key
    text = lake.get_text(summary_key)
    try:
        ok = text is not None and VideoSummary.model_validate_json(text).video_id == vid
    except ValueError:
        ok = False
    checks.append(("summary JSON valid", ok, summary_key))
    checks.append(("catalog entry indexed", video.get("status") == "INDEXED",
                   f"{video.get('status')} {video.get('reason', '')}".strip()))  # fmt: skip
    for label, passed, detail in checks:
        print(f"  {'ok  ' if passed else 'FAIL'} {label}: {detail}")
    return 0 if all(passed for _, passed, _ in checks) else 1


# --------------------------------------------------------------------------------------------------- credits
def credit_lines(catalog: Catalog, campaign: str | None = None, limit: int = 200) -> list[str]:
    """Ready-to-paste credit lines of the indexed videos (of a campaign, or of every source), newest first."""
    if campaign:
        videos = catalog.list_videos(campaign=campaign, limit=limit)
    else:
        videos = [v for s in SOURCES for v in catalog.list_videos(source=s, limit=limit)]
        videos.sort(key=lambda v: v.get("created_at", ""), reverse=True)
    lines = []
    for v in videos:
        if v.get("status") != "INDEXED":
            continue
        line = v.get("credit_line") or Attribution.model_validate(v.get("attribution") or {}).credit_line()
        if line not in lines:
            lines.append(line)
    return lines[:limit]
