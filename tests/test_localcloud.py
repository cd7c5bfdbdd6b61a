"""The local cloud: stack deployed from infra/template.yaml on a moto server, wiring moto skips, dispatcher.

The session's one LocalCloud (`cloud` in tests/conftest.py) is shared; for this module every function's
handler is replaced by a `Switchboard` (through the dispatcher's general override) that records each
invocation and answers as the running test says. Tests tag what they
send with a unique id and look only for their own messages (S3 also sends its s3:TestEvent).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest

from cliplake.contracts import RekognitionCompletion
from cliplake_localcloud.cloud import LocalCloud
from cliplake_localcloud.dispatcher import Backoff, Dispatcher, FunctionSpec, Mapping, failed_ids
from cliplake_localcloud.template import NO_VALUE, Resolver, load_template, resources_of_type, transform

FUNCTIONS = ("AnalyzeFunction", "FinalizeFunction", "IndexFunction")
RECORD_KEYS = {
    "messageId",
    "receiptHandle",
    "body",
    "attributes",
    "messageAttributes",
    "md5OfBody",
    "eventSource",
    "eventSourceARN",
    "awsRegion",
}


class Fail(Exception):
    """Raised by a test's rule: report this record as a batch item failure."""


class Switchboard:
    """Stands in for every function: records invocations; `rule(function_id, record)` decides each record
    (return: success, raise Fail: item failure, raise anything else: the handler crashes)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], Any]] = []
        self.rule: Callable[[str, dict[str, Any]], None] = lambda fn, record: None
        self._cond = threading.Condition()

    def handler(self, function_id: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
        def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
            with self._cond:
                self.calls.append((function_id, event, context))
                self._cond.notify_all()
            failures = []
            for record in event["Records"]:
                try:
                    self.rule(function_id, record)
                except Fail:
                    failures.append({"itemIdentifier": record["messageId"]})
            return {"batchItemFailures": failures}

        return handle

    def records(self, function_id: str, marker: str) -> list[dict[str, Any]]:
        with self._cond:
            return [
                r
                for fn, event, _ in self.calls
                if fn == function_id
                for r in event["Records"]
                if marker in unquote_plus(r["body"])
            ]

    def wait_records(self, function_id: str, marker: str, count: int = 1, timeout: float = 15) -> list[dict]:
        with self._cond:
            self._cond.wait_for(lambda: len(self.records(function_id, marker)) >= count, timeout=timeout)
        found = self.records(function_id, marker)
        assert len(found) >= count, f"{function_id} got {len(found)} records with {marker}, expected {count}"
        return found


@pytest.fixture(scope="module")
def switchboard() -> Switchboard:
    return Switchboard()


@pytest.fixture(scope="module")
def cloud(cloud: LocalCloud, switchboard: Switchboard):
    """The session's local cloud (tests/conftest.py) with every handler replaced by the switchboard and
    failed messages retried at once, for this module only."""
    cloud.wait_idle(timeout=300)
    previous = cloud.dispatcher.backoff
    cloud.dispatcher.backoff = Backoff(base_s=0)
    try:
        with cloud.dispatcher.override(**{fn: switchboard.handler(fn) for fn in FUNCTIONS}):
            yield cloud
            cloud.wait_idle(timeout=60)
    finally:
        cloud.dispatcher.backoff = previous


@pytest.fixture(autouse=True)
def _default_rule(switchboard: Switchboard):
    switchboard.rule = lambda fn, record: None
    yield
    switchboard.rule = lambda fn, record: None


def _marker() -> str:
    return uuid.uuid4().hex


def _queue_arn(cloud: LocalCloud, output: str) -> str:
    url = cloud.outputs[output]
    return cloud.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _drain(cloud: LocalCloud, output: str) -> list[dict[str, Any]]:
    sqs, url = cloud.client("sqs"), cloud.outputs[output]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    for m in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return messages


# ------------------------------------------------------------------------------------------------ deploy
def test_stack_deploys_from_the_template(cloud: LocalCloud):
    cfn = cloud.client("cloudformation")
    stack = cfn.describe_stacks(StackName=cloud.stack_name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    expected = set(transform(load_template())["Resources"])
    expected -= set(resources_of_type(cloud.template, "AWS::Lambda::EventSourceMapping"))
    expected -= {lid for lid, r in cloud.template["Resources"].items()  # not deployed on AWS either
                 if r.get("Condition") and not cloud.resolver.condition(r["Condition"])}  # fmt: skip
    assert expected <= set(cloud.resolver.physical_ids) | set(
        resources_of_type(cloud.template, "AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy", "AWS::SNS::Subscription")
    )
    assert not resources_of_type(
        {"Resources": {r["LogicalResourceId"]: {"Type": r["ResourceType"]} for r in _stack_resources(cloud)}},
        "AWS::Lambda::EventSourceMapping",
    ), "moto must not poll the queues itself"
    assert {"MediaBucketName", "RawVideoQueueUrl", "SummaryDLQUrl", "RekognitionRoleArn"} <= set(cloud.outputs)


def _stack_resources(cloud: LocalCloud) -> list[dict[str, Any]]:
    return cloud.client("cloudformation").list_stack_resources(StackName=cloud.stack_name)["StackResourceSummaries"]


def test_environment_is_the_functions_environment(cloud: LocalCloud):
    assert cloud.env["AWS_ENDPOINT_URL"] == cloud.endpoint_url == os.environ["AWS_ENDPOINT_URL"]
    assert cloud.env["CLIPLAKE_BUCKET"] == cloud.outputs["MediaBucketName"]
    assert cloud.env["CLIPLAKE_CATALOG_TABLE"] == cloud.outputs["CatalogTableName"]
    assert cloud.env["CLIPLAKE_REKOGNITION_ROLE_ARN"] == cloud.outputs["RekognitionRoleArn"]
    # the local resolver agrees with moto's own resolution of the deployed functions' environment
    lam = cloud.client("lambda")
    for fn in FUNCTIONS:
        conf = lam.get_function_configuration(FunctionName=cloud.resolver.physical_ids[fn])
        for key, value in conf["Environment"]["Variables"].items():
            assert os.environ[key] == str(value), key


def test_each_function_sees_its_own_variables_and_its_settings_load(cloud: LocalCloud):
    """As on Lambda: a function sees its own template variables, not another's (the ingest function has no Pixabay
    secret id, no idempotency table), so its settings load and those of another function fail, naming what lacks."""
    import importlib

    from cliplake.settings import SettingsError, load_settings
    from cliplake_localcloud import environ

    for lid, spec in cloud.functions.items():
        settings = importlib.import_module(spec.handler.rsplit(".", 1)[0]).SETTINGS
        env, hidden = cloud.function_environment(spec)
        with environ.overlay(env, hidden=hidden):
            seen = {k for k in os.environ if k.startswith("CLIPLAKE_")}
            load_settings(settings)
        assert {k for k in spec.environment if k.startswith("CLIPLAKE_")} <= seen, lid
        assert not seen & hidden, lid
    env, hidden = cloud.function_environment(cloud.functions["IngestFunction"])
    with environ.overlay(env, hidden=hidden):
        assert "CLIPLAKE_PIXABAY_SECRET_ID" not in os.environ
        with pytest.raises(SettingsError, match="CLIPLAKE_IDEMPOTENCY_TABLE is not set"):
            load_settings(importlib.import_module("cliplake.handlers.index").SETTINGS)


def test_moto_skipped_resources_are_applied(cloud: LocalCloud):
    s3, sqs, ddb = cloud.client("s3"), cloud.client("sqs"), cloud.client("dynamodb")
    bucket = cloud.outputs["MediaBucketName"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]["BlockPublicAcls"]
    policy = sqs.get_queue_attributes(QueueUrl=cloud.outputs["CompletionQueueUrl"], AttributeNames=["Policy"])
    assert "sns.amazonaws.com" in policy["Attributes"]["Policy"]
    table = cloud.outputs["CatalogTableName"]
    assert ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]["AttributeName"] == "ttl"


# ----------------------------------------------------------------------------------------------- routing
def test_raw_upload_reaches_analyze_with_the_lambda_sqs_event(cloud: LocalCloud, switchboard: Switchboard):
    marker = _marker()
    key = f"media-raw/video/dropin/adhoc/20250101_000000/My clip+{marker}.webm"
    cloud.client("s3").put_object(Bucket=cloud.outputs["MediaBucketName"], Key=key, Body=b"video")

    (record,) = switchboard.wait_records("AnalyzeFunction", marker)
    assert set(record) == RECORD_KEYS
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == _queue_arn(cloud, "RawVideoQueueUrl")
    assert record["awsRegion"] == "us-east-1"
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
    assert set(record["attributes"]) >= {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    s3_record = json.loads(record["body"])["Records"][0]
    assert s3_record["eventName"].startswith("ObjectCreated:")
    assert unquote_plus(s3_record["s3"]["object"]["key"]) == key  # URL-encoded on the way

    context = next(ctx for fn, event, ctx in switchboard.calls if record in event["Records"])
    assert context.function_name == cloud.resolver.physical_ids["AnalyzeFunction"]
    assert context.invoked_function_arn.endswith(f":function:{context.function_name}")
    assert context.memory_limit_in_mb == "3008"
    assert 0 < context.get_remaining_time_in_millis() <= 900_000
    assert context.aws_request_id and context.log_group_name == f"/aws/lambda/{context.function_name}"

    cloud.wait_idle(timeout=30)  # the success was deleted
    assert len(switchboard.records("AnalyzeFunction", marker)) == 1


def test_summary_reaches_index_but_a_rendition_does_not(cloud: LocalCloud, switchboard: Switchboard):
    marker = _marker()
    stem = f"media-processed/video/dropin/adhoc/20250101_000000/clip-{marker}"
    s3 = cloud.client("s3")
    s3.put_object(Bucket=cloud.outputs["MediaBucketName"], Key=f"{stem}_h264.mp4", Body=b"mp4")
    s3.put_object(Bucket=cloud.outputs["MediaBucketName"], Key=f"{stem}_labels.json", Body=b"{}")

    (record,) = switchboard.wait_records("IndexFunction", marker)
    key = unquote_plus(json.loads(record["body"])["Records"][0]["s3"]["object"]["key"])
    assert key == f"{stem}_labels.json"
    cloud.wait_idle(timeout=30)
    assert not [r for fn in FUNCTIONS for r in switchboard.records(fn, f"{marker}_h264")]


def test_rekognition_completion_reaches_finalize_in_the_sns_envelope(cloud: LocalCloud, switchboard: Switchboard):
    job = _marker()
    completion = {
        "JobId": job,
        "Status": "SUCCEEDED",
        "API": "StartLabelDetection",
        "JobTag": "v123",
        "Timestamp": 1735689600000,
        "Video": {"S3ObjectName": "media-raw/video/x.mp4", "S3Bucket": cloud.outputs["MediaBucketName"]},
    }
    cloud.client("sns").publish(TopicArn=cloud.outputs["RekognitionTopicArn"], Message=json.dumps(completion))

    (record,) = switchboard.wait_records("FinalizeFunction", job)
    envelope = json.loads(record["body"])
    assert envelope["Type"] == "Notification"
    assert envelope["TopicArn"] == cloud.outputs["RekognitionTopicArn"]
    assert json.loads(envelope["Message"]) == completion
    assert RekognitionCompletion.model_validate_json(record["body"]).JobId == job


# ------------------------------------------------------------------------------------------- dispatcher
def _send(cloud: LocalCloud, output: str, bodies: list[str], **attributes: str) -> None:
    entries = [
        {
            "Id": str(i),
            "MessageBody": body,
            "MessageAttributes": {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
        }
        for i, body in enumerate(bodies)
    ]
    cloud.client("sqs").send_message_batch(QueueUrl=cloud.outputs[output], Entries=entries)


def test_partial_batch_failures_are_retried_and_successes_deleted(cloud: LocalCloud, switchboard: Switchboard):
    marker = _marker()

    def rule(fn: str, record: dict[str, Any]) -> None:
        if "fail-once" in record["body"] and record["attributes"]["ApproximateReceiveCount"] == "1":
            raise Fail

    switchboard.rule = rule
    _send(cloud, "CompletionQueueUrl", [f"{marker} ok {i}" for i in range(3)] + [f"{marker} fail-once"], kind="t")

    records = switchboard.wait_records("FinalizeFunction", marker, count=5)
    cloud.wait_idle(timeout=30)
    records = switchboard.records("FinalizeFunction", marker)
    by_body: dict[str, list[str]] = {}
    for r in records:
        by_body.setdefault(r["body"], []).append(r["attributes"]["ApproximateReceiveCount"])
    assert by_body == {**{f"{marker} ok {i}": ["1"] for i in range(3)}, f"{marker} fail-once": ["1", "2"]}
    assert records[0]["messageAttributes"]["kind"] == {
        "stringValue": "t",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "String",
    }
    assert _drain(cloud, "CompletionDLQUrl") == []


def test_a_handler_that_raises_fails_the_whole_batch(cloud: LocalCloud, switchboard: Switchboard):
    marker = _marker()

    def rule(fn: str, record: dict[str, Any]) -> None:
        if marker in record["body"] and record["attributes"]["ApproximateReceiveCount"] == "1":
            raise RuntimeError("boom")

    switchboard.rule = rule
    _send(cloud, "SummaryQueueUrl", [f"{marker} a"])
    records = switchboard.wait_records("IndexFunction", marker, count=2)
    assert [r["attributes"]["ApproximateReceiveCount"] for r in records] == ["1", "2"]
    cloud.wait_idle(timeout=30)


def test_a_poison_message_moves_to_the_dlq_after_max_receive_count(cloud: LocalCloud, switchboard: Switchboard):
    marker = _marker()

    def rule(fn: str, record: dict[str, Any]) -> None:
        if marker in record["body"]:
            raise Fail

    switchboard.rule = rule
    _send(cloud, "CompletionQueueUrl", [f"{marker} poison"])
    switchboard.wait_records("FinalizeFunction", marker, count=5)
    cloud.wait_idle(timeout=30)  # the 6th receive finds it over maxReceiveCount: SQS moves it to the DLQ
    records = switchboard.records("FinalizeFunction", marker)
    assert [r["attributes"]["ApproximateReceiveCount"] for r in records] == ["1", "2", "3", "4", "5"]
    assert [m["Body"] for m in _drain(cloud, "CompletionDLQUrl")] == [f"{marker} poison"]


def test_wait_idle_reports_what_is_busy(cloud: LocalCloud):
    release = threading.Event()

    def blocking(event: dict[str, Any], context: Any) -> None:
        release.wait(10)

    with cloud.dispatcher.override(FinalizeFunction=blocking):
        _send(cloud, "CompletionQueueUrl", [f"{_marker()} slow"])
        with pytest.raises(TimeoutError, match="FinalizeFunction"):
            cloud.wait_idle(timeout=0.5)
        release.set()
        cloud.wait_idle(timeout=30)


# ---------------------------------------------------------------------------------- pure building blocks
def test_failed_ids_reads_the_response_as_lambda_does():
    ids = ["a", "b", "c"]
    assert failed_ids(None, ids, True) == []
    assert failed_ids({"batchItemFailures": []}, ids, True) == []
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, ids, True) == ["b"]
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, ids, True) == ids
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": ""}]}, ids, True) == ids
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, ids, False) == []


def test_backoff_grows_with_receives_and_is_capped():
    backoff = Backoff(base_s=1, factor=2, cap_s=10)
    assert [backoff.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert Backoff(base_s=0).delay(9) == 0


def test_dispatcher_imports_the_template_handler():
    spec = FunctionSpec(logical_id="F", name="f", arn="arn:aws:lambda:us-east-1:1:function:f", handler="json.loads")
    assert Dispatcher([]).handler_for(spec) is json.loads
    dispatcher = Dispatcher([], handlers={"F": print})
    assert dispatcher.handler_for(spec) is print
    dispatcher.set_handler("F", None)
    assert dispatcher.handler_for(spec) is json.loads


def test_dispatcher_imports_every_handler_before_polling():
    """Like Lambda's init phase, once up front: a handler that cannot be imported stops the start, before any
    message is taken off a queue."""
    spec = FunctionSpec(logical_id="F", name="f", arn="arn:aws:lambda:us-east-1:1:function:f", handler="no_such.h")
    mapping = Mapping("M", spec, "http://127.0.0.1:1/q", "arn:aws:sqs:us-east-1:1:q")
    dispatcher = Dispatcher([mapping], endpoint_url="http://127.0.0.1:1")
    with pytest.raises(ModuleNotFoundError):
        dispatcher.start()
    assert dispatcher._threads == []


def test_resolver_evaluates_intrinsics():
    template = {
        "Parameters": {"Env": {"Type": "String", "Default": "dev"}},
        "Conditions": {"IsProd": {"Fn::Equals": [{"Ref": "Env"}, "prod"]}},
        "Resources": {
            "Q": {"Type": "AWS::SQS::Queue"},
            "B": {"Type": "AWS::S3::Bucket"},
            "R": {"Type": "AWS::IAM::Role", "Properties": {"Path": "/svc/"}},
        },
    }
    resolver = Resolver(
        template,
        {"Q": "https://sqs.us-east-1.amazonaws.com/123456789012/q1", "B": "bkt", "R": "role1"},
        region="us-east-1",
        account_id="123456789012",
        stack_name="st",
    )
    value = {
        "a": {"Fn::Sub": "${AWS::StackName}-${B}-${Q.Arn}-${!Literal}"},
        "b": {"Fn::Join": ["/", [{"Fn::GetAtt": ["B", "Arn"]}, "x"]]},
        "c": {"Fn::If": ["IsProd", "big", {"Ref": "AWS::NoValue"}]},
        "d": [{"Ref": "Env"}, {"Ref": "AWS::NoValue"}, {"Fn::GetAtt": "R.Arn"}],
        "e": {"Fn::Sub": ["${X}.${AWS::Region}", {"X": {"Ref": "B"}}]},
    }
    assert resolver.resolve(value) == {
        "a": "st-bkt-arn:aws:sqs:us-east-1:123456789012:q1-${Literal}",
        "b": "arn:aws:s3:::bkt/x",
        "d": ["dev", "arn:aws:iam::123456789012:role/svc/role1"],
        "e": "bkt.us-east-1",
    }
    assert resolver.resolve({"Ref": "AWS::NoValue"}) is NO_VALUE


def test_a_second_cloud_in_the_same_process_is_refused(cloud: LocalCloud):
    with pytest.raises(RuntimeError, match="one LocalCloud"):
        LocalCloud().start()
    assert os.environ["AWS_ENDPOINT_URL"] == cloud.endpoint_url


def test_clients_outside_the_cloud_reach_it_through_the_exported_environment(cloud: LocalCloud):
    """Plain boto3 (as the handlers and the CLI use it) needs nothing but the environment."""
    names = boto3.client("s3").list_buckets()["Buckets"]
    assert cloud.outputs["MediaBucketName"] in {b["Name"] for b in names}


def test_the_dispatcher_honours_maximum_concurrency():
    """ScalingConfig.MaximumConcurrency of the template's mappings: one poller (one invocation at a time) per unit,
    within this machine's cap; one without a cap."""
    cfn = transform(load_template())
    caps = {
        lid: res["Properties"].get("ScalingConfig", {}).get("MaximumConcurrency")
        for lid, res in resources_of_type(cfn, "AWS::Lambda::EventSourceMapping").items()
    }
    assert caps["AnalyzeFunctionRawVideo"] == 5 and caps["IngestFunctionBatchItem"] == 5
    spec = FunctionSpec(logical_id="F", name="f", arn="arn:aws:lambda:us-east-1:1:function:f", handler="json.loads")
    capped = Mapping("M", spec, "http://127.0.0.1:1/q", "arn:aws:sqs:us-east-1:1:q", max_concurrency=5)
    uncapped = Mapping("N", spec, "http://127.0.0.1:1/q", "arn:aws:sqs:us-east-1:1:q")
    assert Dispatcher([], max_pollers=3).pollers(capped) == 3
    assert Dispatcher([], max_pollers=8).pollers(capped) == 5
    assert Dispatcher([], max_pollers=8).pollers(uncapped) == 1


