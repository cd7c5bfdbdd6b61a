"""Every handler's input model accepts the event shapes AWS delivers (samples in events/), and what moto sends."""

import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import S3Model, SnsNotificationModel, SqsModel
from pydantic import ValidationError

from cliplake.contracts import (
    CompletionSqsRecord,
    JobKind,
    RekognitionCompletion,
    S3NotificationSqsRecord,
)

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


def test_completion_without_video_is_rejected():
    bad = {k: v for k, v in load("rekognition_completion.json").items() if k != "Video"}
    with pytest.raises(ValidationError):
        RekognitionCompletion.model_validate(bad)
