"""SQS back-off: a message that must wait (Rekognition quota) is hidden for a growing delay instead of the
queue's full visibility timeout, so the video is retried soon but not in a tight loop."""

from __future__ import annotations

from functools import lru_cache

import boto3

BASE_DELAY_S = 15
MAX_DELAY_S = 900


def backoff_delay(receive_count: int) -> int:
    return min(MAX_DELAY_S, BASE_DELAY_S * 2 ** max(receive_count - 1, 0))


@lru_cache(maxsize=16)
def _queue_url(queue_arn: str) -> str:
    _, _, _, _region, account, name = queue_arn.split(":", 5)
    return boto3.client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


def back_off(queue_arn: str, receipt_handle: str, receive_count: int) -> None:
    boto3.client("sqs").change_message_visibility(
        QueueUrl=_queue_url(queue_arn), ReceiptHandle=receipt_handle, VisibilityTimeout=backoff_delay(receive_count)
    )
