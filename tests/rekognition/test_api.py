"""The endpoint through boto3, with moto for S3/SNS/SQS: the same calls the pipeline makes against AWS."""

from __future__ import annotations

import threading
import time

import boto3
import botocore.session
import pytest
from botocore.exceptions import ClientError

from cliplake_localcloud.rekognition.engine import Engine
from cliplake_localcloud.rekognition.server import RekognitionServer

from .conftest import CAPTION, CUTS, REGION

MODEL = botocore.session.get_session().get_service_model("rekognition")
PY_TYPES = {
    "string": str,
    "integer": int,
    "long": int,
    "float": float,
    "double": float,
    "boolean": bool,
    "list": list,
    "structure": dict,
}


def assert_shape(shape, value, path: str = "") -> None:
    """Every returned field is a member of botocore's output shape, with the right Python type."""
    if shape.name == "ResponseMetadata":
        return
    expected = PY_TYPES[shape.type_name]
    assert isinstance(value, expected) and not (expected is int and isinstance(value, bool)), (path, value)
    if shape.type_name == "structure":
        for key, item in value.items():
            if key == "ResponseMetadata" and not path:
                continue
            assert key in shape.members, f"{path}.{key} is not in {shape.name}"
            assert_shape(shape.members[key], item, f"{path}.{key}")
    elif shape.type_name == "list":
        for i, item in enumerate(value):
            assert_shape(shape.member, item, f"{path}[{i}]")
    elif shape.type_name == "string" and shape.enum:
        assert value in shape.enum, (path, value)


def video(aws, name: str) -> dict:
    return {"S3Object": {"Bucket": aws["bucket"], "Name": aws["keys"][name]}}


def run_job(client, aws, api: str, name: str, **kwargs) -> tuple[str, dict]:
    job_id = getattr(client, api)(Video=video(aws, name), NotificationChannel=aws["channel"], **kwargs)["JobId"]
    return job_id, aws["inbox"].wait_for(job_id)


@pytest.fixture(scope="module")
def label_job(rekognition, aws):
    return run_job(rekognition, aws, "start_label_detection", "chelsea", JobTag="cats-1", MinConfidence=40)


def test_completion_message_has_the_exact_fields(label_job, aws):
    job_id, msg = label_job
    assert msg["JobId"] == job_id
    assert set(msg) == {"JobId", "Status", "API", "JobTag", "Timestamp", "Video"}
    assert msg["Status"] == "SUCCEEDED" and msg["API"] == "StartLabelDetection" and msg["JobTag"] == "cats-1"
    assert msg["Video"] == {"S3ObjectName": aws["keys"]["chelsea"], "S3Bucket": aws["bucket"]}
    assert isinstance(msg["Timestamp"], int) and msg["Timestamp"] > 1_600_000_000_000


def test_get_label_detection_parses_and_matches_the_model(rekognition, label_job):
    job_id, _ = label_job
    out = rekognition.get_label_detection(JobId=job_id)
    assert_shape(MODEL.operation_model("GetLabelDetection").output_shape, out)
    assert out["JobStatus"] == "SUCCEEDED" and out["JobTag"] == "cats-1"
    assert out["VideoMetadata"]["Codec"] == "h264" and out["VideoMetadata"]["FrameRate"] == 25.0
    assert out["GetRequestMetadata"] == {"SortBy": "TIMESTAMP", "AggregateBy": "TIMESTAMPS"}
    names = {d["Label"]["Name"] for d in out["Labels"]}
    assert "Cat" in names
    cat = next(d["Label"] for d in out["Labels"] if d["Label"]["Name"] == "Cat")
    assert {p["Name"] for p in cat["Parents"]} >= {"Animal", "Mammal", "Pet"}
    assert cat["Categories"] == [{"Name": "Animals and Pets"}] and cat["Aliases"] == []
    assert all(d["Label"]["Confidence"] >= 40 for d in out["Labels"])
    stamps = [d["Timestamp"] for d in out["Labels"]]
    assert stamps == sorted(stamps)


def test_label_options(rekognition, label_job):
    job_id, _ = label_job
    by_name = rekognition.get_label_detection(JobId=job_id, SortBy="NAME")["Labels"]
    assert [d["Label"]["Name"] for d in by_name] == sorted(d["Label"]["Name"] for d in by_name)
    seg = rekognition.get_label_detection(JobId=job_id, AggregateBy="SEGMENTS")
    assert_shape(MODEL.operation_model("GetLabelDetection").output_shape, seg)
    cats = [d for d in seg["Labels"] if d["Label"]["Name"] == "Cat"]
    assert len(cats) == 1  # the still photo: one segment over the whole clip
    assert cats[0]["StartTimestampMillis"] == 0 and cats[0]["EndTimestampMillis"] >= 1500
    assert cats[0]["DurationMillis"] == cats[0]["EndTimestampMillis"] - cats[0]["StartTimestampMillis"]


