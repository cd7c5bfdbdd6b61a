"""Long videos on the local cloud: a fan-out of segment invocations (each message delivered twice) transcodes a
3-minute Theora video in 30 s segments, joins it once and analyses it; a 7-hour video is refused at once."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import boto3
import pytest
from batchkit import history, max_overlap, states_role, wait_execution
from test_segments import RATE, SOURCES, audio_seconds, frame_count, make_source, video_seconds

import cliplake.segments as segments
from cliplake.adapters.catalog import MAX_REASON, Catalog, batch_key, now_iso, video_key
from cliplake.adapters.dynamo import item_values
from cliplake.adapters.s3 import Lake
from cliplake.adapters.stepfunctions import TaskTokens
from cliplake.adapters.transcodes import Transcodes
from cliplake.analyze import analyze_object
from cliplake.batches.plan import batch_record
from cliplake.batches.summary import run_summarize
from cliplake.completion import complete_video, heartbeat_video
from cliplake.contracts import (
    BatchItem,
    BatchItemRef,
    BatchSummary,
    ObjectRef,
    PlanTask,
    S3NotificationSqsRecord,
    SegmentTask,
    SummarizeTask,
    VideoSummary,
)
from cliplake.handlers.segment import handler as segment_handler
from cliplake.lake import parse_raw_key, plan_items_key, video_id_for
from cliplake.media import ffmpeg_exe
from cliplake.services import Services, get_services
from cliplake.settings import AnalyzeSettings, BatchesSettings, BatchSettings, load_settings, variable
from cliplake.sources.models import Candidate
from cliplake_cli.bench import item_paths
from cliplake_cli.cli import drop_files, wait_for_videos
from cliplake_localcloud.cloud import REGION
from cliplake_localcloud.dispatcher import Dispatcher
from cliplake_localcloud.template import load_template

pytestmark = pytest.mark.e2e
ASL = Path(__file__).resolve().parents[1] / "infra/statemachine/batch.asl.json"


def _analyze_with_short_segments(event, context):
    """AnalyzeFunction with this test's settings: fan out above 60 s, 30 s segments (the settings only analyze
    reads for the fan-out; the segment stage takes its ranges from the tasks)."""
    svc = get_services(AnalyzeSettings)
    svc = svc.replaced(svc.settings.model_copy(update={"single_pass_max_s": 60, "segment_length_s": 30}))
    for record in event["Records"]:
        for s3_event in S3NotificationSqsRecord.model_validate(record).body.Records:
            analyze_object(svc, ObjectRef.from_event(s3_event))
    return {"batchItemFailures": []}


@pytest.fixture
def counted(monkeypatch):
    """How often each ffmpeg step of the segment stage runs."""
    calls: Counter[str] = Counter()
    for name in ("encode_segment", "encode_audio", "join_parts"):
        real = getattr(segments, name)

        def counting(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(segments, name, counting)
    return calls


INVOCATIONS: list[tuple[float, float]] = []


def _twice(event, context):
    """Every segment message delivered twice in a row (a redelivery after a lost acknowledgement)."""
    start = time.monotonic()
    segment_handler(event, context)
    response = segment_handler(event, context)
    INVOCATIONS.append((start, time.monotonic()))
    return response


def _table_items(cloud, vid):
    r = cloud.client("dynamodb").query(
        TableName=cloud.outputs["CatalogTableName"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": video_key(vid)["pk"]},
        ConsistentRead=True,
    )
    return sorted(r["Items"], key=lambda i: i["sk"]["S"])


def test_a_long_video_is_transcoded_by_segments_joined_once_and_analysed(cloud, lake, catalog, counted, tmp_path):
    src = make_source(tmp_path / "lecture.ogv", SOURCES["ogv"])
    jobs_before = cloud.rekognition.job_count()
    with cloud.dispatcher.override(SegmentFunction=_twice, AnalyzeFunction=_analyze_with_short_segments):
        [key] = drop_files(lake, [src], campaign="segments")
        [video] = wait_for_videos(catalog, [key], timeout_s=300)
        cloud.wait_idle(timeout=120)
    assert video["status"] == "INDEXED", video.get("reason")
    raw, vid = parse_raw_key(key), video_id_for(key)
    record = Transcodes(catalog.table, catalog.client).get(vid)
    assert len(record["splits"]) == 6 and record["joined_at"]
    assert set(record["done"]) == set(record["parts"]) == {f"v{i:05d}.mp4" for i in range(6)} | {"audio.m4a"}
    # Delivered twice, each part was encoded once and the rendition joined once; one analysis (one job per feature) ran.
    assert counted == {"encode_segment": 6, "encode_audio": 1, "join_parts": 1}
    assert cloud.rekognition.job_count() == jobs_before + len(video["jobs"])
    assert max_overlap(INVOCATIONS) >= 2  # the dispatcher ran segment invocations side by side
    listed = lake.client.list_objects_v2(Bucket=lake.bucket, Prefix=raw.parts_prefix)
    assert listed.get("KeyCount", 0) == 0  # the parts are removed after the join

    rendition = lake.download(raw.rendition_key, tmp_path / "rendition.mp4")
    assert frame_count(rendition) == frame_count(src) == 180 * RATE
    assert abs(video_seconds(rendition) - 180) <= 1 / RATE
    assert abs(audio_seconds(rendition) - audio_seconds(src)) <= 1 / RATE
    summary = VideoSummary.model_validate_json(lake.get_text(raw.summary_key))
    assert summary.provenance.transcoded and summary.provenance.analysed_key == raw.rendition_key

    # Every segment task sent again after the join changes nothing.
    rendition_etag, items = lake.head(raw.rendition_key).etag, _table_items(cloud, vid)
    tasks = [
        SegmentTask(kind="video", bucket=lake.bucket, raw_key=key, etag=record["etag"], index=i, start=s,
                    end=(record["splits"] + [None])[i + 1]).model_dump_json()
        for i, s in enumerate(record["splits"])
    ] + [SegmentTask(kind=k, bucket=lake.bucket, raw_key=key, etag=record["etag"]).model_dump_json()
         for k in ("audio", "join")]  # fmt: skip
    sqs = cloud.client("sqs")
    for body in tasks:
        sqs.send_message(QueueUrl=cloud.outputs["SegmentQueueUrl"], MessageBody=body)
    cloud.wait_idle(timeout=120)
    assert counted == {"encode_segment": 6, "encode_audio": 1, "join_parts": 1}
    assert lake.head(raw.rendition_key).etag == rendition_etag and _table_items(cloud, vid) == items
    assert cloud.rekognition.job_count() == jobs_before + len(video["jobs"])
    attrs = sqs.get_queue_attributes(QueueUrl=cloud.outputs["SegmentDLQUrl"], AttributeNames=["All"])
    assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_a_video_longer_than_six_hours_fails_at_once_without_a_transcode(cloud, lake, catalog, counted, tmp_path):
    """Seven hours in the container's header (three tiny frames 3.5 h apart): refused from the probe alone."""
    src = tmp_path / "seven hours.webm"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "color=size=32x32:rate=1:duration=3",
         "-vf", "setpts=N*12600/TB", "-fps_mode", "passthrough", "-c:v", "libvpx", "-b:v", "10k", str(src)],
        check=True,
    )  # fmt: skip
    [key] = drop_files(lake, [src], campaign="segments")
    [video] = wait_for_videos(catalog, [key], timeout_s=120)
    assert video["status"] == "FAILED"
    assert video["reason"] == "video is 7.0 h long; Rekognition Video takes at most 6 h"
    raw = parse_raw_key(key)
    assert lake.head(raw.rendition_key) is None and not counted
    assert Transcodes(catalog.table, catalog.client).get(video_id_for(key)) is None


