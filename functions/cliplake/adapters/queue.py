"""SQS back-off: a message that must wait (Rekognition quota) is hidden for a growing delay instead of the
queue's full visibility timeout, so the video is retried soon but not in a tight loop.

The queue URL is derived from the event's queue ARN (`arn:aws:sqs:<region>:<account>:<name>`): no GetQueueUrl
call, so no `sqs:GetQueueUrl` permission. The client's endpoint gives the host (the regional SQS endpoint on AWS,
`AWS_ENDPOINT_URL` in the local cloud), so the URL is the one SQS itself reports.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser.models import SqsRecordModel

BASE_DELAY_S = 15
MAX_DELAY_S = 900


def backoff_delay(receive_count: int) -> int:
    return min(MAX_DELAY_S, BASE_DELAY_S * 2 ** max(receive_count - 1, 0))


def queue_url(sqs_client: Any, queue_arn: str) -> str:
    """The URL of the queue `queue_arn`, at the client's endpoint."""
    _, _, _, _region, account, name = queue_arn.split(":", 5)
    return f"{sqs_client.meta.endpoint_url.rstrip('/')}/{account}/{name}"


def back_off(sqs_client: Any, record: SqsRecordModel) -> None:
    """Hide the SQS `record` for a delay growing with its receive count."""
    sqs_client.change_message_visibility(
        QueueUrl=queue_url(sqs_client, record.eventSourceARN),
        ReceiptHandle=record.receiptHandle,
        VisibilityTimeout=backoff_delay(int(record.attributes.ApproximateReceiveCount)),
    )
