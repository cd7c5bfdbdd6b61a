"""Small Rekognition Video adapter: start the jobs of a video (labels, moderation, segments, text) and read
every page of their results.

No polling: jobs report through the SNS NotificationChannel. The same `ClientRequestToken` returns the same
JobId (and sends no new SNS message), which makes starting a job idempotent.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
from botocore import xform_name
from botocore.exceptions import ClientError

from cliplake.contracts import API_NAME, JobKind, RekognitionCompletion

# The errors that mean "not now": back off through the queue, never fail the video.
BACKPRESSURE_CODES = {
    "LimitExceededException",
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "ServiceUnavailableException",
    "InternalServerError",
}
# The errors that mean "this video will never work".
INVALID_VIDEO_CODES = {"InvalidS3ObjectException", "VideoTooLargeException", "InvalidParameterException"}

#: boto3's methods of each analysis: `start_label_detection`, `get_label_detection`, ... (from `API_NAME`)
START = {kind: xform_name(api) for kind, api in API_NAME.items()}
GET = {kind: xform_name("Get" + api.removeprefix("Start")) for kind, api in API_NAME.items()}
ITEMS = {
    JobKind.LABELS: "Labels",
    JobKind.MODERATION: "ModerationLabels",
    JobKind.SEGMENTS: "Segments",
    JobKind.TEXT: "TextDetections",
}


class Backpressure(Exception):
    """Rekognition is at its quota or throttling: retry the message later."""


class InvalidVideo(Exception):
    """Rekognition refuses this video; retrying is futile."""


@dataclass(frozen=True)
class Channel:
    topic_arn: str
    role_arn: str


class CompletionTopic:
    """The topic Rekognition publishes its completions to. analyze re-announces there, in the same shape, a job that
    finished while nobody recorded it (a reused ClientRequestToken sends no second message)."""

    def __init__(self, topic_arn: str, client: Any) -> None:
        self.topic_arn = topic_arn
        self.client = client

    def announce(self, completion: RekognitionCompletion) -> None:
        self.client.publish(TopicArn=self.topic_arn, Message=completion.model_dump_json(exclude_none=True))


def request_token(video_id: str, etag: str, kind: JobKind) -> str:
    """Deterministic per (object version, job kind); `^[a-zA-Z0-9-_]+$`, at most 64 characters."""
    digest = hashlib.sha256(f"{video_id}:{etag}:{kind.value}".encode()).hexdigest()[:32]
    return f"{kind.value}-{digest}"


class Rekognition:
    def __init__(self, client: Any | None = None, min_confidence: float = 50.0, page_size: int = 1000) -> None:
        self.client = client or boto3.client("rekognition")
        self.min_confidence = min_confidence
        self.page_size = page_size

    def start(self, kind: JobKind, bucket: str, key: str, video_id: str, etag: str, channel: Channel) -> str:
        params: dict[str, Any] = {
            "Video": {"S3Object": {"Bucket": bucket, "Name": key}},
            "ClientRequestToken": request_token(video_id, etag, kind),
            "JobTag": video_id,
            "NotificationChannel": {"SNSTopicArn": channel.topic_arn, "RoleArn": channel.role_arn},
        }
        if kind is JobKind.LABELS:
            params["MinConfidence"] = self.min_confidence
            params["Features"] = ["GENERAL_LABELS"]
        elif kind is JobKind.MODERATION:
            params["MinConfidence"] = self.min_confidence
        elif kind is JobKind.SEGMENTS:
            params["SegmentTypes"] = ["SHOT", "TECHNICAL_CUE"]
        # TEXT: Rekognition's default filters (words at >= 80 % confidence, anywhere in the frame)
        try:
            return getattr(self.client, START[kind])(**params)["JobId"]
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in BACKPRESSURE_CODES:
                raise Backpressure(f"{API_NAME[kind]}: {code}") from err
            if code in INVALID_VIDEO_CODES:
                message = err.response.get("Error", {}).get("Message", code)
                raise InvalidVideo(f"Rekognition refused the video: {code}: {message}") from err
            raise

    def start_all(
        self, kinds: list[JobKind], bucket: str, key: str, video_id: str, etag: str, channel: Channel
    ) -> dict[JobKind, str]:
        """Start a video's jobs at once (each Start is a round trip of its own; they are independent): their ids by
        kind. Every start is attempted; then a refused video raises `InvalidVideo`, before `Backpressure` (the
        retry's reused request tokens return the jobs that did start)."""
        with ThreadPoolExecutor(max_workers=max(1, len(kinds)), thread_name_prefix="rekognition-start") as pool:
            futures = {kind: pool.submit(self.start, kind, bucket, key, video_id, etag, channel) for kind in kinds}
        errors = [f.exception() for f in futures.values() if f.exception() is not None]
        for wanted in (InvalidVideo, Backpressure, Exception):
            for err in errors:
                if isinstance(err, wanted):
                    raise err
        return {kind: f.result() for kind, f in futures.items()}

    def status(self, kind: JobKind, job_id: str) -> tuple[str, str]:
        r = getattr(self.client, GET[kind])(JobId=job_id, MaxResults=1)
        return r["JobStatus"], r.get("StatusMessage", "")

    def results(self, kind: JobKind, job_id: str) -> dict[str, Any]:
        """Every page of a finished job, merged into one response-shaped document."""
        params: dict[str, Any] = {"JobId": job_id, "MaxResults": self.page_size}
        if kind is JobKind.LABELS:
            params |= {"SortBy": "TIMESTAMP", "AggregateBy": "SEGMENTS"}
        elif kind is JobKind.MODERATION:
            params |= {"SortBy": "TIMESTAMP"}
        merged: dict[str, Any] | None = None
        pages = 0
        while True:
            page = getattr(self.client, GET[kind])(**params)
            page.pop("ResponseMetadata", None)
            pages += 1
            if merged is None:
                merged = page
            else:
                merged[ITEMS[kind]].extend(page.get(ITEMS[kind], []))
            token = page.get("NextToken")
            if not token:
                break
            params["NextToken"] = token
        merged.pop("NextToken", None)
        merged["Pages"] = pages
        return merged