def _item_machine(cloud, queue_url: str, heartbeat_s: int) -> str:
    """The batch's per-video item (the real `Video` task and its Catch) as a state machine of its own, its
    HeartbeatSeconds scaled down to `heartbeat_s` and its task sent to `queue_url`."""
    definition = json.loads(ASL.read_text())
    item = definition["States"]["Items"]["ItemProcessor"]
    video = item["States"]["Video"]
    assert video["HeartbeatSeconds"] == 3600 and video["TimeoutSeconds"] > 6 * 3600  # what the batch uses
    video["HeartbeatSeconds"] = heartbeat_s
    video["Parameters"]["QueueUrl"] = queue_url
    item.pop("ProcessorConfig")
    sfn = cloud.client("stepfunctions")
    role = states_role(cloud, f"item-{uuid.uuid4().hex[:8]}", [queue_url])
    return sfn.create_state_machine(name=f"item-{uuid.uuid4().hex[:8]}", definition=json.dumps(item),
                                    roleArn=role)["stateMachineArn"]  # fmt: skip


def test_heartbeats_keep_a_long_video_item_alive_and_a_silent_one_times_out(cloud, catalog):
    sqs, sfn = cloud.client("sqs"), cloud.client("stepfunctions")
    queue_url = sqs.create_queue(QueueName=f"items-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = _item_machine(cloud, queue_url, heartbeat_s=2)
    runs = {}
    for name in ("worked", "stuck"):
        vid = f"vheartbeat{name}{uuid.uuid4().hex[:6]}"
        item = {"batch_id": "b", "campaign": "c", "ts": "t", "item": {"video_id": vid}}
        runs[name] = (vid, sfn.start_execution(stateMachineArn=arn, name=vid, input=json.dumps(item))["executionArn"])
    tokens, deadline = {}, time.monotonic() + 30
    while len(tokens) < 2:
        assert time.monotonic() < deadline, (
            f"the items' tasks never reached their queue: {history(sfn, runs['stuck'][1])}"
        )
        for m in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1, MaxNumberOfMessages=10).get("Messages", []):
            body = json.loads(m["Body"])
            tokens[body["input"]["item"]["video_id"]] = body["token"]
    svc = get_services(AnalyzeSettings)
    vid, worked = runs["worked"]
    catalog.tasks.put(vid, tokens[vid], "b")
    deadline = time.monotonic() + 6  # three heartbeat periods, a beat every second: the stages' heartbeats
    while time.monotonic() < deadline:
        assert heartbeat_video(svc, vid, "segment done")
        time.sleep(1)
    assert sfn.describe_execution(executionArn=worked)["status"] == "RUNNING"
    assert complete_video(svc, vid, ok=True)
    assert json.loads(wait_execution(sfn, worked, 30)["output"])["status"] == "INDEXED"
    assert not heartbeat_video(svc, vid, "after the end")  # a completed item gets no more heartbeats

    # No heartbeat: timed out after 2 s (its TimeoutSeconds is days), caught per video. AWS names the error
    # States.HeartbeatTimeout; moto's interpreter reports the TaskTimedOut as States.Timeout (Catch matches both).
    stuck = wait_execution(sfn, runs["stuck"][1], 30)
    assert stuck["status"] == "SUCCEEDED"
    output = json.loads(stuck["output"])
    assert output["video_id"] == runs["stuck"][0] and output["status"] == "FAILED"
    assert output["error"] in {"States.HeartbeatTimeout", "States.Timeout"}
    assert "TaskTimedOut" in {e["type"] for e in history(sfn, runs["stuck"][1])}


