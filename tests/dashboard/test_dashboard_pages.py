"""Every page of the dashboard under Streamlit's AppTest, against the local cloud with real videos in it."""

from __future__ import annotations

import json
import socket
from dataclasses import replace

import boto3
import pytest
from dashkit import CAMPAIGN, batch_record, delete_batch, items_of, put_batch, texts

from dashboard import data

pytestmark = pytest.mark.e2e

PAGES = ("run", "last", "history", "logs", "stats", "library", "video", "sql", "health")


def ok(at):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_library_lists_the_campaigns_videos(app, dropped):
    at = ok(app("library"))
    at.text_input(key="lib_campaign").input(CAMPAIGN).run()
    table = ok(at).dataframe[0].value
    assert {dropped["indexed"]["video_id"], dropped["failed"]["video_id"]} <= set(table["video id"])
    assert set(table.loc[table["video id"] == dropped["failed"]["video_id"], "status"]) == {"FAILED"}


def test_library_searches_by_label_above_a_confidence(app, dropped):
    video = dropped["indexed"]
    name, score = max(video["label_scores"].items(), key=lambda kv: kv[1])
    at = ok(app("library"))
    at.text_input(key="lib_label").input(name.lower()).run()
    at.slider(key="lib_min_conf").set_value(int(score)).run()
    table = ok(at).dataframe[0].value
    assert video["video_id"] in set(table["video id"])
    assert (table["confidence"] >= int(score)).all()
    if score < 99:
        at.slider(key="lib_min_conf").set_value(int(score) + 1).run()
        assert video["video_id"] not in texts(ok(at))
    at.text_input(key="lib_label").input("no-such-label").run()
    assert "No video matches these filters." in texts(ok(at))


def test_library_searches_the_text_on_screen_and_the_video_page_lists_it(app, dropped):
    video = dropped["indexed"]  # the h264 clip has "Lantern Parade" burned in
    at = ok(app("library"))
    at.text_input(key="lib_text").input("parade").run()
    table = ok(at).dataframe[0].value
    assert video["video_id"] in set(table["video id"])
    assert any("Parade" in t for t in table["text"])
    at.text_input(key="lib_text").input("zeppelin").run()
    assert "No video matches these filters." in texts(ok(at))
    page = ok(app("video", video=video["video_id"]))
    assert "Text on screen" in texts(page)
    text_tables = [df.value for df in page.dataframe if "text" in df.value.columns]
    assert any("Parade" in str(v) for t in text_tables for v in t["text"])


def test_library_opens_a_video_page(app, dropped):
    video = dropped["indexed"]
    at = ok(app("library"))
    at.text_input(key="lib_campaign").input(CAMPAIGN).run()
    at.selectbox(key="lib_pick").set_value(video["video_id"]).run()
    next(b for b in at.button if b.label == "Open video").click().run()
    assert at.sidebar.radio(key="nav").value == "Video"
    assert ok(at).header[0].value == video["filename"]
    assert at.query_params["video"] == [video["video_id"]] or at.query_params["video"] == video["video_id"]


def test_video_page_shows_player_timeline_shots_moderation_and_credit(app, dropped):
    video = dropped["indexed"]
    at = ok(app("video", video=video["video_id"]))
    assert at.header[0].value == video["filename"]
    assert len(at.get("video")) == 1 and "Signature=" in at.get("video")[0].proto.url
    assert len(at.get("vega_lite_chart")) == 1  # the label timeline
    assert len(at.image) == 3  # one thumbnail per shot
    assert all(img.proto.imgs[0].url for img in at.image)
    page = texts(at)
    assert "Shots (3)" in page and "Moderation" in page
    assert video["credit_line"] in page


def test_video_page_of_a_failed_video_shows_its_reason(app, dropped):
    video = dropped["failed"]
    at = app("video", video=video["video_id"])
    assert not at.exception
    assert video["reason"] in at.error[0].value


def test_video_page_of_an_unknown_id(app, cloud):
    at = ok(app("video", video="vnotthere"))
    assert "No video vnotthere" in at.warning[0].value


