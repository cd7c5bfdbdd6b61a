"""The segment stage's handler: a part or a join that failed on the network is redelivered soon (backed off on its
own queue, reported as a batch item failure), never treated as a verdict on the video (a verdict on the media is
the stage's own: tests/unit/test_segment_parts.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import boto3
import pytest
from botocore.stub import Stubber

import cliplake.handlers.segment as segment_handler
from cliplake.contracts import SegmentSqsRecord, SegmentTask
from cliplake.media import NetworkError

ARN = "arn:aws:sqs:us-east-1:123456789012:cliplake-SegmentQueue-ABC"
URL = "https://sqs.us-east-1.amazonaws.com/123456789012/cliplake-SegmentQueue-ABC"


def _record(kind: str, receives: int) -> SegmentSqsRecord:
    task = SegmentTask(kind=kind, bucket="b", raw_key="media-raw/video/dropin/c/20260101_000000/long.webm", etag="e")
    record = {
        "messageId": f"m-{kind}", "receiptHandle": f"rh-{kind}", "body": json.dumps(task.model_dump()),
        "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": ARN, "awsRegion": "us-east-1",
        "messageAttributes": {}, "attributes": {"ApproximateReceiveCount": str(receives), "SentTimestamp": "1",
                                                "SenderId": "s", "ApproximateFirstReceiveTimestamp": "1"},
    }  # fmt: skip
    return SegmentSqsRecord.model_validate(record)


def _failing(err: Exception):
    def run(*args, **kwargs):
        raise err

    return run


@pytest.mark.parametrize("kind", ["video", "join"])
def test_a_segment_task_that_fails_on_the_network_is_backed_off_and_redelivered(kind, monkeypatch):
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url="https://sqs.us-east-1.amazonaws.com",
                       aws_access_key_id="k", aws_secret_access_key="s")  # fmt: skip
    monkeypatch.setattr(segment_handler, "get_services", lambda settings: SimpleNamespace(sqs=sqs))
    err = NetworkError("encoding a segment failed on the network: HTTP error 503 Service Unavailable")
    monkeypatch.setattr(segment_handler, "run_part" if kind == "video" else "run_join", _failing(err))
    with Stubber(sqs) as stub:
        stub.add_response("change_message_visibility", {},
                          {"QueueUrl": URL, "ReceiptHandle": f"rh-{kind}", "VisibilityTimeout": 30})  # fmt: skip
        with pytest.raises(NetworkError):  # the record fails: SQS delivers it again once its back-off ends
            segment_handler.record_handler(_record(kind, receives=2))
        stub.assert_no_pending_responses()
