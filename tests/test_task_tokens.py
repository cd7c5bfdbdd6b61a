"""Task tokens the batch no longer waits for (bogus, timed out, already answered) are answered by the local Step
Functions as by AWS (InvalidToken, TaskTimedOut), and the stages' adapter treats them as settled: the batch has
moved on, the video's own outcome stays in the catalog."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from batchkit import states_role
from botocore.exceptions import ClientError

from cliplake.adapters.stepfunctions import TaskTokens

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def waiting(cloud):
    """A state machine whose task waits for a token sent to a queue of its own, with a 2 s timeout."""
    tag = uuid.uuid4().hex[:8]
    sqs, sfn = cloud.client("sqs"), cloud.client("stepfunctions")
    url = sqs.create_queue(QueueName=f"tokens-{tag}")["QueueUrl"]
    role = states_role(cloud, f"tokens-{tag}", [url])
    definition = {
        "StartAt": "Wait",
        "States": {
            "Wait": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {"QueueUrl": url, "MessageBody": {"token.$": "$$.Task.Token"}},
                "TimeoutSeconds": 2,
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(name=f"tokens-{tag}", definition=json.dumps(definition), roleArn=role)
    return {"machine": machine["stateMachineArn"], "url": url}


def _token(cloud, waiting) -> tuple[str, str]:
    sfn, sqs = cloud.client("stepfunctions"), cloud.client("sqs")
    execution = sfn.start_execution(stateMachineArn=waiting["machine"], name=uuid.uuid4().hex)["executionArn"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for m in sqs.receive_message(QueueUrl=waiting["url"], WaitTimeSeconds=1).get("Messages", []):
            sqs.delete_message(QueueUrl=waiting["url"], ReceiptHandle=m["ReceiptHandle"])
            return execution, json.loads(m["Body"])["token"]
    raise TimeoutError("the task's message never came")


def _status(cloud, execution: str, timeout_s: float = 30) -> str:
    sfn = cloud.client("stepfunctions")
    deadline = time.monotonic() + timeout_s
    while (status := sfn.describe_execution(executionArn=execution)["status"]) == "RUNNING":
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return status


def _code(call, **kwargs) -> str:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    return info.value.response["Error"]["Code"]


def test_a_bogus_token_is_invalid(cloud):
    sfn = cloud.client("stepfunctions")
    assert _code(sfn.send_task_success, taskToken="not-a-token", output="{}") == "InvalidToken"
    assert _code(sfn.send_task_failure, taskToken="not-a-token", error="E") == "InvalidToken"
    assert TaskTokens(sfn).succeed("not-a-token", {}) is False  # settled: logged, not raised


def test_a_token_answered_once_is_settled(cloud, waiting):
    sfn = cloud.client("stepfunctions")
    execution, token = _token(cloud, waiting)
    tokens = TaskTokens(sfn)
    assert tokens.succeed(token, {"ok": True}) is True
    assert _status(cloud, execution) == "SUCCEEDED"
    code = _code(sfn.send_task_success, taskToken=token, output="{}")
    assert code in {"TaskTimedOut", "InvalidToken"}, code  # AWS: the task "has already been closed"
    assert tokens.fail(token, "VideoFailed", "late") is False


def test_a_timed_out_token_is_refused_and_settled(cloud, waiting):
    sfn = cloud.client("stepfunctions")
    execution, token = _token(cloud, waiting)
    assert _status(cloud, execution) == "FAILED"  # States.Timeout after 2 s
    assert _code(sfn.send_task_success, taskToken=token, output="{}") == "TaskTimedOut"
    assert TaskTokens(sfn).succeed(token, {}) is False