def test_history_lists_batches_newest_first(app, finished_batch):
    table = ok(app("history")).dataframe[0].value
    row = table[table["execution id"] == finished_batch["batch_id"]].iloc[0]
    assert (row["status"], row["campaign"], row["processed"], row["batch size"]) == ("SUCCEEDED", CAMPAIGN, "1/2", 2)
    assert row["duration (s)"] > 0 and row["started"] and row["ended"]
    assert list(table["started"]) == sorted(table["started"], reverse=True)


def test_last_execution_summary_and_its_log(app, finished_batch, dropped):
    at = ok(app("last"))
    page = texts(at)
    assert finished_batch["batch_id"] in page
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Received"], metrics["Processed"], metrics["Failed"]) == ("2", "1", "1")
    assert dropped["failed"]["reason"][:30] in page  # the failures table
    events = at.expander[0].dataframe[0].value  # the expandable log: the execution's events
    assert "ExecutionSucceeded" in set(events["event"])


def test_detailed_logs_read_as_a_table(app, finished_batch):
    at = ok(app("logs", execution=finished_batch["batch_id"]))
    events = at.dataframe[0].value
    order = list(events["event"])
    assert order[0] == "ExecutionStarted" and order[-1] == "ExecutionSucceeded"
    assert {"Plan", "Summarize"} <= set(events["state"])
    assert "job-0001" in set(events["job ids"]) and "Dog" in set(events["labels"])
    assert any("media-raw/video/dropin/dashtest/" in k for k in events["s3 keys"])
    assert (events["t+ (s)"].dropna() >= 0).all()
    assert len(at.get("vega_lite_chart")) == 1  # the states timeline
    assert at.expander[0].label.startswith("Raw history")


def test_statistics_by_source_reason_and_time(app, dropped, finished_batch):
    at = ok(app("stats"))
    page = texts(at)
    assert "not a readable media file" in page
    assert {m.label for m in at.metric} == {"Raw", "Processed", "Failed"}
    assert len(at.get("vega_lite_chart")) >= 3  # by source, by reason, over time


def test_run_page_without_the_state_machine_still_monitors(app, finished_batch, monkeypatch):
    """A stack deployed without the batch wrapper: the page says so and still monitors recorded batches."""
    real = data.load_config
    monkeypatch.setattr(data, "load_config", lambda *a, **k: replace(real(*a, **k), state_machine_arn=""))
    at = ok(app("run"))
    assert "not deployed yet" in at.info[0].value
    assert finished_batch["batch_id"] in texts(at)


def test_live_monitor_shows_each_items_stage(app, cloud, dropped, finished_batch):
    running = batch_record("dash-dashtest-29990101000000-aaaa", items_of(dropped), "RUNNING",
                           started_at="2999-01-01T00:00:00.000+00:00")  # fmt: skip
    running["items"].append({"video_id": "vnotyetreceived", "source": "pixabay", "title": "later", "raw_key": ""})
    put_batch(cloud, running)
    try:
        at = ok(app("run"))
        stages = at.dataframe[0].value.set_index("video id")["stage"].to_dict()
        assert stages == {
            dropped["indexed"]["video_id"]: "INDEXED",
            dropped["failed"]["video_id"]: "FAILED",
            "vnotyetreceived": "WAITING",
        }
        assert {m.label: m.value for m in at.metric}["Items done"] == "2/3"
    finally:
        delete_batch(cloud, running["batch_id"])


