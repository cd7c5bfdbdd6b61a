"""infra/template.yaml: cfn-lint on the SAM source and on its CloudFormation transform, plus the structural
facts the pipeline relies on (DLQs, partial batch responses, least-privilege policies)."""

from __future__ import annotations

import gc
import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint
from samtranslator.model.exceptions import InvalidDocumentException

from cliplake_localcloud.template import TEMPLATE_PATH, load_template, resources_of_type, transform

ROOT = Path(__file__).resolve().parents[1]
# Informational checks included (e.g. I3011 DeletionPolicy on stateful resources). Experimental rules are not:
# I4010 asks for AI-oriented `Metadata.com.aws.cloudformation.Context` blocks, a convention, not a defect.
LINT_CONFIG = ManualArgs(regions=["us-east-1", "eu-west-1"], include_checks=["I"])
IGNORED_RULES: set[str] = set()  # none needed today; add an id here only with a comment saying why
# Rekognition Video's Start*/Get* actions support no resource-level permissions: "*" is the only option.
REKOGNITION_VIDEO_ACTIONS = {
    f"rekognition:{verb}{api}"
    for verb in ("Start", "Get")
    for api in ("LabelDetection", "ContentModeration", "SegmentDetection", "TextDetection")
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
    "SegmentQueueUrl",
    "SegmentDLQUrl",
    "BatchStateMachineArn",
    "NotificationsTopicArn",
    "BatchQueueUrl",
    "IngestQueueUrl",
    "BatchDLQUrl",
    "IngestDLQUrl",
    "CampaignsParameterPath",
    "LakeDatabase",
    "LakeWorkGroupName",
    "LakeQueryPolicyArn",
    "OperationsDashboardName",
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


def test_transforms_leave_no_warning_behind(sam, caplog):
    """aws-sam-translator keeps each transform's usage counts, never published, and warns about them when the next
    transform replaces them: the local cloud and the tests transform the template many times."""
    with caplog.at_level(logging.WARNING):
        transform(sam)
        transform(sam)
        gc.collect()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("samtranslator")] == []


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
        "SegmentQueue": 15,
        "CompletionQueue": 5,
        "SummaryQueue": 5,
        "BatchQueue": 3,
        "IngestQueue": 3,
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
        "BatchFunction": ("BatchQueue", 1),
        "IngestFunction": ("IngestQueue", 1),
        "SegmentFunction": ("SegmentQueue", 1),
    }


def test_each_function_gets_exactly_the_variables_its_settings_read(sam, cfn):
    """The handler module names its settings class (`SETTINGS`): the function's environment gives every variable
    the class requires and none it does not read, so the two cannot drift. The Globals keep only what every
    function shares (powertools)."""
    import importlib

    from cliplake.settings import PREFIX, variables

    assert not [k for k in sam["Globals"]["Function"]["Environment"]["Variables"] if k.startswith(PREFIX)]
    functions = resources_of_type(cfn, "AWS::Lambda::Function")
    assert len(functions) >= 6  # (the loop below must not pass on an empty read)
    for lid, fn in functions.items():
        props = fn["Properties"]
        variables_of_fn = set(props["Environment"]["Variables"])
        assert props["Runtime"] == "python3.12", lid
        assert props["Handler"].startswith("cliplake.handlers."), lid
        settings = importlib.import_module(props["Handler"].rsplit(".", 1)[0]).SETTINGS
        reads, required = variables(settings)
        given = {k for k in variables_of_fn if k.startswith(PREFIX)}
        assert required <= given, f"{lid} ({settings.__name__}) lacks {sorted(required - given)}"
        assert given <= reads, f"{lid} ({settings.__name__}) does not read {sorted(given - reads)}"
        assert props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "cliplake"


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


# ------------------------------------------------------------------------------------------------- batches
def _statements(cfn: dict, role_id: str) -> list[dict]:
    role = cfn["Resources"][role_id]["Properties"]
    return [s for p in role["Policies"] for s in _as_list(p["PolicyDocument"]["Statement"])]


