"""Every handler's input model accepts the event shapes AWS delivers (samples in events/), and what moto sends."""

import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import S3Model, SnsNotificationModel, SqsModel
from pydantic import ValidationError

from cliplake.batches import parse_batch_task
from cliplake.contracts import (
    API_NAME,
    BatchInput,
    BatchTrigger,
    CompletionSqsRecord,
    ItemSqsRecord,
    JobKind,
    PlanTask,
    RekognitionCompletion,
    S3NotificationSqsRecord,
    SummarizeTask,
)
from cliplake.lake import parse_raw_key, video_id_for
from cliplake.sources.models import Candidate
from cliplake_localcloud.template import load_template

EVENTS = Path(__file__).resolve().parents[1] / "events"


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_samples_are_the_shapes_aws_documents():
    """The samples themselves pass powertools' strict AWS models (S3Model needs every field AWS sends)."""
    for name in ("analyze_s3_put_via_sqs.json", "index_s3_summary_via_sqs.json"):
        sqs = parse(load(name), model=SqsModel)
        parse(json.loads(sqs.Records[0].body), model=S3Model)
    sqs = parse(load("finalize_rekognition_via_sns_sqs.json"), model=SqsModel)
    parse(json.loads(sqs.Records[0].body), model=SnsNotificationModel)


def test_s3_put_via_sqs_decodes_the_key():
    record = S3NotificationSqsRecord.model_validate(load("analyze_s3_put_via_sqs.json")["Records"][0])
    obj = record.body.Records[0].s3.object
    assert obj.key == "media-raw/video/dropin/holiday/20260101_120000/beach walk été+1.mp4"
    assert record.body.Records[0].s3.bucket.name.startswith("cliplake-media-")
    assert obj.eTag == "d41d8cd98f00b204e9800998ecf8427e"


def test_moto_style_s3_event_with_encoded_slashes_and_missing_fields():
    body = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2026-01-01T12:00:00.000Z",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "x",
                    "bucket": {"name": "b", "arn": "arn:aws:s3:::b"},
                    "object": {"key": "media-raw%2Fa+b%2Bc%C3%BC.mp4", "size": 3, "eTag": "abc"},
                },
            }
        ]
    }
    record = load("analyze_s3_put_via_sqs.json")["Records"][0] | {"body": json.dumps(body)}
    parsed = S3NotificationSqsRecord.model_validate(record)
    assert parsed.body.Records[0].s3.object.key == "media-raw/a b+cü.mp4"


def test_s3_test_event_has_no_records():
    record = S3NotificationSqsRecord.model_validate(load("analyze_s3_test_event_via_sqs.json")["Records"][0])
    assert record.body.Event == "s3:TestEvent"
    assert record.body.Records == []


def test_completion_in_sns_envelope():
    record = CompletionSqsRecord.model_validate(load("finalize_rekognition_via_sns_sqs.json")["Records"][0])
    c = record.body
    assert c.kind is JobKind.LABELS and c.succeeded
    assert c.JobTag == "v0123456789abcdef0123"
    assert c.Video.S3ObjectName.endswith("beach walk été+1.mp4")


def test_completion_raw_delivery_other_api_spelling_no_tag():
    record = CompletionSqsRecord.model_validate(load("finalize_rekognition_raw_via_sqs.json")["Records"][0])
    c = record.body
    assert c.kind is JobKind.LABELS
    assert c.JobTag is None
    assert not c.succeeded and c.Message == "Unsupported codec/format."


@pytest.mark.parametrize(
    ("api", "kind"),
    [
        ("StartContentModeration", JobKind.MODERATION),
        ("CONTENT_MODERATION", JobKind.MODERATION),
        ("StartSegmentDetection", JobKind.SEGMENTS),
        ("SEGMENT_DETECTION", JobKind.SEGMENTS),
        ("StartFaceDetection", None),
    ],
)
def test_completion_api_spellings(api, kind):
    c = RekognitionCompletion.model_validate(load("rekognition_completion.json") | {"API": api})
    assert c.kind == kind


def test_the_api_table_names_boto3s_methods_of_every_analysis():
    import boto3

    from cliplake.adapters.rekognition import GET, START

    client = boto3.client("rekognition", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    for kind in JobKind:
        assert callable(getattr(client, START[kind])) and callable(getattr(client, GET[kind])), kind
        assert client.meta.method_to_api_mapping[GET[kind]] == "Get" + API_NAME[kind].removeprefix("Start")


def test_completion_without_video_is_rejected():
    bad = {k: v for k, v in load("rekognition_completion.json").items() if k != "Video"}
    with pytest.raises(ValidationError):
        RekognitionCompletion.model_validate(bad)


# ------------------------------------------------------------------------------------------------ batch hops
ASL = json.loads((EVENTS.parent / "infra" / "statemachine" / "batch.asl.json").read_text())


def _message_body_keys(state: dict) -> set[str]:
    return {k.removesuffix(".$") for k in state["Parameters"]["MessageBody"]}


def _body(name: str) -> dict:
    return json.loads(load(name)["Records"][0]["body"])


def test_batch_task_samples_carry_what_the_state_machine_sends():
    """The samples' bodies have exactly the keys of the definition's MessageBody (so a changed definition
    shows up here), and the batch handler's parser takes them."""
    states = ASL["States"]
    video = states["Items"]["ItemProcessor"]["States"]["Video"]
    assert set(_body("batch_plan_task_via_sqs.json")) == _message_body_keys(states["Plan"])
    assert set(_body("batch_summarize_task_via_sqs.json")) == _message_body_keys(states["Summarize"])
    assert set(_body("ingest_item_task_via_sqs.json")) == _message_body_keys(video)
    item_selector = {k.removesuffix(".$") for k in states["Items"]["ItemSelector"]}
    assert set(_body("ingest_item_task_via_sqs.json")["input"]) == item_selector
    failed = states["Items"]["ItemProcessor"]["States"]["VideoFailed"]["Parameters"]
    results = _body("batch_summarize_task_via_sqs.json")["results"]
    assert {k.removesuffix(".$") for k in failed} in [set(r) for r in results]

    plan = parse_batch_task(_body("batch_plan_task_via_sqs.json"))
    assert isinstance(plan, PlanTask) and plan.input.trigger == BatchTrigger.SCHEDULE and plan.input.campaign == ""
    summarize = parse_batch_task(_body("batch_summarize_task_via_sqs.json"))
    assert isinstance(summarize, SummarizeTask) and [r["status"] for r in summarize.results] == ["INDEXED", "FAILED"]


def test_ingest_item_sample_parses_into_a_candidate_and_a_lake_key():
    record = ItemSqsRecord.model_validate(load("ingest_item_task_via_sqs.json")["Records"][0])
    item = record.body.input.item
    assert parse_raw_key(item.raw_key).source == item.source == "pixabay"
    assert item.video_id == video_id_for(item.raw_key)
    assert Candidate.model_validate(item.candidate).licence == "Pixabay Content License"


def test_schedule_sample_is_the_templates_schedule_input():
    template = load_template()
    schedules = [r for r in template["Resources"].values() if r["Type"] == "AWS::Scheduler::Schedule"]
    assert schedules, "the template has no schedule"
    inputs = [json.loads(s["Properties"]["Target"]["Input"]) for s in schedules]
    assert load("schedule_batch_input.json") in inputs
    assert BatchInput.model_validate(load("schedule_batch_input.json")).trigger == BatchTrigger.SCHEDULE
