"""Batches on the local cloud: the Step Functions wrapper (plan → Map of task tokens → summary → SNS), sources
served locally in the recorded API shapes, the concurrency cap measured from the catalog, the summary message,
campaigns, the local scheduler, back-pressure and idempotent token completion."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from batchkit import SourcesServer, history, max_overlap, tiny_clips, wait_execution

from cliplake.adapters.catalog import video_key
from cliplake.campaigns import get_current_campaign, list_campaigns, set_current_campaign
from cliplake.completion import complete_video
from cliplake.services import get_services
from cliplake.settings import CampaignsSettings, IndexSettings, SourcesSettings, get_settings
from cliplake_localcloud.scheduler import next_fire

pytestmark = pytest.mark.e2e


def _fresh() -> None:
    get_settings.cache_clear()
    get_services.cache_clear()


def _campaigns_path() -> str:
    return get_settings(CampaignsSettings).campaigns_parameter_path


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("batch-clips")


@pytest.fixture(scope="module")
def sources(cloud, clips_dir):
    """The functions search a local server instead of Commons and Pixabay (with a Pixabay key in the secret)."""
    server = SourcesServer(clips_dir)
    mp = pytest.MonkeyPatch()
    mp.setenv("CLIPLAKE_WIKIMEDIA_API_URL", f"{server.url}/w/api.php")
    mp.setenv("CLIPLAKE_PIXABAY_API_URL", f"{server.url}/api/videos/")
    _fresh()
    secrets, secret_id = cloud.client("secretsmanager"), get_settings(SourcesSettings).pixabay_secret_id
    previous = secrets.get_secret_value(SecretId=secret_id)["SecretString"]
    secrets.put_secret_value(SecretId=secret_id, SecretString=json.dumps({"key": "test-key"}))
    ssm = cloud.client("ssm")
    current = get_current_campaign(ssm, _campaigns_path())
    yield server
    secrets.put_secret_value(SecretId=secret_id, SecretString=previous)
    if current:
        set_current_campaign(ssm, current, _campaigns_path())
    mp.undo()
    _fresh()
    server.close()


@pytest.fixture(scope="module")
def notifications(cloud):
    """An SQS queue subscribed to NotificationsTopic: the published summaries."""
    sqs, sns = cloud.client("sqs"), cloud.client("sns")
    url = sqs.create_queue(QueueName=f"notifications-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=cloud.outputs["NotificationsTopicArn"], Protocol="sqs", Endpoint=arn)
    return url


def _campaign(cloud) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    query = f"q {name}"  # unique: Pixabay answers are cached 24 h by URL
    cloud.client("ssm").put_parameter(
        Name=f"{_campaigns_path()}/{name}",
        Value=json.dumps({"queries": {"wikimedia": [query], "pixabay": [query]}}),
        Type="String",
    )
    return name


def _run(cloud, campaign: str, batch_size: int, max_concurrency: int | None = None, timeout_s: float = 120) -> dict:
    sfn = cloud.client("stepfunctions")
    payload = {"campaign": campaign, "batch_size": batch_size, "trigger": "manual"}
    if max_concurrency:
        payload["max_concurrency"] = max_concurrency
    name = f"test-{campaign}-{uuid.uuid4().hex[:6]}"
    arn = sfn.start_execution(
        stateMachineArn=cloud.outputs["BatchStateMachineArn"], name=name, input=json.dumps(payload)
    )["executionArn"]
    execution = wait_execution(sfn, arn, timeout_s)
    cloud.wait_idle(timeout=60)
    return {"name": name, "arn": arn, "execution": execution, "history": history(sfn, arn)}


def _map_results(events: list[dict]) -> list[dict]:
    """The Distributed Map's results, one per video (each ran in a child execution, whose history is its own):
    `{video_id, status}` from the token's success, or the Catch path's `{video_id, status: FAILED, error}`."""
    [exited] = [e for e in events if e["type"] == "MapStateExited"]
    return json.loads(exited["stateExitedEventDetails"]["output"])["results"]


def _token_successes(events: list[dict]) -> list[dict]:
    return [r for r in _map_results(events) if r["status"] != "FAILED"]


@pytest.fixture(scope="module")
def batch_of_two(cloud, sources, clips_dir, notifications):
    wiki_clip, pixa_clip = tiny_clips(clips_dir / "two", 2)
    sources.wiki_pages = [sources.wiki_page(wiki_clip, 900001, served_as=f"two/{wiki_clip.name}")]
    sources.pixabay_hits = [sources.pixabay_hit(pixa_clip, 800001, served_as=f"two/{pixa_clip.name}")]
    campaign = _campaign(cloud)
    return {"campaign": campaign, **_run(cloud, campaign, 2)}


def test_batch_of_two_indexes_one_video_per_source(batch_of_two, catalog):
    run = batch_of_two
    assert run["execution"]["status"] == "SUCCEEDED"
    record = catalog.get_batch(run["name"])
    assert record["status"] == "SUCCEEDED" and record["trigger"] == "manual" and record["offline"] is False
    assert record["execution_arn"] == run["arn"] and record["campaign"] == run["campaign"]
    assert {i["source"] for i in record["items"]} == {"wikimedia", "pixabay"}
    assert (record["received"], record["processed"], record["failed"]) == (2, 2, 0)
    assert record["max_concurrency"] == 5 and record["batch_size"] == 2
    assert record["gsi1pk"] == "BATCHES" and record["gsi1sk"] == f"{record['started_at']}#{run['name']}"
    assert record["ended_at"] > record["started_at"]
    for item in record["items"]:
        video = catalog.get_video(item["video_id"])
        assert video["status"] == "INDEXED" and video["batch_id"] == run["name"]
        assert video["raw_key"] == item["raw_key"] and video["attribution"]["source"] == item["source"]
        assert catalog.seen(item["source"], video["attribution"]["source_id"])
    assert run["name"] in [b["batch_id"] for b in catalog.list_batches(limit=50)]


def test_each_token_is_completed_by_the_index_stage(batch_of_two, catalog):
    outputs = _token_successes(batch_of_two["history"])
    record = catalog.get_batch(batch_of_two["name"])
    assert sorted(o["video_id"] for o in outputs) == sorted(i["video_id"] for i in record["items"])
    assert all(o["status"] == "INDEXED" for o in outputs)
    for item in record["items"]:
        task = catalog.get_task(item["video_id"])
        assert task["outcome"] == "INDEXED" and task["completed_at"] >= task["ingest_started_at"]
    types = [e["type"] for e in batch_of_two["history"]]
    assert "WaitStateEntered" not in types and "LambdaFunctionScheduled" not in types


def test_the_summary_is_published(batch_of_two, cloud, catalog, notifications):
    sqs = cloud.client("sqs")
    found = None
    for _ in range(10):
        for m in sqs.receive_message(QueueUrl=notifications, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            envelope = json.loads(m["Body"])
            if batch_of_two["name"] in envelope["Message"]:
                found = envelope
        if found:
            break
    assert found, "no summary published"
    assert found["Subject"] == f"cliplake batch {batch_of_two['campaign']}: 2/2 indexed"
    text = found["Message"]
    assert "Received:  2" in text and "Processed: 2" in text and "Failed:    0" in text
    record = catalog.get_batch(batch_of_two["name"])
    for label in record["top_labels"]:  # synthetic clips may have none above the confidence threshold
        assert f"  - {label['name']}: {label['videos']} video(s)" in text
    assert "offline" not in text.lower()


def test_a_manual_run_makes_its_campaign_current(batch_of_two, cloud):
    ssm = cloud.client("ssm")
    assert get_current_campaign(ssm, _campaigns_path()) == batch_of_two["campaign"]
    assert {"travel", "tech", "nature", batch_of_two["campaign"]} <= set(list_campaigns(ssm, _campaigns_path()))


def test_a_failed_download_is_reported_and_the_rest_indexed(cloud, sources, clips_dir, catalog, notifications):
    wiki_clip, pixa_clip = tiny_clips(clips_dir / "fail", 2)
    sources.wiki_pages = [sources.wiki_page(wiki_clip, 900002, served_as=f"fail/{wiki_clip.name}")]
    sources.pixabay_hits = [sources.pixabay_hit(pixa_clip, 800002, served_as="fail/missing.mp4")]
    run = _run(cloud, _campaign(cloud), 2)
    assert run["execution"]["status"] == "SUCCEEDED"
    record = catalog.get_batch(run["name"])
    assert (record["received"], record["processed"], record["failed"]) == (2, 1, 1)
    [failure] = record["failures"]
    pixabay_item = next(i for i in record["items"] if i["source"] == "pixabay")
    assert failure["video_id"] == pixabay_item["video_id"]
    assert "download failed" in failure["reason"] and "404" in failure["reason"]
    wiki_item = next(i for i in record["items"] if i["source"] == "wikimedia")
    assert catalog.get_video(wiki_item["video_id"])["status"] == "INDEXED"
    failed = [r for r in _map_results(run["history"]) if r["status"] == "FAILED"]
    assert [(r["video_id"], r["error"]) for r in failed] == [(pixabay_item["video_id"], "VideoFailed")]
    assert [o["video_id"] for o in _token_successes(run["history"])] == [wiki_item["video_id"]]


def test_twenty_videos_never_more_than_five_in_flight(cloud, sources, clips_dir, catalog, tmp_path):
    """Measured from the catalog: each item's ingest start and token completion."""
    clips = tiny_clips(tmp_path / "samples", 20)
    index = [{"file": f"samples/{c.name}", "title": c.stem, "author": "cliplake tests", "licence": "CC0 1.0",
              "licence_url": "https://creativecommons.org/publicdomain/zero/1.0/", "source_url": "", "author_url": ""}
             for c in clips]  # fmt: skip
    (tmp_path / "samples.json").write_text(json.dumps(index))
    sources.wiki_pages, sources.pixabay_hits = [], []  # the live sources return nothing: the batch runs offline
    mp = pytest.MonkeyPatch()
    mp.setenv("CLIPLAKE_ASSETS_DIR", str(tmp_path))
    _fresh()
    try:
        run = _run(cloud, _campaign(cloud), 20, max_concurrency=5, timeout_s=240)
    finally:
        mp.undo()
        _fresh()
    assert run["execution"]["status"] == "SUCCEEDED"
    record = catalog.get_batch(run["name"])
    assert record["offline"] is True and record["max_concurrency"] == 5
    assert (record["received"], record["processed"], record["failed"]) == (20, 20, 0)
    intervals = []
    for item in record["items"]:
        task = catalog.get_task(item["video_id"])
        start, end = (datetime.fromisoformat(task[k]).timestamp() for k in ("ingest_started_at", "completed_at"))
        assert end > start
        intervals.append((start, end))
    in_flight = max_overlap(intervals)
    assert 2 <= in_flight <= 5, in_flight
    assert catalog.jobs_in_flight() == 0  # every video gave its Rekognition slots back