def _typical_item(i: int) -> dict:
    """A planned item as the Plan state returns it, for a Commons video with typical field lengths."""
    title = f"File:Lecture on the history of the river valley, part {i} (1962).webm"
    candidate = Candidate(
        source="wikimedia", source_id=str(10_000_000 + i), title=title, author="Example Archive of Public Films",
        author_url="https://commons.wikimedia.org/wiki/User:Example_Archive", licence="CC BY-SA 4.0",
        page_url=f"https://commons.wikimedia.org/wiki/{quote(title.replace(' ', '_'))}",
        licence_url="https://creativecommons.org/licenses/by-sa/4.0/", size=734_003_200, size_exact=False,
        download_url=f"https://upload.wikimedia.org/wikipedia/commons/transcoded/a/ab/{quote(title[5:])}/"
                     f"{quote(title[5:])}.720p.vp9.webm",
        sha1="3f786850e387550fdab836ed7e6dc881de23001b", source_sha1="89e6c98d92887913cadf06b2adb97f26cde4849b",
        mime="video/webm", width=1280, height=720, duration_s=3600.0, query="river valley", rendition="720p.vp9.webm",
        modifications=["transcoded by Wikimedia Commons to 720p VP9"],
    )  # fmt: skip
    raw = f"media-raw/video/wikimedia/history/20261201_060000/{title[5:]}"
    return BatchItem(video_id=video_id_for(raw), source="wikimedia", source_id=candidate.source_id, title=title,
                     raw_key=raw, candidate=candidate.model_dump(mode="json")).model_dump(mode="json")  # fmt: skip


