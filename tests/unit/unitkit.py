"""The unit layer's world: in-memory AWS (moto) behind the real adapters, and stand-ins for the rest."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from cliplake.adapters.catalog import Catalog
from cliplake.adapters.rekognition import API_NAME, Channel, Rekognition
from cliplake.contracts import JobKind, JobStatus, ObjectRef, RekognitionCompletion
from cliplake.lake import BATCH_ID_METADATA, raw_key, video_id_for
from cliplake.media import Probe
from cliplake.services import Services

BUCKET, TABLE, UNIT_BATCH = "unit-lake", "unit-catalog", "unit-batch"
TOPIC = "arn:aws:sns:us-east-1:123456789012:unit-rekognition"
ROLE = "arn:aws:iam::123456789012:role/unit"
H264 = Probe(container="mov,mp4,m4a,3gp,3g2,mj2", codec="h264", width=320, height=240, fps=25.0, duration_s=4.0,
             has_audio=False)  # fmt: skip
VP9 = Probe(container="matroska,webm", codec="vp9", width=320, height=240, fps=25.0, duration_s=4.0, has_audio=False)
_stamps = itertools.count()


def catalog_table(ddb: Any) -> None:
    """The catalog's key schema and indexes, as infra/template.yaml declares them."""
    attrs = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")
    indexes = [
        {"IndexName": g, "Projection": {"ProjectionType": "ALL"},
         "KeySchema": [{"AttributeName": f"{g}pk", "KeyType": "HASH"}, {"AttributeName": f"{g}sk", "KeyType": "RANGE"}]}
        for g in ("gsi1", "gsi2")
    ]  # fmt: skip
    ddb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in attrs],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=indexes,
    )


# ------------------------------------------------------------------------------------------------ stand-ins
@dataclass
class FakeRekognition(Rekognition):
    """Rekognition Video as the stages see it: a started job keeps its id for the same video version (the adapter's
    ClientRequestToken), its status and results are what the test sets. Starting several at once is the adapter's
    own `start_all`."""

    refuse: dict[JobKind, Exception] = field(default_factory=dict)
    statuses: dict[str, tuple[str, str]] = field(default_factory=dict)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[JobKind, str]] = field(default_factory=list)

    def start(self, kind: JobKind, bucket: str, key: str, video_id: str, etag: str, channel: Channel) -> str:
        self.calls.append((kind, key))
        if kind in self.refuse:
            raise self.refuse[kind]
        job_id = f"{kind.value}-{video_id}-{etag}"
        self.statuses.setdefault(job_id, (JobStatus.IN_PROGRESS.value, ""))
        return job_id

    def status(self, kind: JobKind, job_id: str) -> tuple[str, str]:
        return self.statuses.get(job_id, (JobStatus.IN_PROGRESS.value, ""))

    def results(self, kind: JobKind, job_id: str) -> dict[str, Any]:
        return self.documents.get(job_id) or {"JobStatus": "SUCCEEDED"}


@dataclass
class FakeTokens:
    """Step Functions' task tokens: what was sent; `broken` makes the next sends fail as a network error would."""

    sent: list[tuple[str, str, Any]] = field(default_factory=list)
    broken: bool = False

    def _send(self, verb: str, token: str, detail: Any) -> bool:
        if self.broken:
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, verb)
        self.sent.append((verb, token, detail))
        return True

    def succeed(self, token: str, output: Any) -> bool:
        return self._send("succeed", token, output)

    def fail(self, token: str, error: str, cause: str) -> bool:
        return self._send("fail", token, (error, cause))

    def heartbeat(self, token: str) -> bool:
        return self._send("heartbeat", token, None)


@dataclass
class FakeTopic:
    published: list[dict[str, Any]] = field(default_factory=list)

    def publish(self, TopicArn: str, Message: str) -> dict[str, str]:
        assert TopicArn == TOPIC
        self.published.append(json.loads(Message))
        return {"MessageId": str(len(self.published))}


@dataclass
class FakeMedia:
    """ffmpeg as analyze uses it: what probing over a presigned URL and locally give (a Probe, or an exception to
    raise), which files were downloaded and transcoded, and the fan-out of long videos."""

    in_place: Probe | Exception = H264
    local: Probe | Exception = H264
    probed: list[str] = field(default_factory=list)
    transcoded: list[Path] = field(default_factory=list)
    fanned_out: list[str] = field(default_factory=list)

    def probe(self, source: str | Path, size: int | None = None) -> Probe:
        where = "url" if str(source).startswith("http") else "local"
        self.probed.append(where)
        result = self.in_place if where == "url" else self.local
        if isinstance(result, Exception):
            raise result
        return result

    def transcode(self, src: Path, dst: Path) -> None:
        assert src.exists(), "transcoding a file that was not downloaded"
        dst.write_bytes(b"h264 rendition of " + src.read_bytes())
        self.transcoded.append(src)

    def start_fan_out(self, svc: Services, raw: Any, etag: str, probed: Probe) -> int:
        self.fanned_out.append(raw.key)
        return 3


@dataclass
class Unit:
    """One test's world: the services of the stages over in-memory AWS, and the stand-ins to steer and read."""

    svc: Services
    s3: Any
    rekognition: FakeRekognition
    tokens: FakeTokens
    topic: FakeTopic
    media: FakeMedia

    @property
    def catalog(self) -> Catalog:
        return self.svc.catalog

    def drop(self, name: str = "clip.mp4", body: bytes = b"video bytes", source: str = "dropin",
             metadata: dict[str, str] | None = None, key: str = "", token: str = "") -> ObjectRef:  # fmt: skip
        """Put a raw object in the lake; its S3 event's object reference. With a `token`, the video is an item of a
        batch as the batch's ingest makes one: its task token stored first, then the object, naming the batch."""
        key = key or raw_key(source, "unit", name, f"20260101_{next(_stamps):06d}")
        metadata = dict(metadata or {})
        if token:
            self.catalog.tasks.put(video_id_for(key), token, UNIT_BATCH, raw_key=key)
            metadata[BATCH_ID_METADATA] = UNIT_BATCH
        etag = self.s3.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=metadata)["ETag"].strip('"')
        return ObjectRef(bucket=BUCKET, key=key, etag=etag)

    def completion(self, ref: ObjectRef, kind: JobKind, status: str = "SUCCEEDED", *, tag: bool = True,
                   job_id: str = "", message: str | None = None) -> RekognitionCompletion:  # fmt: skip
        """The completion Rekognition publishes for the job analyze started for `ref`'s video."""
        vid = video_id_for(ref.key)
        job_id = job_id or self.catalog.videos.get(vid).jobs[kind].job_id
        body = {"JobId": job_id, "Status": status, "API": API_NAME[kind], "JobTag": vid if tag else None,
                "Timestamp": 1767225600000, "Video": {"S3ObjectName": ref.key, "S3Bucket": BUCKET}}  # fmt: skip
        if message is not None:
            body["Message"] = message
        return RekognitionCompletion.model_validate(body)

    def sends(self, verb: str) -> list[tuple[str, str, Any]]:
        return [s for s in self.tokens.sent if s[0] == verb]