def test_back_pressure_slots_are_bounded_and_released_once(catalog):
    vids = [f"vbp{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for vid in vids:
        catalog.client.put_item(TableName=catalog.table, Item=video_key(vid))
    before = catalog.jobs_in_flight()
    bound = before + 6
    assert catalog.slots.acquire(vids[0], 3, bound) and catalog.slots.acquire(vids[1], 3, bound)
    assert catalog.slots.acquire(vids[0], 3, bound)  # already held: idempotent
    assert not catalog.slots.acquire(vids[2], 3, bound)  # full
    assert catalog.jobs_in_flight() == before + 6
    assert catalog.slots.release(vids[0], 3) and not catalog.slots.release(vids[0], 3)
    assert catalog.slots.acquire(vids[2], 3, bound)
    assert catalog.slots.release(vids[1], 3) and catalog.slots.release(vids[2], 3)
    assert catalog.jobs_in_flight() == before


def test_completing_a_video_twice_is_harmless(cloud, catalog):
    svc = get_services(IndexSettings)
    vid = f"vtok{uuid.uuid4().hex[:8]}"
    catalog.tasks.put(vid, "not-a-real-token", "no-such-batch")
    assert complete_video(svc, vid, ok=False, reason="gone") is True  # InvalidToken swallowed
    assert complete_video(svc, vid, ok=True) is False  # already completed: nothing sent
    assert complete_video(svc, "v-not-in-a-batch", ok=True) is False
    assert catalog.get_task(vid)["reason"] == "gone"


def test_the_local_scheduler_fires_the_template_schedule(cloud, catalog):
    assert cloud.scheduler and len(cloud.scheduler.schedules) == 1
    [schedule] = cloud.scheduler.schedules.values()
    assert schedule.expression == "cron(0 6 ? * MON *)" and schedule.next_at.weekday() == 0
    assert json.loads(schedule.input) == {"campaign": "", "batch_size": 2, "trigger": "schedule"}
    arn = cloud.scheduler.fire(schedule.name)
    sfn = cloud.client("stepfunctions")
    assert wait_execution(sfn, arn)["status"] == "SUCCEEDED"
    cloud.wait_idle(timeout=60)
    record = catalog.get_batch(arn.rsplit(":", 1)[-1])
    assert record["trigger"] == "schedule" and record["status"] == "SUCCEEDED"
    assert record["campaign"] == get_current_campaign(cloud.client("ssm"), _campaigns_path())


def test_schedule_expressions():
    monday = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)  # a Monday, 06:00
    assert next_fire("cron(0 6 ? * MON *)", monday) == datetime(2026, 1, 12, 6, 0, tzinfo=UTC)
    assert next_fire("cron(0 6 ? * MON *)", datetime(2026, 1, 1, tzinfo=UTC)) == monday
    assert next_fire("cron(*/15 * * * ? *)", monday) == datetime(2026, 1, 5, 6, 15, tzinfo=UTC)
    assert next_fire("cron(30 9 1 JAN-MAR ? 2026)", monday) == datetime(2026, 2, 1, 9, 30, tzinfo=UTC)
    assert next_fire("rate(1 hour)", monday, created=monday) == datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
    assert next_fire("at(2026-01-05T05:00:00)", monday) is None