def test_label_settings_filters(rekognition, aws):
    settings = {"GeneralLabels": {"LabelInclusionFilters": ["Cat", "Pet"], "LabelExclusionFilters": ["Pet"]}}
    job_id, _ = run_job(rekognition, aws, "start_label_detection", "chelsea", Settings=settings)
    names = {d["Label"]["Name"] for d in rekognition.get_label_detection(JobId=job_id)["Labels"]}
    assert names == {"Cat"}
    settings = {"GeneralLabels": {"LabelCategoryExclusionFilters": ["Animals and Pets"]}}
    job_id, _ = run_job(rekognition, aws, "start_label_detection", "chelsea", Settings=settings)
    labels = rekognition.get_label_detection(JobId=job_id)["Labels"]
    assert all(d["Label"]["Categories"][0]["Name"] != "Animals and Pets" for d in labels)


def test_paging_returns_every_item_once(rekognition, label_job):
    job_id, _ = label_job
    everything = rekognition.get_label_detection(JobId=job_id)["Labels"]
    assert len(everything) > 5
    pages, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = rekognition.get_label_detection(JobId=job_id, MaxResults=3, **kwargs)
        assert len(page["Labels"]) <= 3
        pages.extend(page["Labels"])
        token = page.get("NextToken")
        if not token:
            break
    assert pages == everything


def test_segment_detection(rekognition, aws):
    job_id, msg = run_job(
        rekognition, aws, "start_segment_detection", "cuts",
        SegmentTypes=["SHOT", "TECHNICAL_CUE"],
        Filters={"ShotFilter": {"MinSegmentConfidence": 60}, "TechnicalCueFilter": {"MinSegmentConfidence": 60}},
    )  # fmt: skip
    assert msg["API"] == "StartSegmentDetection" and "JobTag" not in msg
    out = rekognition.get_segment_detection(JobId=job_id)
    assert_shape(MODEL.operation_model("GetSegmentDetection").output_shape, out)
    shots = [s for s in out["Segments"] if s["Type"] == "SHOT"]
    assert all(abs(s["StartFrameNumber"] - c) <= 1 for s, c in zip(shots[1:], CUTS, strict=True)), shots
    assert [s["ShotSegment"]["Index"] for s in shots] == list(range(len(shots)))
    first = shots[0]
    assert first["StartTimecodeSMPTE"] == "00:00:00:00" and first["DurationFrames"] == first["EndFrameNumber"] + 1
    black = [s for s in out["Segments"] if s.get("TechnicalCueSegment", {}).get("Type") == "BlackFrames"]
    assert len(black) == 1 and abs(black[0]["StartTimestampMillis"] - 2000) <= 40
    assert {t["Type"] for t in out["SelectedSegmentTypes"]} == {"SHOT", "TECHNICAL_CUE"}
    assert out["VideoMetadata"][0]["FrameWidth"] == 320


def test_content_moderation_on_a_safe_clip(rekognition, aws):
    job_id, msg = run_job(rekognition, aws, "start_content_moderation", "cuts", MinConfidence=10)
    assert msg["API"] == "StartContentModeration"
    out = rekognition.get_content_moderation(JobId=job_id)
    assert_shape(MODEL.operation_model("GetContentModeration").output_shape, out)
    assert out["JobStatus"] == "SUCCEEDED" and out["ModerationLabels"] == []
    assert out["ModerationModelVersion"]


def test_same_token_same_job_and_no_second_message(rekognition, aws):
    kwargs = {"Video": video(aws, "coffee"), "NotificationChannel": aws["channel"], "ClientRequestToken": "tok-1"}
    first = rekognition.start_label_detection(**kwargs)["JobId"]
    aws["inbox"].wait_for(first)
    second = rekognition.start_label_detection(**kwargs)["JobId"]
    assert second == first
    aws["inbox"].drain(wait=2)
    assert len(aws["inbox"].for_job(first)) == 1
    with pytest.raises(ClientError) as err:
        rekognition.start_label_detection(**kwargs, MinConfidence=90)
    assert err.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"


