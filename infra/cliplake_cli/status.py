"""`cliplake status`: the pipeline's health at a glance, the figures of the CloudWatch dashboard
(`OperationsDashboard` in infra/template.yaml) read from their sources, so it works on the local cloud too:

    queues          visible / in flight / delayed messages of each stage's queue (AWS/SQS on the dashboard)
    dead letters    messages each dead-letter queue holds (the DLQ alarms)
    job slots       Rekognition jobs in flight (the catalog's counter) against MaxJobsInFlight (JobSlotsInUse)
    batches         executions of the batch state machine by status (AWS/States Executions*)
    videos          per source: received, indexed, failed, in progress (the catalog's counters)
    alarms          each alarm of the stack and its state (the local cloud never evaluates them)
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

import boto3
from pydantic import BaseModel, Field

from cliplake.adapters.catalog import Catalog
from cliplake.settings import RekognitionJobsSettings
from cliplake_cli.stack import StackConfig, describe_stack

QUEUES = ("RawVideo", "Completion", "Summary", "Batch", "Ingest", "Segment")
BATCH_STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


class QueueDepth(BaseModel):
    name: str
    visible: int = 0
    in_flight: int = 0
    delayed: int = 0
    dead_letters: int = 0


class SourceCounts(BaseModel):
    source: str
    received: int = 0
    indexed: int = 0
    failed: int = 0

    @property
    def in_progress(self) -> int:
        return max(self.received - self.indexed - self.failed, 0)


class Status(BaseModel):
    stack: str
    queues: list[QueueDepth] = Field(default_factory=list)
    job_slots_in_use: int = 0
    max_jobs_in_flight: int = 0
    batches: dict[str, int] = Field(default_factory=dict)
    videos: list[SourceCounts] = Field(default_factory=list)
    alarms: dict[str, str] = Field(default_factory=dict)

    @property
    def dead_letters(self) -> int:
        return sum(q.dead_letters for q in self.queues)


def _attrs(sqs: Any, url: str) -> dict[str, int]:
    names = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    ]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return {n: int(attrs.get(n, 0)) for n in names}


def collect(config: StackConfig, session: Any | None = None) -> Status:
    stack = config.stack
    session = session or boto3.session.Session()
    outputs, params = describe_stack(session.client("cloudformation"), stack)
    sqs = session.client("sqs")
    status = Status(stack=stack)
    for name in QUEUES:
        depth = QueueDepth(name=name)
        if url := outputs.get(f"{name}QueueUrl"):
            a = _attrs(sqs, url)
            depth.visible = a["ApproximateNumberOfMessages"]
            depth.in_flight = a["ApproximateNumberOfMessagesNotVisible"]
            depth.delayed = a["ApproximateNumberOfMessagesDelayed"]
        if dlq := outputs.get(f"{name}DLQUrl"):
            depth.dead_letters = _attrs(sqs, dlq)["ApproximateNumberOfMessages"]
        status.queues.append(depth)

    catalog = Catalog(config.table or outputs.get("CatalogTableName", ""), session.client("dynamodb"))
    status.job_slots_in_use = catalog.jobs_in_flight()
    default_jobs = RekognitionJobsSettings.model_fields["max_jobs_in_flight"].default
    status.max_jobs_in_flight = int(params.get("MaxJobsInFlight") or default_jobs)
    status.videos = [
        SourceCounts(source=src, received=c["raw"], indexed=c["processed"], failed=c["failed"])
        for src, c in sorted(catalog.stats().items())
    ]

    if arn := outputs.get("BatchStateMachineArn"):
        sfn = session.client("stepfunctions")
        for batch_status in BATCH_STATUSES:
            n = 0
            for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn, statusFilter=batch_status):
                n += len(page["executions"])
            status.batches[batch_status] = n

    cloudwatch = session.client("cloudwatch")
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=f"{stack}-"):
        for alarm in page.get("MetricAlarms", []):
            status.alarms[alarm["AlarmName"].removeprefix(f"{stack}-")] = alarm.get("StateValue", "")
    return status


def render(status: Status) -> str:
    lines = [f"cliplake status: stack {status.stack}", "", "queues          visible  in flight  delayed  dead letters"]
    for q in status.queues:
        lines.append(f"  {q.name:12} {q.visible:8} {q.in_flight:10} {q.delayed:8} {q.dead_letters:13}")
    use, cap = status.job_slots_in_use, status.max_jobs_in_flight
    lines += ["", f"rekognition job slots: {use} in use of {cap} (MaxJobsInFlight)" + ("  FULL" if use >= cap else "")]
    lines += ["", "batches: " + (", ".join(f"{k.lower()} {v}" for k, v in status.batches.items()) or "not deployed")]
    lines += ["", "videos          received  indexed  failed  in progress"]
    for v in status.videos:
        lines.append(f"  {v.source:12} {v.received:9} {v.indexed:8} {v.failed:7} {v.in_progress:12}")
    if not status.videos:
        lines.append("  (none yet)")
    if status.alarms:
        alarming = sorted(n for n, s in status.alarms.items() if s == "ALARM")
        lines += ["", f"alarms: {len(status.alarms)}, in ALARM: {', '.join(alarming) or 'none'}"]
    return "\n".join(lines)


def as_json(status: Status) -> str:
    data = status.model_dump()
    for counts, model in zip(data["videos"], status.videos, strict=True):
        counts["in_progress"] = model.in_progress
    data["dead_letters"] = status.dead_letters
    return json.dumps(data, indent=1)


def cmd_status(args: argparse.Namespace, resolve: Callable[[str], StackConfig]) -> int:
    status = collect(resolve(args.stack))
    print(as_json(status) if args.json else render(status))
    return 0


def register(sub: Any, resolve: Callable[[str], StackConfig], default_stack: str) -> None:
    sp = sub.add_parser("status", help="queues, dead letters, job slots, batches and videos at a glance")
    sp.add_argument("--json", action="store_true", help="print the status as JSON")
    sp.add_argument("--stack", default=default_stack, help="CloudFormation stack to read resources from")
    sp.set_defaults(fn=lambda a: cmd_status(a, resolve))
