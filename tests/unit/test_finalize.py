"""finalize: Rekognition completions, in any order, more than once, stale or unknown → the summary or a failure."""

from __future__ import annotations

import json

import pytest
from unitkit import Unit

from cliplake.analyze import analyze_object
from cliplake.contracts import JobKind, JobStatus, RekognitionCompletion, VideoStatus, VideoSummary
from cliplake.finalize import UnknownJob, finalize_completion
from cliplake.lake import FEATURES_METADATA, parse_raw_key, video_id_for
from cliplake.tables import table_key

ALL = [JobKind.LABELS, JobKind.MODERATION, JobKind.SEGMENTS, JobKind.TEXT]
LABELS = {
    "JobStatus": "SUCCEEDED",
    "LabelModelVersion": "3.0",
    "VideoMetadata": {
        "Codec": "h264",
        "DurationMillis": 4000,
        "Format": "QuickTime / MOV",
        "FrameRate": 25.0,
        "FrameHeight": 240,
        "FrameWidth": 320,
    },
    "Labels": [
        {
            "Timestamp": 0,
            "StartTimestampMillis": 0,
            "EndTimestampMillis": 2000,
            "Label": {"Name": "Cat", "Confidence": 91.5, "Parents": [], "Categories": []},
        }
    ],
}


@pytest.fixture
def started(unit: Unit):
    """A video whose four jobs analyze started; its batch item's token is `tok`."""
    ref = unit.drop(token="tok")
    analyze_object(unit.svc, ref)
    unit.rekognition.documents[unit.catalog.videos.get(video_id_for(ref.key)).jobs[JobKind.LABELS].job_id] = LABELS
    unit.tokens.sent.clear()
    return ref


def test_a_completion_of_another_api_is_ignored(unit: Unit, started):
    completion = unit.completion(started, JobKind.LABELS).model_copy(update={"API": "StartFaceDetection"})
    result = finalize_completion(unit.svc, completion)
    assert (result.outcome, result.reason) == ("ignored", "not a cliplake job API: StartFaceDetection")


def test_a_job_nobody_knows_is_retried_until_the_dead_letter_queue(unit: Unit):
    completion = RekognitionCompletion.model_validate(
        {
            "JobId": "j-unknown",
            "Status": "SUCCEEDED",
            "API": "LABEL_DETECTION",
            "Video": {"S3ObjectName": "media-raw/x.mp4", "S3Bucket": "b"},
        }
    )
    with pytest.raises(UnknownJob, match="no video known for job j-unknown"):
        finalize_completion(unit.svc, completion)
    with pytest.raises(UnknownJob):  # a tag naming no video
        finalize_completion(unit.svc, completion.model_copy(update={"JobTag": "vnosuchvideo"}))


def test_each_completion_waits_for_the_others_and_the_last_writes_the_summary(unit: Unit, started):
    vid, raw = video_id_for(started.key), parse_raw_key(started.key)
    outcomes = [finalize_completion(unit.svc, unit.completion(started, kind)).outcome for kind in reversed(ALL)]
    assert outcomes == ["waiting", "waiting", "waiting", "summarized"]  # out of order: text first, labels last
    for kind in ALL:
        assert unit.svc.lake.get_json(raw.job_result_key(kind.value)) is not None
    summary = VideoSummary.model_validate_json(unit.svc.lake.get_text(raw.summary_key))
    assert summary.video_id == vid and [t.name for t in summary.top_labels] == ["Cat"]
    assert set(summary.provenance.jobs) == set(ALL) and summary.video.width == 320
    assert summary.provenance.jobs[JobKind.LABELS].job_id == unit.completion(started, JobKind.LABELS).JobId
    video = unit.catalog.videos.get(vid)
    assert video.status == VideoStatus.SUMMARIZED and video.summary_key == raw.summary_key
    assert all(j.status == JobStatus.SUCCEEDED for j in video.jobs.values())
    assert unit.catalog.slots.in_flight() == 0 and video.job_slots is None
    assert [s[0] for s in unit.tokens.sent] == ["heartbeat"] * 3  # the token is the index stage's to complete