# ------------------------------------------------------------------------------------------------ transactions
def test_a_cancelled_transaction_leaves_every_item_as_it_was_and_no_table_is_copied(cloud: LocalCloud, monkeypatch):
    """The local cloud's TransactWriteItems backs up the items it names, not whole tables (a deep copy of a
    10,000-video catalog per transaction took seconds); a cancelled one still changes nothing."""
    import copy

    from moto.dynamodb.models import Table

    copied = []
    real = copy.deepcopy
    monkeypatch.setattr(copy, "deepcopy", lambda v, memo=None: copied.append(v) or real(v, memo))
    ddb, table = cloud.client("dynamodb"), cloud.env["CLIPLAKE_CATALOG_TABLE"]
    key = {"pk": {"S": "TX#a"}, "sk": {"S": "A"}}
    ddb.put_item(TableName=table, Item={**key, "n": {"N": "1"}})
    cancel = [
        {"Update": {"TableName": table, "Key": key, "UpdateExpression": "SET n = :two",
                    "ExpressionAttributeValues": {":two": {"N": "2"}}}},
        {"Put": {"TableName": table, "Item": {"pk": {"S": "TX#new"}, "sk": {"S": "A"}}}},
        {"Delete": {"TableName": table, "Key": {"pk": {"S": "TX#a"}, "sk": {"S": "B"}}}},
        {"ConditionCheck": {"TableName": table, "Key": {"pk": {"S": "TX#none"}, "sk": {"S": "A"}},
                            "ConditionExpression": "attribute_exists(pk)"}},
    ]  # fmt: skip
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(TransactItems=cancel)
    assert ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]["n"] == {"N": "1"}
    assert "Item" not in ddb.get_item(TableName=table, Key={"pk": {"S": "TX#new"}, "sk": {"S": "A"}})
    ddb.transact_write_items(TransactItems=cancel[:2])  # without the failing check: applied
    assert ddb.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]["n"] == {"N": "2"}
    assert "Item" in ddb.get_item(TableName=table, Key={"pk": {"S": "TX#new"}, "sk": {"S": "A"}})
    assert not [v for v in copied if isinstance(v, Table)]