def test_webm_fails_the_job_with_a_reason(rekognition, aws):
    job_id, msg = run_job(rekognition, aws, "start_label_detection", "vp9")
    assert msg["Status"] == "FAILED" and "Unsupported codec/format" in msg["Message"]
    out = rekognition.get_label_detection(JobId=job_id)
    assert out["JobStatus"] == "FAILED" and "Unsupported codec/format" in out["StatusMessage"]


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"JobTag": "bad tag!"}, "InvalidParameterException"),
        ({"ClientRequestToken": "no spaces"}, "InvalidParameterException"),
        ({"MinConfidence": 120}, "InvalidParameterException"),
        ({"NotificationChannel": {"SNSTopicArn": "arn:aws:sns:us-east-1:123456789012:t", "RoleArn": "x"}},
         "InvalidParameterException"),
        ({"Video": {"S3Object": {"Bucket": "media", "Name": "missing.mp4"}}}, "InvalidS3ObjectException"),
    ],
)  # fmt: skip
def test_invalid_requests(rekognition, aws, kwargs, code):
    params = {"Video": video(aws, "coffee"), **kwargs}
    with pytest.raises(ClientError) as err:
        rekognition.start_label_detection(**params)
    assert err.value.response["Error"]["Code"] == code


def test_unknown_job(rekognition):
    with pytest.raises(ClientError) as err:
        rekognition.get_segment_detection(JobId="0" * 64)
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


class BlockedEngine(Engine):
    """An engine whose analyses wait until released: keeps jobs IN_PROGRESS."""

    def __init__(self, inner: Engine) -> None:
        self.__dict__.update(inner.__dict__)
        self.release = threading.Event()
        self.inner = inner

    def analyse(self, path):
        self.release.wait(30)
        return self.inner.analyse(path)


def test_concurrent_job_limit(aws, engine):
    blocked = BlockedEngine(engine)
    srv = RekognitionServer(port=0, region=REGION, max_concurrent_jobs=2, workers=1, engine=blocked).start()
    try:
        client = boto3.client("rekognition", region_name=REGION, endpoint_url=srv.url)
        job_ids = [
            client.start_segment_detection(Video=video(aws, name), SegmentTypes=["SHOT"])["JobId"]
            for name in ("cuts", "chelsea")
        ]
        assert srv.busy()
        pending = client.get_segment_detection(JobId=job_ids[0])
        assert_shape(MODEL.operation_model("GetSegmentDetection").output_shape, pending)
        assert pending["JobStatus"] == "IN_PROGRESS" and pending["Segments"] == []
        with pytest.raises(ClientError) as err:
            client.start_segment_detection(Video=video(aws, "coffee"), SegmentTypes=["SHOT"])
        assert err.value.response["Error"]["Code"] == "LimitExceededException"
        blocked.release.set()
        deadline = time.monotonic() + 60
        while srv.busy() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not srv.busy()
        client.start_segment_detection(Video=video(aws, "coffee"), SegmentTypes=["SHOT"])
    finally:
        blocked.release.set()
        srv.stop()


def test_three_apis_share_one_analysis(aws, engine):
    calls = []

    class Counting(Engine):
        def __init__(self) -> None:
            self.__dict__.update(engine.__dict__)

        def analyse(self, path):
            calls.append(path)
            time.sleep(0.3)
            return engine.analyse(path)

    srv = RekognitionServer(port=0, region=REGION, workers=3, engine=Counting()).start()
    try:
        client = boto3.client("rekognition", region_name=REGION, endpoint_url=srv.url)
        v = video(aws, "coffee")
        client.start_label_detection(Video=v)
        client.start_content_moderation(Video=v)
        segments = client.start_segment_detection(Video=v, SegmentTypes=["SHOT"])["JobId"]
        deadline = time.monotonic() + 60
        while srv.busy() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(calls) == 1
        out = client.get_segment_detection(JobId=segments)
        assert out["JobStatus"] == "SUCCEEDED"
        assert out["AudioMetadata"] == [
            {"Codec": "aac", "DurationMillis": out["VideoMetadata"][0]["DurationMillis"], "SampleRate": 44100,
             "NumberOfChannels": 1}
        ]  # fmt: skip
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def text_job(rekognition, aws):
    token = {"ClientRequestToken": "text-caption-1"}
    return run_job(rekognition, aws, "start_text_detection", "caption", JobTag="caption", **token)