def _states(definition: dict) -> dict:
    """Every state of an ASL definition, nested Map/Parallel states included."""
    out = {}
    for name, state in definition["States"].items():
        out[name] = state
        for inner in [state.get("ItemProcessor") or state.get("Iterator"), *state.get("Branches", [])]:
            if inner:
                out.update(_states(inner))
    return out


def test_batch_state_machine_waits_on_task_tokens_without_polling(sam, cfn):
    machine = sam["Resources"]["BatchStateMachine"]["Properties"]
    assert machine["Type"] == "STANDARD"  # Express workflows cannot wait for task tokens
    assert machine["DefinitionUri"] == "statemachine/batch.asl.json"
    definition = json.loads((TEMPLATE_PATH.parent / machine["DefinitionUri"]).read_text())
    states = _states(definition)
    assert not [n for n, s in states.items() if s["Type"] == "Wait"]
    tasks = {n: s for n, s in states.items() if s["Type"] == "Task"}
    assert not [n for n, s in tasks.items() if "lambda" in s["Resource"]]
    waits = {n for n, s in tasks.items() if s["Resource"] == "arn:aws:states:::sqs:sendMessage.waitForTaskToken"}
    assert waits == {"Plan", "Video", "Summarize"}
    for name in waits:
        body = tasks[name]["Parameters"]["MessageBody"]
        # a video runs in a child execution of the Distributed Map: its batch is the parent's name, from the plan
        assert body["token.$"] == "$$.Task.Token"
        assert body["batch_id.$"] == ("$.batch_id" if name == "Video" else "$$.Execution.Name")
        assert tasks[name]["TimeoutSeconds"] > 0
    assert tasks["Notify"]["Resource"] == "arn:aws:states:::sns:publish"
    items = definition["States"]["Items"]
    assert items["Type"] == "Map" and items["MaxConcurrencyPath"] == "$.plan.max_concurrency"
    assert items["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
    assert items["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"  # the plan's items, from the lake
    assert items["ItemSelector"]["batch_id.$"] == "$.plan.batch_id"
    [catch] = tasks["Video"]["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"] and states[catch["Next"]]["Type"] == "Pass"
    text = json.dumps(definition)
    assert set(machine["DefinitionSubstitutions"]) == {p.split("}")[0] for p in text.split("${")[1:]}, (
        "every placeholder substituted, every substitution used"
    )
    statements = _statements(cfn, "BatchStateMachineRole")
    assert {a for s in statements for a in _as_list(s["Action"])} == {
        "sqs:SendMessage", "sns:Publish", "s3:GetObject",
        "states:StartExecution", "states:DescribeExecution", "states:StopExecution",
    }  # fmt: skip


def test_weekly_schedule_starts_the_batch_with_a_least_privilege_role(sam):
    schedule = sam["Resources"]["WeeklyBatchSchedule"]["Properties"]
    assert _ref_id(schedule["ScheduleExpression"]) == "ScheduleExpression"
    assert sam["Parameters"]["ScheduleExpression"]["Default"] == "cron(0 6 ? * MON *)"
    assert _ref_id(schedule["Target"]["Arn"]) == "BatchStateMachine"
    assert json.loads(schedule["Target"]["Input"]) == {"campaign": "", "batch_size": 2, "trigger": "schedule"}
    role = sam["Resources"][_ref_id(schedule["Target"]["RoleArn"])]["Properties"]
    [statement] = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    assert statement["Action"] == "states:StartExecution" and _ref_id(statement["Resource"]) == "BatchStateMachine"


def test_every_dead_letter_queue_alarms_to_the_notifications_topic(cfn):
    queues = resources_of_type(cfn, "AWS::SQS::Queue")
    dlqs = {_ref_id(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]) for q in queues.values()
            if "RedrivePolicy" in q["Properties"]}  # fmt: skip
    alarmed = {}
    for alarm in resources_of_type(cfn, "AWS::CloudWatch::Alarm").values():
        props = alarm["Properties"]
        if "Metrics" in props:
            continue  # the metric-math alarms on batches and job slots (tests/test_template_lake.py)
        assert props["MetricName"] == "ApproximateNumberOfMessagesVisible" and props["Threshold"] == 0
        assert props["ComparisonOperator"] == "GreaterThanThreshold"
        assert [_ref_id(a) for a in props["AlarmActions"]] == ["NotificationsTopic"]
        alarmed[_ref_id(props["Dimensions"][0]["Value"])] = alarm
    assert set(alarmed) == dlqs


def test_email_subscription_only_with_an_address(sam):
    sub = sam["Resources"]["NotificationEmailSubscription"]
    assert sub["Condition"] == "HasNotificationEmail" and sub["Properties"]["Protocol"] == "email"
    assert sam["Parameters"]["NotificationEmail"]["Default"] == ""


def test_task_token_permissions_are_scoped_to_the_state_machine(cfn):
    """Each function may answer the state machine's tasks the way it does: only index succeeds a video's item, the
    stages that give up on a video fail it, the batch function answers its plan and summary tasks both ways; the
    stages a video advances through send heartbeats."""
    beat = "states:SendTaskHeartbeat"
    expected = {
        "AnalyzeFunction": {"states:SendTaskFailure", beat},
        "FinalizeFunction": {"states:SendTaskFailure", beat},
        "SegmentFunction": {"states:SendTaskFailure", beat},
        "IndexFunction": {"states:SendTaskSuccess"},
        "BatchFunction": {"states:SendTaskSuccess", "states:SendTaskFailure"},
        "IngestFunction": {"states:SendTaskFailure"},
    }
    for fn, actions in expected.items():
        statements = [s for s in _statements(cfn, f"{fn}Role") if any(a.startswith("states:") for a in
                                                                          _as_list(s["Action"]))]  # fmt: skip
        assert len(statements) == 1, fn
        assert set(_as_list(statements[0]["Action"])) == actions, fn
        assert _ref_id(statements[0]["Resource"]) == "BatchStateMachine", fn


def test_batch_and_ingest_reach_only_their_resources(cfn):
    batch = _statements(cfn, "BatchFunctionRole")
    ssm = [s for s in batch if any(a.startswith("ssm:") for a in _as_list(s["Action"]))]
    for s in ssm:
        for resource in _as_list(s["Resource"]):
            sub = resource["Fn::Sub"]
            assert ":parameter${ParameterPrefix}/campaigns" in sub or sub.endswith("/current-campaign"), sub
    put = [s for s in ssm if "ssm:PutParameter" in _as_list(s["Action"])]
    assert [s["Resource"]["Fn::Sub"].rsplit("/", 1)[-1] for s in put] == ["current-campaign"]
    [secret] = [s for s in batch if "secretsmanager:GetSecretValue" in _as_list(s["Action"])]
    assert _ref_id(secret["Resource"]) == "PixabaySecret"
    s3 = [s for s in batch if any(a.startswith("s3:") for a in _as_list(s["Action"]))]  # the plan's items only
    assert [(s["Action"], s["Resource"]["Fn::Sub"]) for s in s3] == [("s3:PutObject", "${MediaBucket.Arn}/batches/*")]
    ingest = _statements(cfn, "IngestFunctionRole")
    writes = [s for s in ingest if "s3:PutObject" in _as_list(s["Action"])]
    assert [s["Resource"]["Fn::Sub"] for s in writes] == [
        "${MediaBucket.Arn}/media-raw/*",
        "${MediaBucket.Arn}/media-processed/tables/*",  # the row of a video whose download failed
    ]


def test_campaigns_are_seeded_in_parameter_store(sam):
    from cliplake.sources.planning import DEFAULT_CAMPAIGNS

    params = resources_of_type(sam, "AWS::SSM::Parameter")
    names = {p["Properties"]["Name"]["Fn::Sub"].rsplit("/", 1)[-1]: p["Properties"] for p in params.values()}
    assert set(names) == {*DEFAULT_CAMPAIGNS, "current-campaign"}
    for name, queries in DEFAULT_CAMPAIGNS.items():
        assert json.loads(names[name]["Value"]) == {"queries": queries}
    assert names["current-campaign"]["Value"] in DEFAULT_CAMPAIGNS


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


# --------------------------------------------------------------------------------------------------- checkov
CHECKOV_PYTHON = ROOT / ".cache" / "checkov" / "bin" / "python"
CHECKOV_RUN = """
import json, sys
from checkov.cloudformation.runner import Runner
from checkov.runner_filter import RunnerFilter
report = Runner().run(root_folder=None, files=sys.argv[1:], runner_filter=RunnerFilter(framework=["cloudformation"]))
print(json.dumps({"failed": [f"{c.check_id} {c.resource} ({c.file_path})" for c in report.failed_checks],
                  "skipped": len(report.skipped_checks), "passed": len(report.passed_checks)}))
"""


def test_checkov_finds_nothing_unexplained_in_the_template_and_its_transform(cfn, tmp_path):
    """Every finding of checkov is fixed or suppressed in the template with a one-line reason (Metadata.checkov)."""
    if not CHECKOV_PYTHON.exists():
        pytest.skip("checkov is not installed in .cache/checkov (make setup)")
    transformed = tmp_path / "transformed.json"
    transformed.write_text(json.dumps(cfn), encoding="utf-8")
    done = subprocess.run([str(CHECKOV_PYTHON), "-c", CHECKOV_RUN, str(TEMPLATE_PATH), str(transformed)],
                          capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["failed"] == [], "\n".join(report["failed"])
    assert report["passed"] > 100  # both files were scanned
    sam = load_template()
    for lid, res in sam["Resources"].items():
        for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert skip.get("comment", "").strip(), f"{lid}: {skip['id']} suppressed without a reason"


def test_the_segment_function_has_its_own_size_timeout_and_concurrency_cap(sam, cfn):
    props = sam["Resources"]["SegmentFunction"]["Properties"]
    assert (props["MemorySize"], props["Timeout"], props["EphemeralStorage"]["Size"]) == (3008, 900, 10240)
    [esm] = [m for m in resources_of_type(cfn, "AWS::Lambda::EventSourceMapping").values()
             if _ref_id(m["Properties"]["FunctionName"]) == "SegmentFunction"]  # fmt: skip
    assert _ref_id(esm["Properties"]["ScalingConfig"]["MaximumConcurrency"]) == "SegmentConcurrency"
    params = sam["Parameters"]
    assert (params["SegmentConcurrency"]["Default"], params["SegmentLengthSeconds"]["Default"]) == (100, 60)
    assert (params["MaxSegments"]["Default"], params["SinglePassMaxSeconds"]["Default"]) == (100, 600)
    for lid in ("AnalyzeFunction", "SegmentFunction"):
        env = sam["Resources"][lid]["Properties"]["Environment"]["Variables"]
        assert {"CLIPLAKE_SEGMENT_QUEUE_URL", "CLIPLAKE_SEGMENT_LENGTH_S", "CLIPLAKE_MAX_SEGMENTS"} <= set(env), lid
    # It may delete parts only, never an original, a rendition or a summary.
    deletes = [s for s in _statements(cfn, "SegmentFunctionRole") if "s3:DeleteObject" in _as_list(s["Action"])]
    assert [str(s["Resource"]) for s in deletes] == [
        str({"Fn::Sub": "${MediaBucket.Arn}/media-processed/*_h264.parts/*"})
    ]


def test_parts_left_behind_expire_by_a_lifecycle_rule(sam):
    from cliplake.segments import PART_TAGS

    rules = sam["Resources"]["MediaBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    [rule] = [r for r in rules if r["Id"] == "ExpireSegmentParts"]
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] >= 1
    assert {t["Key"]: t["Value"] for t in rule["TagFilters"]} == PART_TAGS  # what the segment stage tags parts with