def _payloads(value) -> list[int]:
    """The sizes of the JSON payloads in an event or message (every string that parses as a JSON document)."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in _payloads(v)]
    if isinstance(value, list):
        return [n for v in value for n in _payloads(v)]
    if isinstance(value, str) and value[:1] in "{[":
        return [len(value.encode())]
    return []


def _plan_items_grant(cloud) -> dict:
    """The template's statement for the state machine's ItemReader, over the deployed bucket."""
    [policy] = load_template()["Resources"]["BatchStateMachine"]["Properties"]["Policies"]
    [grant] = [s for s in policy["Statement"] if s["Action"] == "s3:GetObject"]
    resource = grant["Resource"]["Fn::Sub"].replace(
        "${MediaBucket.Arn}", f"arn:aws:s3:::{cloud.outputs['MediaBucketName']}"
    )
    return {**grant, "Resource": resource}


def _function_session(cloud, logical_id: str) -> boto3.session.Session:
    """A session with the credentials of a function's own execution role (IAM enforced, as its handler has)."""
    env, _ = cloud.function_environment(cloud.functions[logical_id])
    return boto3.session.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"], region_name=REGION,
                                 aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                                 aws_session_token=env["AWS_SESSION_TOKEN"])  # fmt: skip


FAILED_REASON = "download failed: HTTP 404 Not Found from upload.wikimedia.org after 3 attempts"


