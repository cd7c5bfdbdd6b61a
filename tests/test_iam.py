"""The static IAM check (cliplake_cli.iam_check): every call site of every function, and what AWS does for the
stack (queue polling, the state machine's tasks, S3 and SNS deliveries, the schedule, Rekognition's completions),
against the transformed template's policies, conditions included. 0 missing and 0 unused on infra/template.yaml."""

from __future__ import annotations

import copy

import pytest

from cliplake_cli.iam_calls import FUNCTIONS, OPERATIONS, Need
from cliplake_cli.iam_check import Principal, check, evaluate, principals
from cliplake_localcloud.template import load_template, transform


@pytest.fixture(scope="module")
def sam() -> dict:
    return load_template()


def _report(sam: dict):
    found, services = principals(transform(sam))
    return check(found, services)


def _statements(sam: dict, function: str) -> list[dict]:
    return sam["Resources"][function]["Properties"]["Policies"][0]["Statement"]


def test_the_template_grants_exactly_what_the_code_uses(sam):
    report = _report(sam)
    assert report.missing == [] and report.unused == [], "\n".join(report.lines())
    assert len(report.granted) >= 100  # every principal's needs were evaluated, not skipped
    granted = {(p, n.action) for p, n in report.granted}
    assert ("FinalizeFunctionRole", "dynamodb:PutItem") in granted  # powertools idempotency
    assert ("AnalyzeFunctionRole", "sqs:ChangeMessageVisibility") in granted  # back-off
    assert ("AnalyzeFunctionRole", "sqs:ReceiveMessage") in granted  # SAM's managed policy, for the mapping
    assert ("BatchStateMachineRole", "sqs:SendMessage") in granted  # the definition's tasks
    assert ("RawVideoQueuePolicy (s3.amazonaws.com)", "sqs:SendMessage") in granted
    assert ("RekognitionPublishRole trust", "sts:AssumeRole") in granted


def test_a_deleted_statement_is_reported_missing(sam):
    broken = copy.deepcopy(sam)
    statements = _statements(broken, "FinalizeFunction")
    statements[:] = [s for s in statements if s.get("Sid") != "Idempotency"]
    report = _report(broken)
    missing = {(p, n.action) for p, n in report.missing}
    assert missing == {("FinalizeFunctionRole", f"dynamodb:{a}") for a in ("GetItem", "PutItem", "UpdateItem",
                                                                            "DeleteItem")}  # fmt: skip


def test_a_grant_nothing_uses_is_reported_unused(sam):
    extra = copy.deepcopy(sam)
    _statements(extra, "IndexFunction").append(
        {"Sid": "Extra", "Effect": "Allow", "Action": "dynamodb:Query", "Resource": {"Fn::GetAtt": "CatalogTable.Arn"}}
    )
    report = _report(extra)
    assert [(g.principal, g.statement, g.action) for g in report.unused] == [
        ("IndexFunctionRole", "Extra", "dynamodb:Query")
    ]


def test_managed_policies_grant_only_what_aws_documents(sam):
    """SAM's AWSLambdaSQSQueueExecutionRole does not cover a function's own back-off (ChangeMessageVisibility)."""
    broken = copy.deepcopy(sam)
    statements = _statements(broken, "AnalyzeFunction")
    statements[:] = [s for s in statements if s.get("Sid") != "BackOff"]
    assert [(p, n.action) for p, n in _report(broken).missing] == [
        ("AnalyzeFunctionRole", "sqs:ChangeMessageVisibility")
    ]


def test_conditions_are_evaluated_s3_prefix_and_passed_to_service():
    statements = [
        {
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::b",
            "Condition": {"StringLike": {"s3:prefix": ["media-raw/*"]}},
        },
        {
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": "arn:aws:iam::1:role/r",
            "Condition": {"StringEquals": {"iam:PassedToService": "rekognition.amazonaws.com"}},
        },
    ]
    assert evaluate(statements, Need("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "media-raw/x/y.mp4"}))
    assert not evaluate(statements, Need("s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": "media-processed/x"}))
    assert not evaluate(statements, Need("s3:ListBucket", "arn:aws:s3:::b"))  # a key the request lacks fails
    passed = {"iam:PassedToService": "rekognition.amazonaws.com"}
    assert evaluate(statements, Need("iam:PassRole", "arn:aws:iam::1:role/r", passed))
    assert not evaluate(statements, Need("iam:PassRole", "arn:aws:iam::1:role/r", {"iam:PassedToService": "x"}))


def test_an_explicit_deny_wins():
    allow = {"Effect": "Allow", "Action": "sns:*", "Resource": "*"}
    deny = {"Effect": "Deny", "Action": "sns:Publish", "Resource": "arn:aws:sns:us-east-1:1:t"}
    need = Need("sns:Publish", "arn:aws:sns:us-east-1:1:t")
    assert evaluate([allow], need) and not evaluate([allow, deny], need)
    report = check([Principal("p", [allow, deny], [], [need])])
    assert [n for _, n in report.missing] == [need]


def test_queue_policies_must_name_the_sender(sam):
    """S3's notifications are accepted only from the media bucket (aws:SourceArn), SNS's only from the topic."""
    broken = copy.deepcopy(sam)
    policy = broken["Resources"]["CompletionQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    policy["Condition"]["ArnEquals"]["aws:SourceArn"] = {"Ref": "NotificationsTopic"}
    assert [(p, n.action) for p, n in _report(broken).missing] == [
        ("CompletionQueuePolicy (sns.amazonaws.com)", "sqs:SendMessage")
    ]


def test_every_listed_operation_exists_and_every_function_is_listed(sam):
    cfn = transform(sam)
    functions = {lid for lid, r in cfn["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    assert set(FUNCTIONS) == functions
    assert {op for ops in FUNCTIONS.values() for op in ops} <= set(OPERATIONS)
    assert set(OPERATIONS) <= {op for ops in FUNCTIONS.values() for op in ops}, "an operation nobody performs"
