"""The SQS back-off of a throttled record: hidden for a delay growing with its receive count, on its own queue."""

from __future__ import annotations

import boto3
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from botocore.stub import Stubber

from cliplake.adapters.queue import MAX_DELAY_S, back_off

ARN = "arn:aws:sqs:us-east-1:123456789012:cliplake-RawVideoQueue-ABC"


def _record(receives: int) -> SqsRecordModel:
    return SqsRecordModel.model_validate({
        "messageId": "m1", "receiptHandle": "rh-1", "body": "{}", "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": ARN, "awsRegion": "us-east-1", "messageAttributes": {},
        "attributes": {"ApproximateReceiveCount": str(receives), "SentTimestamp": "1", "SenderId": "s",
                       "ApproximateFirstReceiveTimestamp": "1"},
    })  # fmt: skip


def test_a_throttled_record_is_hidden_for_the_delay_of_its_receive_count():
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url="https://sqs.us-east-1.amazonaws.com",
                       aws_access_key_id="k", aws_secret_access_key="s")  # fmt: skip
    url = "https://sqs.us-east-1.amazonaws.com/123456789012/cliplake-RawVideoQueue-ABC"
    with Stubber(sqs) as stub:
        for receives, delay in ((1, 15), (3, 60), (20, MAX_DELAY_S)):
            stub.add_response("change_message_visibility", {},
                              {"QueueUrl": url, "ReceiptHandle": "rh-1", "VisibilityTimeout": delay})  # fmt: skip
            back_off(sqs, _record(receives))
        stub.assert_no_pending_responses()