def _batch_run(cloud, items: int, fail_every: int, *, read_grant: bool = True, timeout_s: float = 300) -> dict:
    """The batch state machine (the real definition, its queues replaced by scratch ones this test answers) run
    over `items` planned videos written to the lake as the batch function writes them, every `fail_every`-th
    failed by its stage: the parent's history and every payload's size (events, messages). The batch record is
    real: its items written to the catalog as the Plan task writes them, the summary made by the batch function's
    own code, its catalog calls under its role (items and videos read, outcomes written; the email published)."""
    sqs, sfn = cloud.client("sqs"), cloud.client("stepfunctions")
    queues = {name: sqs.create_queue(QueueName=f"{name}-{uuid.uuid4().hex[:8]}")["QueueUrl"] for name in ("b", "i")}
    definition = ASL.read_text()
    for key, value in {"BatchQueueUrl": queues["b"], "IngestQueueUrl": queues["i"],
                       "NotificationsTopicArn": cloud.outputs["NotificationsTopicArn"],
                       "MediaBucketName": cloud.outputs["MediaBucketName"]}.items():  # fmt: skip
        definition = definition.replace("${" + key + "}", value)
    role_name = f"events-{uuid.uuid4().hex[:8]}"
    role = states_role(cloud, role_name, list(queues.values()), cloud.outputs["NotificationsTopicArn"])
    if read_grant:
        policy = {"Version": "2012-10-17", "Statement": [_plan_items_grant(cloud)]}
        cloud.client("iam").put_role_policy(RoleName=role_name, PolicyName="items", PolicyDocument=json.dumps(policy))
    arn = sfn.create_state_machine(name=f"events-{uuid.uuid4().hex[:8]}", definition=definition, roleArn=role)
    name = f"events-{items}-{uuid.uuid4().hex[:6]}"
    lake = Lake(cloud.outputs["MediaBucketName"], cloud.client("s3"))
    planned = [_typical_item(i) for i in range(items)]
    lake.put_json(plan_items_key(name), planned)
    table = cloud.outputs["CatalogTableName"]
    # what the stages write of each video: every `fail_every`-th FAILED with a reason, the others INDEXED
    failing = {it["video_id"] for n, it in enumerate(planned) if n % fail_every == fail_every - 1}
    labels = ["Nature", "Outdoors", "Water", "River", "Landscape"]
    top = [{"name": n, "max_confidence": 90.0 - i, "total_ms": 1000, "segments": 1} for i, n in enumerate(labels)]
    Catalog(table, cloud.client("dynamodb")).db.batch_write(
        {"PutRequest": {"Item": {**video_key(it["video_id"]), **item_values(
            {"video_id": it["video_id"], "status": "FAILED", "reason": FAILED_REASON} if it["video_id"] in failing
            else {"video_id": it["video_id"], "status": "INDEXED", "top_labels": top})}}}
        for it in planned
    )  # fmt: skip
    session = _function_session(cloud, "BatchFunction")
    # the catalog as the batch function reaches it (its role); the tokens of this scratch machine as the admin
    batch_ddb = session.client("dynamodb", endpoint_url=cloud.endpoint_url)
    env, _ = cloud.function_environment(cloud.functions["BatchFunction"])  # its settings, from its environment
    settings = load_settings(BatchSettings, **{f: env[variable(f)] for f in BatchSettings.model_fields
                                               if variable(f) in env})  # fmt: skip
    batch_fn = Services(settings, session, catalog=Catalog(table, batch_ddb), tokens=TaskTokens(sfn))
    execution = sfn.start_execution(stateMachineArn=arn["stateMachineArn"], name=name, input="{}")["executionArn"]
    plan = {"batch_id": name, "campaign": "history", "ts": "20261201_060000", "max_concurrency": 40,
            "offline": False, "sources_failed": {}, "empty_reason": "", "items_key": plan_items_key(name),
            "item_count": items}  # fmt: skip
    sizes: list[int] = []
    summary: BatchSummary | None = None
    summarize_s = 0.0
    answered, deadline = 0, time.monotonic() + timeout_s
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
        assert time.monotonic() < deadline, f"{answered} of {items} items answered"
        for queue, url in queues.items():
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            for m in messages:
                sizes.append(len(m["Body"].encode()))
                body = json.loads(m["Body"])
                if queue == "b" and body["task"] == "plan":  # the batch record as plan writes it
                    task = PlanTask.model_validate(body)
                    batch_fn.catalog.batches.put(batch_record(task, "history", 40, now_iso()))
                    refs = [BatchItemRef.model_validate(i) for i in planned]
                    batch_fn.catalog.batches.put_items(name, refs)
                    batch_fn.catalog.batches.update(name, status="RUNNING", received=items)
                    sfn.send_task_success(taskToken=body["token"], output=json.dumps(plan))
                elif queue == "b":
                    t0 = time.monotonic()
                    summary = run_summarize(batch_fn, SummarizeTask.model_validate(body))
                    summarize_s = time.monotonic() - t0
                elif (vid := body["input"]["item"]["video_id"]) in failing:
                    assert body["batch_id"] == name  # the parent's name, though the item runs in a child execution
                    sfn.send_task_failure(taskToken=body["token"], error="VideoFailed", cause="probe: not a video")
                    answered += 1
                else:
                    sfn.send_task_success(taskToken=body["token"], output=json.dumps(
                        {"video_id": vid, "status": "INDEXED", "top_labels": labels}))  # fmt: skip
                    answered += 1
            if messages:
                entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
                sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        time.sleep(0.02)
    events = history(sfn, execution)
    return {
        "name": name,
        "status": sfn.describe_execution(executionArn=execution)["status"],
        "events": events,
        "answered": answered,
        "summary": summary,
        "summarize_s": summarize_s,
        "largest": max(sizes + [n for e in events for n in _payloads(e)]),
    }