def test_start_batch_button(app, cloud, state_machine, monkeypatch):
    """The button makes the campaign current and starts an execution with the documented input (against a
    stand-in Pass machine, so no videos are ingested; the browser test runs the real batch wrapper)."""
    ssm = cloud.client("ssm")
    ssm.put_parameter(Name="/cliplake/campaigns/dashtest", Value=json.dumps({"pixabay": {"q": "dog"}}), Type="String",
                      Overwrite=True)  # fmt: skip
    real = data.load_config
    monkeypatch.setattr(data, "load_config", lambda *a, **k: replace(real(*a, **k), state_machine_arn=state_machine))
    try:
        at = ok(app("run"))
        assert {"dashtest", "travel", "tech", "nature"} <= set(at.selectbox(key="campaign").options)
        at.selectbox(key="campaign").set_value("dashtest")
        at.slider(key="batch_size").set_value(3)
        next(b for b in at.button if b.label == "Start batch").click().run()
        assert "Started dash-dashtest-" in ok(at).success[0].value
        assert ssm.get_parameter(Name="/cliplake/current-campaign")["Parameter"]["Value"] == "dashtest"
        name = at.session_state["watch_batch"]
        execution = cloud.client("stepfunctions").describe_execution(executionArn=at.session_state["watch_arn"])
        assert execution["name"] == name
        assert json.loads(execution["input"]) == {
            "campaign": "dashtest", "batch_size": 3, "max_concurrency": 5, "trigger": "dashboard"
        }  # fmt: skip
    finally:
        ssm.delete_parameter(Name="/cliplake/campaigns/dashtest")
        ssm.delete_parameter(Name="/cliplake/current-campaign")


def test_pages_read_through_keys_and_indexes_only(app, api_calls, dropped, finished_batch):
    """No Scan anywhere; every Query is limited, but the handful of per-source counters."""
    for page in PAGES:
        ok(app(page, video=dropped["indexed"]["video_id"]))
    at = app("library")
    at.text_input(key="lib_label").input("anything").run()
    ok(at)
    ddb = [(op, params) for service, op, params in api_calls if service == "dynamodb"]
    assert ddb and not [op for op, _ in ddb if op == "Scan"]
    unlimited = [p for op, p in ddb if op == "Query" and "Limit" not in p]
    assert all(p["ExpressionAttributeValues"][":pk"] == {"S": "STATS"} for p in unlimited), unlimited


# ------------------------------------------------------------------------------------ failures on screen
@pytest.fixture
def empty_catalog(cloud, monkeypatch):
    """The dashboard pointed at an empty catalog of the same schema (the pipeline keeps using its own)."""
    ddb = cloud.client("dynamodb")
    table = cloud.outputs["CatalogTableName"]
    desc = ddb.describe_table(TableName=table)["Table"]
    empty = f"{table}-empty"
    ddb.create_table(
        TableName=empty,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=desc["AttributeDefinitions"],
        KeySchema=desc["KeySchema"],
        GlobalSecondaryIndexes=[
            {k: g[k] for k in ("IndexName", "KeySchema", "Projection")} for g in desc["GlobalSecondaryIndexes"]
        ],
    )
    real = data.load_config
    fresh = {"table": empty, "state_machine_arn": ""}  # a new stack: no catalog items, no executions
    monkeypatch.setattr(data, "load_config", lambda *a, **k: replace(real(*a, **k), **fresh))
    yield empty
    monkeypatch.undo()
    ddb.delete_table(TableName=empty)


@pytest.mark.parametrize(
    ("page", "message"),
    [
        ("library", "The catalog is empty"),
        ("history", "No batch has run yet."),
        ("last", "No batch has run yet."),
        ("stats", "The catalog is empty"),
        ("run", "No batch has run yet."),
        ("logs", "No execution to show yet."),
    ],
)
def test_empty_catalog_says_so(app, empty_catalog, page, message):
    at = ok(app(page))
    assert message in texts(at)


def test_unreachable_cloud_is_a_message_not_a_traceback(app, cloud, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # closed again: nothing listens there
    # Only the dashboard's session points at the dead port: the pipeline in this process keeps its cloud.
    session = boto3.session.Session()
    make_client = session.client
    session.client = lambda *a, **k: make_client(*a, **{**k, "endpoint_url": f"http://127.0.0.1:{dead}"})
    real = data.load_config
    monkeypatch.setattr(data, "load_config", lambda *a, **k: real(*a, **{**k, "session": session}))
    for page in ("library", "run"):
        at = app(page)
        assert not at.exception
        assert "The cloud is unreachable" in at.error[0].value
