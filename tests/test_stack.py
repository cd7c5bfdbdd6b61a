"""The operator side's one view of a deployment (`cliplake_cli.stack`), shared by the CLI and the dashboard: which
resources, how a batch is started and named, the current campaign. Against botocore's Stubber (no cloud)."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import ANY, Stubber

from cliplake_cli import stack
from cliplake_cli.stack import StackConfig, StackUnreadable

OUTPUTS = {
    "MediaBucketName": "media-bkt",
    "CatalogTableName": "catalog-tbl",
    "BatchStateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:batch",
    "NotificationsTopicArn": "arn:aws:sns:us-east-1:123456789012:notify",
    "CampaignsParameterPath": "/other/campaigns",
}


@pytest.fixture(autouse=True)
def no_cliplake_env(monkeypatch):
    for key in [k for k in os.environ if k.startswith("CLIPLAKE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


class OneClient:
    """A session whose `client()` is the stubbed one."""

    def __init__(self, client):
        self._client = client

    def client(self, *_, **__):
        return self._client


def stubbed(service: str):
    client = boto3.client(service, region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    return client, Stubber(client)


def describe(stubber: Stubber, outputs: dict[str, str]) -> None:
    stubber.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "s",
                    "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
                    "StackStatus": "CREATE_COMPLETE",
                    "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()],
                }
            ]
        },
        {"StackName": "s"},
    )


def test_outputs_fill_what_the_variables_leave_empty(monkeypatch):
    monkeypatch.setenv("CLIPLAKE_BUCKET", "env-bkt")
    cfn, stub = stubbed("cloudformation")
    describe(stub, OUTPUTS)
    with stub:
        config = stack.load_config("s", OneClient(cfn))
    assert config == StackConfig(
        bucket="env-bkt",  # the variable wins
        table="catalog-tbl",
        state_machine_arn=OUTPUTS["BatchStateMachineArn"],
        topic_arn=OUTPUTS["NotificationsTopicArn"],
        campaigns_path="/other/campaigns",
        stack="s",
        endpoint_url="http://127.0.0.1:9",
    )
    assert config.current_campaign_parameter == "/other/current-campaign"
    stub.assert_no_pending_responses()


def test_variables_naming_everything_read_no_stack(monkeypatch):
    for key, value in (("BUCKET", "b"), ("CATALOG_TABLE", "t"), ("BATCH_STATE_MACHINE_ARN", "arn:sm")):
        monkeypatch.setenv(f"CLIPLAKE_{key}", value)
    cfn, stub = stubbed("cloudformation")
    with stub:  # no response queued: a describe_stacks call would fail the test
        config = stack.load_config("s", OneClient(cfn))
    assert (config.bucket, config.table, config.state_machine_arn) == ("b", "t", "arn:sm")
    assert config.current_campaign_parameter == "/cliplake/current-campaign"
    describe(stub, OUTPUTS)  # the dashboard reads it anyway (it learns at once whether the cloud is reachable)
    with stub:
        config = stack.load_config("s", OneClient(cfn), read_stack=True)
    assert (config.bucket, config.state_machine_arn, config.campaigns_path) == ("b", "arn:sm", "/other/campaigns")
    stub.assert_no_pending_responses()


def test_an_unreadable_stack_is_fine_with_bucket_and_table_and_an_error_without(monkeypatch):
    cfn, stub = stubbed("cloudformation")
    stub.add_client_error("describe_stacks", "ValidationError", "Stack with id s does not exist")
    with stub, pytest.raises(StackUnreadable, match="does not exist"):
        stack.load_config("s", OneClient(cfn))

    monkeypatch.setenv("CLIPLAKE_BUCKET", "b")
    monkeypatch.setenv("CLIPLAKE_CATALOG_TABLE", "t")
    stub.add_client_error("describe_stacks", "ValidationError", "Stack with id s does not exist")
    with stub:
        config = stack.load_config("s", OneClient(cfn))
    assert (config.bucket, config.table, config.batches_deployed) == ("b", "t", False)
    with pytest.raises(stack.BatchesNotDeployed, match="not deployed yet"):
        stack.start_batch(config, "travel", 2, sfn=object())


def test_a_stack_without_the_lake_outputs_is_unreadable():
    cfn, stub = stubbed("cloudformation")
    describe(stub, {"BatchStateMachineArn": "arn:sm"})
    with stub, pytest.raises(StackUnreadable, match="no MediaBucketName/CatalogTableName"):
        stack.load_config("s", OneClient(cfn))


@pytest.mark.parametrize(
    ("trigger", "prefix"), [("manual", "run"), ("dashboard", "dash"), ("schedule", "sched"), ("smoke", "smoke")]
)
def test_start_batch_names_the_execution_and_sends_the_documented_input(trigger, prefix):
    sfn, stub = stubbed("stepfunctions")
    config = StackConfig("b", "t", state_machine_arn=OUTPUTS["BatchStateMachineArn"])
    stub.add_response(
        "start_execution",
        {"executionArn": "arn:exec", "startDate": datetime(2026, 1, 1, tzinfo=UTC)},
        {"stateMachineArn": OUTPUTS["BatchStateMachineArn"], "name": ANY, "input": ANY},
    )
    calls = []
    stub.client.meta.events.register(
        "provide-client-params.states.StartExecution", lambda params, **_: calls.append(params)
    )
    with stub:
        started = stack.start_batch(config, "night walk/2", 3, 2, trigger, sfn)
    assert started.arn == "arn:exec"
    assert re.fullmatch(rf"{prefix}-night-walk-2-\d{{14}}-[0-9a-f]{{4}}", started.name), started.name
    assert calls[0]["name"] == started.name
    assert json.loads(calls[0]["input"]) == {
        "campaign": "night walk/2", "batch_size": 3, "trigger": trigger, "max_concurrency": 2,
    }  # fmt: skip


def test_execution_names_stay_within_step_functions_limits():
    name = stack.execution_name("run", "x" * 200, now=datetime(2026, 12, 1, 12, 0, tzinfo=UTC))
    assert len(name) <= 80
    assert re.fullmatch(r"run-x{40}-20261201120000-[0-9a-f]{4}", name)
    assert re.fullmatch(r"run-\d{14}-[0-9a-f]{4}", stack.execution_name("run"))  # the current campaign


def test_current_campaign_reads_and_writes_the_parameter_next_to_the_campaigns_path():
    ssm, stub = stubbed("ssm")
    config = StackConfig("b", "t", campaigns_path="/other/campaigns")
    current = "/other/current-campaign"
    stub.add_response("get_parameter", {"Parameter": {"Name": current, "Value": "nature\n"}}, {"Name": current})
    stub.add_response(
        "get_parameters_by_path",
        {"Parameters": [{"Name": "/other/campaigns/dashtest"}]},
        {"Path": "/other/campaigns", "Recursive": False},
    )
    stub.add_response(
        "put_parameter", {"Version": 2}, {"Name": current, "Value": "dashtest", "Type": "String", "Overwrite": True}
    )
    with stub:
        assert stack.current_campaign(ssm, config) == "nature"
        stack.make_current(ssm, config, "dashtest")
    stub.assert_no_pending_responses()