def test_cli_smoke_credits_and_schedule_fire(cloud, sources, catalog, tmp_path, capsys):
    from cliplake_cli.cli import main

    [clip] = tiny_clips(tmp_path / "samples", 1)
    entry = {"file": f"samples/{clip.name}", "title": "Smoke clip", "author": "cliplake tests", "licence": "CC0 1.0"}
    (tmp_path / "samples.json").write_text(json.dumps([entry]))
    sources.wiki_pages, sources.pixabay_hits = [], []
    mp = pytest.MonkeyPatch()
    mp.setenv("CLIPLAKE_ASSETS_DIR", str(tmp_path))
    _fresh()
    try:
        assert main(["smoke", "--timeout", "120"]) == 0
        out = capsys.readouterr().out
        assert out.count("ok  ") == 6 and "FAIL" not in out
        assert main(["credits"]) == 0
        assert '"Smoke clip" by cliplake tests, licensed under CC0 1.0' in capsys.readouterr().out
        assert main(["schedule", "fire"]) == 0
        arn = capsys.readouterr().out.strip()
        assert wait_execution(cloud.client("stepfunctions"), arn)["status"] == "SUCCEEDED"
        cloud.wait_idle(timeout=60)
        assert catalog.get_batch(arn.rsplit(":", 1)[-1])["trigger"] == "schedule"
    finally:
        mp.undo()
        _fresh()