def _child_events(cloud) -> tuple[dict[str, int], dict[str, list[str]]]:
    """The history of one child execution (the real item processor run as a machine, as the Distributed Map runs
    each video), on the success path and on the Catch path: its events, and the states it entered."""
    sqs, sfn = cloud.client("sqs"), cloud.client("stepfunctions")
    queue_url = sqs.create_queue(QueueName=f"child-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = _item_machine(cloud, queue_url, heartbeat_s=3600)
    counts, entered = {}, {}
    for outcome in ("indexed", "failed"):
        item = {"batch_id": "b", "campaign": "c", "ts": "t", "item": _typical_item(0)}
        run = sfn.start_execution(stateMachineArn=arn, name=f"{outcome}-{uuid.uuid4().hex[:6]}",
                                  input=json.dumps(item))["executionArn"]  # fmt: skip
        [m] = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=10).get("Messages", [])
        token = json.loads(m["Body"])["token"]
        if outcome == "indexed":
            sfn.send_task_success(taskToken=token, output=json.dumps({"video_id": "v", "status": "INDEXED"}))
        else:
            sfn.send_task_failure(taskToken=token, error="VideoFailed", cause="probe: not a video")
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        assert wait_execution(sfn, run, 30)["status"] == "SUCCEEDED"
        events = history(sfn, run)
        counts[outcome] = len(events)
        entered[outcome] = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("Entered")]
    return counts, entered


def test_a_batch_of_1000_videos_fits_step_functions_quotas(cloud, catalog):
    """1,000 planned videos through the real definition in the local cloud, a fifth of them failing (the Catch
    path): the items are read from the lake and each video is a child execution, so the batch's own history does
    not grow with its items, and no payload (event, task message, the Map's results, the summary) reaches 256 KiB.
    The batch's catalog record is real: 1,000 item records, summarised by the batch function's code."""
    small, large = _batch_run(cloud, 5, 5), _batch_run(cloud, 1000, 5)
    assert small["status"] == large["status"] == "SUCCEEDED" and large["answered"] == 1000
    child, entered = _child_events(cloud)
    paths = item_paths(json.loads(ASL.read_text()))  # what `make bench`'s cost model bills per video
    assert (
        (entered["indexed"], entered["failed"])
        == (paths["success"], paths["catch"])
        == (["Video"], ["Video", "VideoFailed"])
    )
    summary = large["summary"]
    meta = cloud.client("dynamodb").get_item(TableName=cloud.outputs["CatalogTableName"], Key=batch_key(large["name"]))
    print(f"parent history: {len(small['events'])} events at 5 items, {len(large['events'])} at 1,000; "
          f"child execution: {child['indexed']} events indexed, {child['failed']} failed (quota 25,000 each); "
          f"largest payload at 1,000 items: {large['largest'] / 1024:.1f} KiB (quota 256 KiB); "
          f"summary email {len(summary.message.encode()) / 1024:.1f} KiB listing {len(summary.failures)} of "
          f"{summary.failed} failures; batch record {len(json.dumps(meta['Item'])) / 1024:.1f} KiB; "
          f"summarised in {large['summarize_s']:.1f} s")  # fmt: skip
    assert len(large["events"]) == len(small["events"]) < 100  # no event per item in the batch's history
    assert max(child.values()) < 25 < 25_000
    assert large["largest"] < 256 * 1024
    results = json.loads(next(e for e in large["events"] if e["type"] == "MapStateExited")["stateExitedEventDetails"][
        "output"])["results"]  # fmt: skip
    assert Counter(r["status"] for r in results) == {"INDEXED": 800, "FAILED": 200}
    # the items the Map reads are far over the quota: they could not be the Plan state's output
    assert len(json.dumps([_typical_item(i) for i in range(1000)])) > 4 * 256 * 1024

    # the summary: counted from the catalog, the first failures listed, the email published (Notify succeeded)
    assert (summary.received, summary.processed, summary.failed) == (1000, 800, 200)
    assert len(summary.failures) + summary.failures_unlisted == 200 and summary.failures_unlisted > 0
    assert summary.subject == "cliplake batch history: 800/1000 indexed, 200 failed"
    assert len(summary.message.encode()) < 256 * 1024
    output = json.loads(sfn_output(large["events"]))
    assert output["message"] == summary.message and output["failed"] == 200
    assert summary.top_labels[0].name == "Nature" and summary.top_labels[0].videos == 800
    # the record: small whatever the batch's size; its 1,000 items each with its outcome and reason
    assert len(json.dumps(meta["Item"])) < 32 * 1024
    record = catalog.get_batch(large["name"])
    assert (record["status"], record["received"], record["failed"]) == ("SUCCEEDED", 1000, 200)
    assert [i["video_id"] for i in record["items"]] == [_typical_item(i)["video_id"] for i in range(1000)]
    assert Counter(i["outcome"] for i in record["items"]) == {"INDEXED": 800, "FAILED": 200}
    assert {i["reason"] for i in record["items"] if i["outcome"] == "FAILED"} == {FAILED_REASON}


