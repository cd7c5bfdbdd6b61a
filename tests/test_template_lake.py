"""infra/template.yaml's lake and operations resources: Glue tables with partition projection that match the row
models, the Athena workgroup, the CloudWatch dashboard and alarms, the optional Slack channel."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cliplake.handlers import analyze as analyze_handler
from cliplake.handlers import finalize as finalize_handler
from cliplake.tables import PARTITIONS, TABLES, TABLES_PREFIX
from cliplake_cli.sql import glue_columns
from cliplake_localcloud.template import Resolver, load_template, resources_of_type, transform


@pytest.fixture(scope="module")
def sam() -> dict:
    return load_template()


@pytest.fixture(scope="module")
def cfn(sam) -> dict:
    return transform(sam)


def _resolver(cfn: dict, **parameters: str) -> Resolver:
    physical = {lid: f"{lid}-physical" for lid in cfn["Resources"]}
    params = {k: str(v.get("Default", "")) for k, v in cfn.get("Parameters", {}).items()} | parameters
    return Resolver(cfn, physical, params, region="eu-west-1", account_id="111122223333", stack_name="clips",
                    stack_id="arn:aws:cloudformation:eu-west-1:111122223333:stack/clips/x")  # fmt: skip


def test_glue_tables_match_the_row_models_and_project_both_partitions(sam):
    tables = {t["Properties"]["TableInput"]["Name"]: t["Properties"] for t in
              resources_of_type(sam, "AWS::Glue::Table").values()}  # fmt: skip
    assert set(tables) == set(TABLES)
    for name, props in tables.items():
        table = props["TableInput"]
        assert table["StorageDescriptor"]["Columns"] == glue_columns(name), name
        assert [k["Name"] for k in table["PartitionKeys"]] == list(PARTITIONS)
        params = table["Parameters"]
        assert params["projection.enabled"] == "true"
        assert params["projection.source.type"] == "enum" and params["projection.campaign.type"] == "enum"
        from cliplake.lake import SOURCES

        assert set(params["projection.source.values"].split(",")) == set(SOURCES)
        template = params["storage.location.template"]["Fn::Sub"]
        assert template == f"s3://${{MediaBucket}}/{TABLES_PREFIX}{name}/source=${{!source}}/campaign=${{!campaign}}/"
        assert table["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"] == "org.openx.data.jsonserde.JsonSerDe"
    assert not resources_of_type(sam, "AWS::Glue::Crawler")


def test_athena_workgroup_limits_bytes_scanned_and_keeps_results_apart(sam):
    [wg] = resources_of_type(sam, "AWS::Athena::WorkGroup").values()
    config = wg["Properties"]["WorkGroupConfiguration"]
    assert config["BytesScannedCutoffPerQuery"] == {"Ref": "AthenaBytesScannedCutoff"}
    assert config["EnforceWorkGroupConfiguration"] is True
    assert config["ResultConfiguration"]["OutputLocation"]["Fn::Sub"].startswith("s3://${QueryResultsBucket}/")


def test_lake_grants_are_least_privilege(cfn):
    [policy] = resources_of_type(cfn, "AWS::IAM::ManagedPolicy").values()
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        assert statement["Effect"] == "Allow"
        assert "*" not in json.dumps(statement["Action"])
        for resource in statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]:
            text = json.dumps(resource)
            assert "MediaBucket" not in text or "media-processed/tables/" in text or "GetAtt" in text, statement
    index_role = cfn["Resources"]["IndexFunctionRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    writes = [s for s in index_role if "s3:PutObject" in json.dumps(s["Action"])]
    assert [s["Resource"]["Fn::Sub"] for s in writes] == [f"${{MediaBucket.Arn}}/{TABLES_PREFIX}*"]


def test_dashboard_shows_queues_dead_letters_job_slots_batches_and_stage_metrics(cfn):
    [dashboard] = resources_of_type(cfn, "AWS::CloudWatch::Dashboard").values()
    body = json.loads(_resolver(cfn).resolve(dashboard["Properties"]["DashboardBody"]))
    metrics = [m for w in body["widgets"] if w["type"] == "metric" for m in w["properties"]["metrics"]]
    names = {(m[0], m[1]) for m in metrics}
    depth = {m[4]["label"] for m in metrics if m[:2] == ["AWS/SQS", "ApproximateNumberOfMessagesVisible"]}
    assert depth == set(resources_of_type(cfn, "AWS::SQS::Queue"))  # every queue and dead-letter queue
    assert ("cliplake", "JobSlotsInUse") in names and ("cliplake", "Backpressure") in names
    assert {("AWS/States", "ExecutionsSucceeded"), ("AWS/States", "ExecutionsFailed")} <= names
    # every powertools metric the handlers name literally is on the page
    for module, service in ((analyze_handler, "analyze"), (finalize_handler, "finalize")):
        source = Path(module.__file__).read_text()
        for literal in re.findall(r'add_metric\(name="(\w+)"', source):
            assert ["cliplake", literal, "service", service] in [m[:4] for m in metrics], literal
    slots = next(w for w in body["widgets"] if "job slots" in w["properties"].get("title", ""))
    assert slots["properties"]["annotations"]["horizontal"][0]["value"] == 12  # MaxJobsInFlight's default


def test_batch_failure_and_stuck_slots_alarm_to_the_notifications_topic(cfn):
    alarms = {lid: a["Properties"] for lid, a in resources_of_type(cfn, "AWS::CloudWatch::Alarm").items()
              if "Metrics" in a["Properties"]}  # fmt: skip
    assert set(alarms) == {"BatchFailedAlarm", "JobSlotsStuckAlarm"}
    for props in alarms.values():
        assert props["AlarmActions"] == [{"Ref": "NotificationsTopic"}]
        assert sum(1 for m in props["Metrics"] if m.get("ReturnData", True)) == 1
    failed = json.dumps(alarms["BatchFailedAlarm"]["Metrics"])
    assert "ExecutionsFailed" in failed and "BatchStateMachine" in failed
    stuck = json.dumps(alarms["JobSlotsStuckAlarm"]["Metrics"])
    assert "Backpressure" in stuck and "CompletionsSummarized" in stuck


def test_slack_channel_only_with_both_ids(cfn):
    channel = cfn["Resources"]["SlackChannel"]
    assert channel["Type"] == "AWS::Chatbot::SlackChannelConfiguration"
    assert channel["Condition"] == "HasSlackChannel"
    assert channel["Properties"]["SnsTopicArns"] == [{"Ref": "NotificationsTopic"}]
    assert cfn["Resources"]["SlackChannelRole"]["Condition"] == "HasSlackChannel"
    assert not _resolver(cfn).condition("HasSlackChannel")
    assert not _resolver(cfn, SlackWorkspaceId="T0123").condition("HasSlackChannel")
    assert _resolver(cfn, SlackWorkspaceId="T0123", SlackChannelId="C0456").condition("HasSlackChannel")
