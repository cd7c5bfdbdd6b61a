"""The whole choreography on the local cloud: S3 put → analyze → Rekognition → SNS → SQS → finalize →
_labels.json → index → catalog. Plus redelivered and out-of-order messages, and bad input."""

from __future__ import annotations

import json
from urllib.parse import quote_plus

import pytest

from cliplake.adapters.rekognition import API_NAME
from cliplake.adapters.s3 import Lake
from cliplake.analyze import _prepare
from cliplake.contracts import JobKind, VideoSummary
from cliplake.lake import RawKey, parse_raw_key, video_id_for
from cliplake.services import get_services
from cliplake.settings import AnalyzeSettings
from cliplake_cli.cli import drop_files, wait_for_videos

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def dropped(cloud, lake, catalog, clips):
    before = catalog.stats().get("dropin", {"raw": 0, "processed": 0, "failed": 0})
    keys = drop_files(lake, [clips["h264"], clips["webm"], clips["corrupt"]], campaign="e2e")
    videos = wait_for_videos(catalog, keys, timeout_s=240)
    cloud.wait_idle(timeout=120)
    return {"keys": keys, "videos": {v["video_id"]: v for v in videos}, "stats_before": before}


def _by_name(dropped, name):
    key = next(k for k in dropped["keys"] if k.endswith(name))
    return key, dropped["videos"][video_id_for(key)]


def test_h264_video_is_indexed_with_shots_and_metadata(dropped, lake):
    key, video = _by_name(dropped, "cuts.mp4")
    assert video["status"] == "INDEXED", video.get("reason")
    assert (video["width"], video["height"]) == (320, 240)
    assert 4500 <= video["duration_ms"] <= 5200
    summary = VideoSummary.model_validate(lake.get_json(parse_raw_key(key).summary_key))
    assert summary.provenance.analysed_key == key and not summary.provenance.transcoded
    assert len(summary.shots) == 3
    assert [round(s.start_ms / 100) for s in summary.shots[1:]] == [16, 32]  # the cuts at 1.6 s and 3.2 s
    assert set(summary.provenance.jobs) == set(JobKind)
    assert all(j.status == "SUCCEEDED" and j.job_id for j in summary.provenance.jobs.values())
    assert summary.attribution.source == "dropin" and summary.credit_line


def test_on_screen_text_is_summarised_with_time_ranges_and_searchable(dropped, lake, catalog):
    key, video = _by_name(dropped, "cuts.mp4")
    summary = VideoSummary.model_validate(lake.get_json(parse_raw_key(key).summary_key))
    assert summary.provenance.jobs[JobKind.TEXT].api == "StartTextDetection"
    lines = [line for line in summary.text if "Lantern" in line.text]
    assert lines, summary.text
    for line in lines:
        assert 0 <= line.start_ms < line.end_ms <= summary.video.duration_ms + 1000 and line.confidence >= 80
    assert {"lantern", "parade"} <= set(video["text_words"])
    assert video_id_for(key) in {h["video_id"] for h in catalog.videos_by_text("LANTERN")}
    assert video_id_for(key) not in {h["video_id"] for h in catalog.videos_by_text("zebra")}


def test_webm_with_odd_name_is_transcoded_then_indexed(dropped, lake):
    key, video = _by_name(dropped, "clip ü+1 b.webm")
    assert key.endswith("/clip ü+1 b.webm")
    assert video["status"] == "INDEXED", video.get("reason")
    raw = parse_raw_key(key)
    rendition = lake.head(raw.rendition_key)
    assert rendition is not None and rendition.metadata["source-etag"] == lake.head(key).etag
    summary = VideoSummary.model_validate(lake.get_json(raw.summary_key))
    assert summary.provenance.transcoded and summary.provenance.original_codec == "vp9"
    assert summary.provenance.analysed_key == raw.rendition_key
    assert (summary.video.codec, summary.video.width, summary.video.height) == ("h264", 322, 242)
    assert len(summary.shots) == 2
    assert "transcoded from vp9" in summary.credit_line


def test_corrupt_file_is_marked_failed_with_a_reason_and_kept(dropped, lake):
    key, video = _by_name(dropped, "broken.mp4")
    assert video["status"] == "FAILED"
    assert "not a readable media file" in video["reason"]
    assert lake.head(key) is not None  # the original is never lost
    assert lake.head(parse_raw_key(key).summary_key) is None
    assert video.get("jobs") == {}  # no Rekognition job was started for it


def test_counters_count_each_video_once(dropped, catalog):
    before, after = dropped["stats_before"], catalog.stats()["dropin"]
    assert after["raw"] - before["raw"] == 3
    assert after["processed"] - before["processed"] == 2
    assert after["failed"] - before["failed"] == 1


def test_label_search_finds_indexed_videos(dropped, catalog):
    for vid, video in dropped["videos"].items():
        if video["status"] != "INDEXED":
            continue
        for name, score in video.get("label_scores", {}).items():
            hits = catalog.videos_by_label(name, min_confidence=score - 0.01)
            assert vid in {h["video_id"] for h in hits}
            assert vid not in {h["video_id"] for h in catalog.videos_by_label(name, min_confidence=score + 0.02)}


