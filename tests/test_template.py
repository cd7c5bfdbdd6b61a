"""infra/template.yaml: cfn-lint on the SAM source and on its CloudFormation transform, plus the structural
facts the pipeline relies on (DLQs, partial batch responses, least-privilege policies)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint
from samtranslator.model.exceptions import InvalidDocumentException

from cliplake_ops.localcloud.template import TEMPLATE_PATH, load_template, resources_of_type, transform

ROOT = Path(__file__).resolve().parents[1]
# Informational checks included (e.g. I3011 DeletionPolicy on stateful resources). Experimental rules are not:
# I4010 asks for AI-oriented `Metadata.com.aws.cloudformation.Context` blocks, a convention, not a defect.
LINT_CONFIG = ManualArgs(regions=["us-east-1", "eu-west-1"], include_checks=["I"])
IGNORED_RULES: set[str] = set()  # none needed today; add an id here only with a comment saying why
# Rekognition Video's Start*/Get* actions support no resource-level permissions: "*" is the only option.
REKOGNITION_VIDEO_ACTIONS = {
    f"rekognition:{verb}{api}"
    for verb in ("Start", "Get")
    for api in ("LabelDetection", "ContentModeration", "SegmentDetection")
}
SAM_MANAGED_POLICIES = {"AWSLambdaBasicExecutionRole", "AWSLambdaSQSQueueExecutionRole"}
OUTPUTS = {
    "MediaBucketName",
    "CatalogTableName",
    "IdempotencyTableName",
    "RekognitionTopicArn",
    "RekognitionRoleArn",
    "RawVideoQueueUrl",
    "CompletionQueueUrl",
    "SummaryQueueUrl",
    "RawVideoDLQUrl",
    "CompletionDLQUrl",
    "SummaryDLQUrl",
}


@pytest.fixture(scope="module")
def sam() -> dict:
    return load_template()


@pytest.fixture(scope="module")
def cfn(sam: dict) -> dict:
    return transform(sam)


def _findings(text: str) -> list[str]:
    return [
        f"{m.rule.id} line {m.linenumber}: {m.message}"
        for m in lint(text, config=LINT_CONFIG)
        if m.rule.id not in IGNORED_RULES
    ]


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else [value]


def _ref_id(value: object) -> str:
    """Logical id named by `{"Ref": id}` or `{"Fn::GetAtt": [id, attr]}`."""
    assert isinstance(value, dict), value
    if "Ref" in value:
        return value["Ref"]
    att = value["Fn::GetAtt"]
    return att.split(".")[0] if isinstance(att, str) else att[0]


# ------------------------------------------------------------------------------------------------- cfn-lint
def test_cfn_lint_sam_template_is_clean():
    assert _findings(TEMPLATE_PATH.read_text(encoding="utf-8")) == []


def test_cfn_lint_transformed_template_is_clean(cfn):
    assert _findings(json.dumps(cfn)) == []


def test_transform_rejects_what_cfn_lint_misses_in_sam(sam):
    """Why the transform is linted too: cfn-lint alone accepts an unknown SAM event type."""
    broken = json.loads(json.dumps(sam))
    broken["Resources"]["AnalyzeFunction"]["Properties"]["Events"]["RawVideo"]["Type"] = "SQSS"
    with pytest.raises(InvalidDocumentException):
        transform(broken)


# --------------------------------------------------------------------------------------------- structure
def test_outputs_are_the_documented_ones(sam):
    assert set(sam["Outputs"]) == OUTPUTS


def test_every_queue_has_a_dead_letter_queue(cfn):
    queues = resources_of_type(cfn, "AWS::SQS::Queue")
    dlqs = {}
    for lid, res in queues.items():
        redrive = res["Properties"].get("RedrivePolicy")
        if redrive:
            dlqs[lid] = _ref_id(redrive["deadLetterTargetArn"])
    assert set(dlqs.values()) <= set(queues)
    assert set(queues) == set(dlqs) | set(dlqs.values()), "a queue with neither a DLQ nor being one"
    for dlq in dlqs.values():
        assert queues[dlq]["Properties"]["MessageRetentionPeriod"] == 1209600
        assert "RedrivePolicy" not in queues[dlq]["Properties"]
    assert {lid: queues[lid]["Properties"]["RedrivePolicy"]["maxReceiveCount"] for lid in dlqs} == {
        "RawVideoQueue": 15,
        "CompletionQueue": 5,
        "SummaryQueue": 5,
    }
    assert all(q["Properties"]["SqsManagedSseEnabled"] is True for q in queues.values())


def test_each_function_is_fed_by_one_queue_with_partial_batch_responses(cfn):
    functions = resources_of_type(cfn, "AWS::Lambda::Function")
    mappings = resources_of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
    queues = resources_of_type(cfn, "AWS::SQS::Queue")
    fed = {}
    for esm in mappings:
        props = esm["Properties"]
        fn, queue = _ref_id(props["FunctionName"]), _ref_id(props["EventSourceArn"])
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"], fn
        # AWS: the queue's visibility timeout should be >= 6 x the function's timeout
        assert queues[queue]["Properties"]["VisibilityTimeout"] >= 6 * functions[fn]["Properties"]["Timeout"]
        fed[fn] = (queue, props["BatchSize"])
    assert fed == {
        "AnalyzeFunction": ("RawVideoQueue", 1),
        "FinalizeFunction": ("CompletionQueue", 10),
        "IndexFunction": ("SummaryQueue", 10),
    }


def test_functions_share_the_environment_from_globals(cfn):
    for lid, fn in resources_of_type(cfn, "AWS::Lambda::Function").items():
        props = fn["Properties"]
        variables = props["Environment"]["Variables"]
        assert props["Runtime"] == "python3.12", lid
        assert props["Handler"].startswith("cliplake.handlers."), lid
        assert {
            "CLIPLAKE_BUCKET",
            "CLIPLAKE_CATALOG_TABLE",
            "CLIPLAKE_IDEMPOTENCY_TABLE",
            "CLIPLAKE_REKOGNITION_TOPIC_ARN",
            "CLIPLAKE_REKOGNITION_ROLE_ARN",
            "CLIPLAKE_MAX_JOBS_IN_FLIGHT",
            "CLIPLAKE_CONTACT_EMAIL",
        } <= set(variables), lid
        assert variables["POWERTOOLS_SERVICE_NAME"] == "cliplake"


def test_function_policies_are_least_privilege(cfn):
    """No Allow on `*` resources except Rekognition Video's Start*/Get*; no wildcard actions; only the
    managed policies SAM adds itself (logs, SQS polling)."""
    functions = resources_of_type(cfn, "AWS::Lambda::Function")
    for lid, fn in functions.items():
        role = cfn["Resources"][_ref_id(fn["Properties"]["Role"])]["Properties"]
        managed = {arn.rsplit("/", 1)[-1] for arn in role.get("ManagedPolicyArns", [])}
        assert managed <= SAM_MANAGED_POLICIES, lid
        assert len(role["Policies"]) == 1, f"{lid}: one policy per function"
        for statement in _as_list(role["Policies"][0]["PolicyDocument"]["Statement"]):
            actions = set(_as_list(statement["Action"]))
            assert not any(a == "*" or a.endswith(":*") for a in actions), (lid, statement)
            if "*" in _as_list(statement["Resource"]):
                assert actions <= REKOGNITION_VIDEO_ACTIONS, (lid, statement)


def test_analyze_may_pass_only_the_rekognition_role(cfn):
    role = cfn["Resources"]["AnalyzeFunctionRole"]["Properties"]
    statements = _as_list(role["Policies"][0]["PolicyDocument"]["Statement"])
    passes = [s for s in statements if "iam:PassRole" in _as_list(s["Action"])]
    assert [_ref_id(s["Resource"]) for s in passes] == ["RekognitionPublishRole"]


def test_bucket_notifications_route_raw_videos_and_summaries(sam):
    bucket = sam["Resources"]["MediaBucket"]
    routes = {
        _ref_id(c["Queue"]): {r["Name"]: r["Value"] for r in c["Filter"]["S3Key"]["Rules"]}
        for c in bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    }
    assert routes == {
        "RawVideoQueue": {"prefix": "media-raw/"},
        "SummaryQueue": {"prefix": "media-processed/", "suffix": "_labels.json"},
    }
    assert set(bucket["DependsOn"]) == {"RawVideoQueuePolicy", "SummaryQueuePolicy"}


# ------------------------------------------------------------------------------------------ package size
def test_lambda_package_fits(sam):
    """`functions/` plus its requirements, built for the Lambda platform, stay under 250 MB unzipped."""
    runtime = sam["Globals"]["Function"]["Runtime"].removeprefix("python")
    with tempfile.TemporaryDirectory() as target:
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        pip += ["--platform", "manylinux2014_x86_64", "--implementation", "cp", "--python-version", runtime]
        pip += ["--only-binary=:all:", "--target", target, "-r", str(ROOT / "functions" / "requirements.txt")]
        try:
            done = subprocess.run(pip, capture_output=True, text=True, timeout=300, check=False)
        except subprocess.TimeoutExpired:
            pytest.skip("pip timed out")
        if done.returncode != 0:
            pytest.skip(f"pip cannot reach the registry: {done.stderr.strip()[-300:]}")
        files = [*Path(target).rglob("*"), *(ROOT / "functions" / "cliplake").rglob("*")]
        size = sum(p.stat().st_size for p in files if p.is_file())
    assert size < 250 * 1024 * 1024, f"{size / 2**20:.0f} MB"