def test_text_detection_has_rekognitions_shape_and_reads_the_caption(rekognition, aws, text_job):
    job_id, msg = text_job
    assert msg["Status"] == "SUCCEEDED" and msg["API"] == "StartTextDetection" and msg["JobTag"] == "caption"
    out = rekognition.get_text_detection(JobId=job_id)
    assert_shape(MODEL.operation_model("GetTextDetection").output_shape, out)
    assert set(out) - {"ResponseMetadata"} == {
        "JobStatus", "VideoMetadata", "TextDetections", "TextModelVersion", "JobId", "Video", "JobTag",
    }  # fmt: skip
    assert out["JobStatus"] == "SUCCEEDED" and out["TextModelVersion"].startswith("rapidocr-1.4.4")
    assert out["VideoMetadata"]["FrameWidth"] == 1280 and out["VideoMetadata"]["DurationMillis"] == 4000
    lines = [d for d in out["TextDetections"] if d["TextDetection"]["Type"] == "LINE"]
    caption = [d for d in lines if d["TextDetection"]["DetectedText"] == CAPTION]
    assert caption and all(960 <= d["Timestamp"] <= 3000 for d in caption)
    first = caption[0]
    same_frame = [d["TextDetection"] for d in out["TextDetections"] if d["Timestamp"] == first["Timestamp"]]
    words = [d for d in same_frame if d["Type"] == "WORD" and d.get("ParentId") == first["TextDetection"]["Id"]]
    assert [w["DetectedText"] for w in words] == CAPTION.split()
    assert "ParentId" not in first["TextDetection"]
    geo = first["TextDetection"]["Geometry"]
    assert set(geo) == {"BoundingBox", "Polygon"} and len(geo["Polygon"]) == 4
    assert set(geo["BoundingBox"]) == {"Width", "Height", "Left", "Top"} and 0.6 < geo["BoundingBox"]["Top"] < 0.9
    ids = [d["Id"] for d in same_frame]
    assert len(ids) == len(set(ids))


def test_text_filters_and_paging(rekognition, aws, text_job):
    job_id, _ = text_job
    full = rekognition.get_text_detection(JobId=job_id)["TextDetections"]
    pages, token = [], None
    while True:
        page = rekognition.get_text_detection(JobId=job_id, MaxResults=2, **({"NextToken": token} if token else {}))
        pages += page["TextDetections"]
        token = page.get("NextToken")
        if not token:
            break
    assert pages == full and len(full) > 2
    v, ch = video(aws, "caption"), aws["channel"]
    top_half = {"RegionsOfInterest": [{"BoundingBox": {"Left": 0.0, "Top": 0.0, "Width": 1.0, "Height": 0.5}}]}
    job, _ = run_job(rekognition, aws, "start_text_detection", "caption", Filters=top_half)
    texts = {d["TextDetection"]["DetectedText"] for d in rekognition.get_text_detection(JobId=job)["TextDetections"]}
    assert CAPTION not in texts  # the caption is in the bottom half
    tall = {"WordFilter": {"MinBoundingBoxHeight": 0.5}}
    job = rekognition.start_text_detection(Video=v, NotificationChannel=ch, Filters=tall)["JobId"]
    aws["inbox"].wait_for(job)
    assert rekognition.get_text_detection(JobId=job)["TextDetections"] == []
    picky = {"WordFilter": {"MinConfidence": 100}}
    job = rekognition.start_text_detection(Video=v, NotificationChannel=ch, Filters=picky)["JobId"]
    aws["inbox"].wait_for(job)
    assert all(
        d["TextDetection"]["Confidence"] >= 100 for d in rekognition.get_text_detection(JobId=job)["TextDetections"]
    )


def test_text_job_token_is_idempotent(rekognition, aws, text_job):
    job_id, _ = text_job
    again = rekognition.start_text_detection(
        Video=video(aws, "caption"), NotificationChannel=aws["channel"], JobTag="caption",
        ClientRequestToken="text-caption-1",
    )  # fmt: skip
    assert again["JobId"] == job_id
    aws["inbox"].drain(wait=2)
    assert len(aws["inbox"].for_job(job_id)) == 1


def test_the_endpoint_starts_without_the_analysis_libraries():
    """A restart answers before numpy, OpenCV, onnxruntime and PySceneDetect are imported: the first job does it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from cliplake_localcloud.rekognition.server import RekognitionServer\n"
        "server = RekognitionServer(port=0).start()\n"
        "print(sorted(m for m in ('cv2', 'numpy', 'onnxruntime', 'scenedetect') if m in sys.modules))\n"
        "server.engine\n"
        "print(sorted(m for m in ('cv2', 'numpy') if m in sys.modules))\n"
        "server.stop()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    before, after = out.stdout.splitlines()
    assert before == "[]"
    assert after == "['cv2', 'numpy']"