def _scan(cloud, table):
    items, kwargs = [], {"TableName": table}
    while True:
        page = cloud.client("dynamodb").scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _s3_event(bucket: str, key: str, size: int, etag: str) -> str:
    """An S3 notification as moto sends it (key URL-encoded, `/` included)."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-01-01T00:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "redelivery",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(key), "size": size, "eTag": etag},
        },
    }
    return json.dumps({"Records": [record]})


def test_redelivered_and_out_of_order_messages_change_nothing(dropped, cloud, lake):
    """Every message of the run delivered again (completions in reverse order): the catalog is unchanged and
    no second Rekognition job starts."""
    table = cloud.outputs["CatalogTableName"]
    before = _scan(cloud, table)
    jobs_before = cloud.rekognition.job_count()
    sqs, sns = cloud.client("sqs"), cloud.client("sns")
    completions = []
    for key in dropped["keys"]:
        info = lake.head(key)
        sqs.send_message(
            QueueUrl=cloud.outputs["RawVideoQueueUrl"], MessageBody=_s3_event(lake.bucket, key, info.size, info.etag)
        )
        video = dropped["videos"][video_id_for(key)]
        if video["status"] != "INDEXED":
            continue
        summary_key = parse_raw_key(key).summary_key
        s = lake.head(summary_key)
        sqs.send_message(
            QueueUrl=cloud.outputs["SummaryQueueUrl"],
            MessageBody=_s3_event(lake.bucket, summary_key, s.size, s.etag),
        )
        for kind in JobKind:
            completions.append(
                {
                    "JobId": video["jobs"][kind.value]["job_id"],
                    "Status": "SUCCEEDED",
                    "API": API_NAME[kind],
                    "JobTag": video["video_id"],
                    "Timestamp": 1767225600000,
                    "Video": {"S3ObjectName": video["analysed_key"], "S3Bucket": lake.bucket},
                }
            )
    for c in reversed(completions):
        sns.publish(TopicArn=cloud.outputs["RekognitionTopicArn"], Message=json.dumps(c))
    cloud.wait_idle(timeout=120)
    assert cloud.rekognition.job_count() == jobs_before
    assert _scan(cloud, table) == before
    for dlq in ("RawVideoDLQUrl", "CompletionDLQUrl", "SummaryDLQUrl"):
        attrs = sqs.get_queue_attributes(QueueUrl=cloud.outputs[dlq], AttributeNames=["ApproximateNumberOfMessages"])
        assert attrs["Attributes"]["ApproximateNumberOfMessages"] == "0", dlq


class _NoDownload(Lake):
    def download(self, key, path):
        raise AssertionError(f"{key} was downloaded")


class _UnreachableUrls(Lake):
    """Presigned URLs that nothing answers: the probe over HTTP fails, as on a network hiccup."""

    downloads = 0

    def presigned_url(self, key, expires_s=3600):
        return "http://127.0.0.1:9/nowhere.mp4?X-Amz-Signature=secret"

    def download(self, key, path):
        type(self).downloads += 1
        return super().download(key, path)


def _scratch(lake, clip, name):
    """`clip` under an odd key outside media-raw/ (no pipeline event), as analyze sees it."""
    key = f"scratch/{name}"
    lake.upload(clip, key, "video/mp4")
    return RawKey(key, "video", "dropin", "adhoc", "", name), lake.head(key)


def test_a_video_rekognition_takes_as_is_is_probed_in_place_not_downloaded(cloud, lake, clips):
    raw, info = _scratch(lake, clips["h264"], "odd clip +ü 1.mp4")
    svc = get_services(AnalyzeSettings).replaced(lake=_NoDownload(lake.bucket, lake.client))
    analysed_key, probed, transcoded = _prepare(svc, raw, info.etag, info.size)
    assert (analysed_key, transcoded) == (raw.key, False)
    assert (probed.codec, probed.width, probed.height) == ("h264", 320, 240) and probed.rekognition_ready
    assert 4.5 <= probed.duration_s <= 5.2


def test_a_failed_read_over_http_falls_back_to_the_download(cloud, lake, clips):
    raw, info = _scratch(lake, clips["h264"], "fallback.mp4")
    svc = get_services(AnalyzeSettings).replaced(lake=_UnreachableUrls(lake.bucket, lake.client))
    analysed_key, probed, transcoded = _prepare(svc, raw, info.etag, info.size)
    assert (analysed_key, transcoded, probed.codec) == (raw.key, False, "h264")
    assert _UnreachableUrls.downloads == 1


def test_a_rendition_made_by_an_earlier_attempt_is_reused_without_a_download(cloud, lake, clips):
    raw, info = _scratch(lake, clips["webm"], "retried clip.webm")
    svc = get_services(AnalyzeSettings).replaced(lake=_NoDownload(lake.bucket, lake.client))
    with pytest.raises(AssertionError, match="was downloaded"):  # no rendition yet: the original must be fetched
        _prepare(svc, raw, info.etag, info.size)
    lake.upload(clips["h264"], raw.rendition_key, "video/mp4", metadata={"source-etag": info.etag})
    assert _prepare(svc, raw, info.etag, info.size)[::2] == (raw.rendition_key, True)
    assert _prepare(svc, raw, info.etag, info.size)[1].codec == "vp9"