def test_a_completion_without_its_tag_is_found_by_its_job(unit: Unit, started):
    result = finalize_completion(unit.svc, unit.completion(started, JobKind.TEXT, tag=False))
    assert result.outcome == "waiting" and result.video_id == video_id_for(started.key)
    assert unit.catalog.videos.get(result.video_id).jobs[JobKind.TEXT].status == JobStatus.SUCCEEDED


def test_a_redelivered_completion_before_the_index_writes_the_summary_again(unit: Unit, started):
    for kind in ALL:
        finalize_completion(unit.svc, unit.completion(started, kind))
    again = finalize_completion(unit.svc, unit.completion(started, JobKind.TEXT))
    assert again.outcome == "summarized"  # SUMMARIZED may mean the summary was never written (a crash)


@pytest.mark.parametrize("done", [VideoStatus.INDEXED, VideoStatus.FAILED])
def test_a_duplicate_completion_of_a_finished_video_changes_nothing(unit: Unit, started, done):
    for kind in ALL:
        finalize_completion(unit.svc, unit.completion(started, kind))
    unit.catalog.videos.set_status(video_id_for(started.key), done)
    before = unit.svc.lake.head(parse_raw_key(started.key).summary_key).etag
    result = finalize_completion(unit.svc, unit.completion(started, JobKind.LABELS))
    assert (result.outcome, result.reason) == ("duplicate", f"video already {done.value.lower()}")
    assert unit.svc.lake.head(parse_raw_key(started.key).summary_key).etag == before


def test_a_completion_of_a_superseded_job_is_stale(unit: Unit, started):
    result = finalize_completion(unit.svc, unit.completion(started, JobKind.LABELS, job_id="labels-an-older-job"))
    assert (result.outcome, result.reason) == ("stale", "completion of a superseded job")
    video = unit.catalog.videos.get(video_id_for(started.key))
    assert video.jobs[JobKind.LABELS].status == JobStatus.IN_PROGRESS


def test_a_failed_job_fails_the_video_once_with_rekognitions_reason(unit: Unit, started):
    vid = video_id_for(started.key)
    job = unit.completion(started, JobKind.MODERATION).JobId
    unit.rekognition.statuses[job] = ("FAILED", "unsupported codec profile")
    finalize_completion(unit.svc, unit.completion(started, JobKind.LABELS))
    result = finalize_completion(unit.svc, unit.completion(started, JobKind.MODERATION, "FAILED"))
    assert (result.outcome, result.reason) == ("failed", "moderation job FAILED: unsupported codec profile")
    video = unit.catalog.videos.get(vid)
    assert video.status == VideoStatus.FAILED and video.reason == result.reason
    assert unit.catalog.slots.in_flight() == 0 and unit.catalog.stats()["dropin"]["failed"] == 1
    assert unit.sends("fail") == [("fail", "tok", ("VideoFailed", result.reason))]
    row = json.loads(unit.svc.lake.get_text(table_key("videos", "dropin", "unit", vid)))
    assert row["status"] == "FAILED" and row["reason"] == result.reason
    late = finalize_completion(unit.svc, unit.completion(started, JobKind.MODERATION, "FAILED"))
    assert late.outcome == "duplicate"  # the same failure again: nothing counted, nothing sent
    assert unit.catalog.stats()["dropin"]["failed"] == 1 and len(unit.sends("fail")) == 1


@pytest.mark.parametrize(
    ("message", "reason"), [("from the completion", "from the completion"), (None, "no reason given")]
)
def test_a_failure_rekognition_gives_no_reason_for_takes_the_completions(unit: Unit, started, message, reason):
    result = finalize_completion(unit.svc, unit.completion(started, JobKind.SEGMENTS, "FAILED", message=message))
    assert (result.outcome, result.reason) == ("failed", f"segments job FAILED: {reason}")


def test_a_video_of_fewer_analyses_is_summarized_when_they_are_done(unit: Unit):
    ref = unit.drop(metadata={FEATURES_METADATA: "labels"})
    analyze_object(unit.svc, ref)
    result = finalize_completion(unit.svc, unit.completion(ref, JobKind.LABELS))
    assert result.outcome == "summarized"
    summary = VideoSummary.model_validate_json(unit.svc.lake.get_text(result.summary_key))
    assert set(summary.provenance.jobs) == {JobKind.LABELS}