def sfn_output(events: list[dict]) -> str:
    return next(e for e in events if e["type"] == "ExecutionSucceeded")["executionSucceededEventDetails"]["output"]


def test_the_largest_batch_fits_the_catalog_even_if_every_video_fails(catalog):
    """`max_batch_size` items, every one failed with the longest reason the catalog keeps: the items are records of
    their own, so the batch record does not grow (one item of 1,000 items and failures did not fit in 400 KB)."""
    size = BatchesSettings.model_fields["max_batch_size"].default
    assert size >= 1000
    bid = f"cap-{size}-{uuid.uuid4().hex[:6]}"
    catalog.batches.put(batch_record(PlanTask(task="plan", token="t", batch_id=bid), "history", 5, now_iso()))
    placed = catalog.batches.put_items(bid, [BatchItemRef.model_validate(_typical_item(i)) for i in range(size)])
    reason = (FAILED_REASON + "; ") * 20
    catalog.batches.record_outcomes(bid, [p.model_copy(update={"outcome": "FAILED", "reason": reason}) for p in placed])
    catalog.batches.update(bid, failed=size)
    record = catalog.get_batch(bid)
    assert record["failed"] == size and len(record["items"]) == size
    assert {len(i["reason"]) for i in record["items"]} == {MAX_REASON}
    assert len(json.dumps(catalog.client.get_item(TableName=catalog.table, Key=batch_key(bid))["Item"])) < 4096


def test_the_batch_cannot_read_its_items_without_the_templates_grant(cloud):
    """IAM is enforced on the ItemReader: without the template's s3:GetObject on batches/*, the batch fails."""
    run = _batch_run(cloud, 2, 5, read_grant=False, timeout_s=60)
    assert run["status"] == "FAILED" and run["answered"] == 0
    failed = [e for e in run["events"] if e["type"] in {"MapRunFailed", "ExecutionFailed"}]
    assert failed and "AccessDenied" in json.dumps(failed, default=str), run["events"][-3:]


def test_the_segment_function_scales_to_its_maximum_concurrency_capped_by_the_machine(cloud):
    mappings = {m.function.logical_id: m for m in cloud.dispatcher.mappings}
    segment = mappings["SegmentFunction"]
    assert segment.max_concurrency == 100  # the template's SegmentConcurrency (ScalingConfig MaximumConcurrency)
    assert max(m.max_concurrency for lid, m in mappings.items() if lid != "SegmentFunction") <= 5  # caps of 5 or none
    assert cloud.dispatcher.pollers(segment) == min(100, cloud.dispatcher.max_pollers) >= 2
    assert Dispatcher([], max_pollers=500).pollers(segment) == 100
    assert Dispatcher([], max_pollers=1).pollers(segment) == 1
    assert sum(t.name.startswith("esm-SegmentFunction") for t in threading.enumerate()) == cloud.dispatcher.pollers(
        segment
    )