def test_cost_model_counts_the_definition():
    from cliplake_cli.bench import ASL_PATH, cost_per_video, cost_per_video_polling, dollars, rekognition_per_minute

    ours = cost_per_video(batch_size=2)
    # per video: its child execution's start and its Video task; plan, map, summary, notify per batch
    assert ours["state transitions"] == 1 + 1 + 4 / 2
    # a failed video also enters the Catch's Pass state
    assert cost_per_video(batch_size=1000, failed_share=0.2)["state transitions"] == pytest.approx(2 + 0.2 + 0.004)
    definition = json.loads(ASL_PATH.read_text())
    definition["States"]["Items"]["ItemProcessor"]["ProcessorConfig"] = {"Mode": "INLINE"}
    assert cost_per_video(batch_size=2, definition=definition)["state transitions"] == 1 + 4 / 2  # no child starts
    assert ours["lambda invocations"] == 7 + 2 / 2  # ingest, analyze, 4 completions (one per feature), index
    fewer = cost_per_video(batch_size=2, features=("labels", "text"))
    assert fewer["lambda invocations"] == 5 + 2 / 2 and fewer["sns publishes"] == 2 + 1 / 2
    assert rekognition_per_minute(("labels", "text")) < rekognition_per_minute()
    polling = [cost_per_video_polling(t) for t in (60, 300, 1800)]
    assert [p["state transitions"] for p in polling] == sorted(p["state transitions"] for p in polling)
    assert all(dollars(p) > dollars(ours) for p in polling)
