"""analyze: a raw object → probe, maybe transcode, start the jobs; every way it can end."""

from __future__ import annotations

import subprocess

import pytest
from unitkit import UNIT_BATCH, VP9, Unit

from cliplake.adapters.rekognition import Backpressure, InvalidVideo
from cliplake.analyze import analyze_object, chosen_kinds
from cliplake.contracts import JobKind, JobStatus, VideoStatus
from cliplake.lake import FEATURES_METADATA, parse_raw_key, video_id_for
from cliplake.media import MediaError, Unreadable
from cliplake.tables import table_key

ALL = [JobKind.LABELS, JobKind.MODERATION, JobKind.SEGMENTS, JobKind.TEXT]


def test_a_key_outside_the_raw_prefix_is_skipped(unit: Unit):
    result = analyze_object(unit.svc, unit.drop(key="elsewhere/clip.mp4"))
    assert result.outcome == "skipped" and "not a raw media key" in result.reason
    assert unit.rekognition.calls == []


def test_an_object_deleted_before_its_event_is_skipped(unit: Unit):
    ref = unit.drop()
    unit.s3.delete_object(Bucket=ref.bucket, Key=ref.key)
    result = analyze_object(unit.svc, ref)
    assert (result.outcome, result.reason) == ("skipped", "object no longer exists")
    assert unit.catalog.videos.get(video_id_for(ref.key)) is None


def test_an_h264_video_is_analysed_where_it_lies(unit: Unit):
    ref = unit.drop(token="token-1")
    result = analyze_object(unit.svc, ref)
    vid = video_id_for(ref.key)
    assert result.outcome == "started" and set(result.jobs) == {k.value for k in ALL}
    assert unit.media.probed == ["url"]  # probed over a presigned URL: never downloaded
    assert [key for _, key in unit.rekognition.calls] == [ref.key] * 4
    video = unit.catalog.videos.get(vid)
    assert video.status == VideoStatus.ANALYZING and video.batch_id == UNIT_BATCH and not video.transcoded
    assert video.analysed_key == ref.key and video.original_codec == "h264" and video.original_container == "mov"
    assert {k: j.status for k, j in video.jobs.items()} == dict.fromkeys(ALL, JobStatus.IN_PROGRESS)
    assert video.job_slots == 4 and unit.catalog.slots.in_flight() == 4
    assert unit.catalog.videos.video_for_job(result.jobs["text"]) == vid
    assert unit.catalog.stats()["dropin"] == {"raw": 1, "processed": 0, "failed": 0}
    assert [s[0] for s in unit.tokens.sent] == ["heartbeat"]  # its batch item hears the analysis started


def test_a_redelivered_event_starts_nothing_twice(unit: Unit):
    ref = unit.drop()
    first = analyze_object(unit.svc, ref)
    again = analyze_object(unit.svc, ref)
    assert first.outcome == "started"
    assert (again.outcome, again.reason) == ("skipped", "analysis already running")
    assert len(unit.rekognition.calls) == 4 and unit.catalog.slots.in_flight() == 4
    assert unit.catalog.stats()["dropin"]["raw"] == 1  # counted once


def test_a_retry_announces_the_jobs_that_finished_unrecorded(unit: Unit):
    ref = unit.drop()
    jobs = analyze_object(unit.svc, ref).jobs
    unit.rekognition.statuses[jobs["labels"]] = ("SUCCEEDED", "")
    unit.rekognition.statuses[jobs["text"]] = ("FAILED", "the text model crashed")
    result = analyze_object(unit.svc, ref)
    assert result.outcome == "reconciled" and result.jobs == {"labels": jobs["labels"], "text": jobs["text"]}
    published = {m["JobId"]: m for m in unit.topic.published}
    assert set(published) == {jobs["labels"], jobs["text"]}
    labels, text = published[jobs["labels"]], published[jobs["text"]]
    assert labels["Status"] == "SUCCEEDED" and labels["API"] == "StartLabelDetection" and "Message" not in labels
    assert labels["JobTag"] == video_id_for(ref.key) and labels["Video"] == {"S3ObjectName": ref.key,
                                                                           "S3Bucket": ref.bucket}  # fmt: skip
    assert text["Status"] == "FAILED" and text["Message"] == "the text model crashed"


def test_a_video_already_done_is_left_alone(unit: Unit):
    ref = unit.drop()
    analyze_object(unit.svc, ref)
    unit.catalog.videos.set_status(video_id_for(ref.key), VideoStatus.INDEXED)
    result = analyze_object(unit.svc, ref)
    assert (result.outcome, result.reason) == ("skipped", "already indexed")


def test_a_version_superseded_meanwhile_is_left_to_its_own_event(unit: Unit, monkeypatch):
    ref = unit.drop()
    videos = unit.catalog.videos
    register = videos.register

    def register_then_newer(vid, *args, **kwargs):  # a newer version lands between our head and our read
        register(vid, *args, **kwargs)
        videos.set_status(vid, VideoStatus.RECEIVED, raw_etag="a-newer-etag")

    monkeypatch.setattr(videos, "register", register_then_newer)
    result = analyze_object(unit.svc, ref)
    assert (result.outcome, result.reason) == ("skipped", "superseded by a newer version")
    assert unit.rekognition.calls == []


def test_a_new_version_of_a_known_key_is_analysed_afresh(unit: Unit):
    ref = unit.drop()
    analyze_object(unit.svc, ref)
    unit.catalog.videos.mark_failed(video_id_for(ref.key), "dropin", "old version was broken")
    newer = unit.drop(key=ref.key, body=b"another version")
    result = analyze_object(unit.svc, newer)
    video = unit.catalog.videos.get(video_id_for(ref.key))
    assert result.outcome == "started" and video.raw_etag == newer.etag and video.reason == ""
    assert unit.catalog.stats()["dropin"]["raw"] == 1  # the same video, counted once


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ("labels, text", [JobKind.LABELS, JobKind.TEXT]),
        ("bogus", ALL),  # unreadable: the stack's features
        ("", ALL),
    ],
)
def test_the_campaign_narrows_the_analyses(unit: Unit, metadata, expected):
    ref = unit.drop(metadata={FEATURES_METADATA: metadata} if metadata else {})
    result = analyze_object(unit.svc, ref)
    assert [JobKind(k) for k in result.jobs] == expected
    assert unit.catalog.slots.in_flight() == len(expected)


def test_features_outside_the_stack_leave_the_stack_choice():
    assert chosen_kinds(["labels", "segments"], "text") == [JobKind.LABELS, JobKind.SEGMENTS]
    assert chosen_kinds(["labels", "segments"], "segments,text") == [JobKind.SEGMENTS]


def test_at_the_quota_the_message_backs_off_and_a_later_retry_starts(unit: Unit):
    unit.svc.settings.max_jobs_in_flight = 6
    first, second = unit.drop("a.mp4"), unit.drop("b.mp4")
    assert analyze_object(unit.svc, first).outcome == "started"
    with pytest.raises(Backpressure, match="6 Rekognition jobs in flight"):
        analyze_object(unit.svc, second)
    assert unit.catalog.slots.in_flight() == 4 and len(unit.rekognition.calls) == 4  # nothing of the second started
    waiting = unit.catalog.videos.get(video_id_for(second.key))
    assert waiting.jobs == {} and waiting.status == VideoStatus.RECEIVED  # not analysing while it waits for slots
    unit.catalog.slots.release(video_id_for(first.key), 4)  # the first video's jobs ended
    assert analyze_object(unit.svc, second).outcome == "started"
    assert unit.catalog.slots.in_flight() == 4


def test_rekognition_throttling_propagates_and_the_retry_reuses_the_started_jobs(unit: Unit):
    ref = unit.drop()
    unit.rekognition.refuse[JobKind.SEGMENTS] = Backpressure("StartSegmentDetection: LimitExceededException")
    with pytest.raises(Backpressure):
        analyze_object(unit.svc, ref)
    assert unit.catalog.videos.get(video_id_for(ref.key)).jobs == {}  # nothing recorded: the retry reconciles
    del unit.rekognition.refuse[JobKind.SEGMENTS]
    result = analyze_object(unit.svc, ref)
    assert result.outcome == "started" and unit.catalog.slots.in_flight() == 4  # the slots were held once
    assert result.jobs["labels"] == f"labels-{video_id_for(ref.key)}-{ref.etag}"


def test_a_video_rekognition_refuses_fails_with_its_reason(unit: Unit):
    ref = unit.drop(token="tok-refused")
    unit.rekognition.refuse[JobKind.MODERATION] = InvalidVideo("Rekognition refused the video: too short")
    result = analyze_object(unit.svc, ref)
    vid = video_id_for(ref.key)
    assert (result.outcome, result.reason) == ("failed", "Rekognition refused the video: too short")
    video = unit.catalog.videos.get(vid)
    assert video.status == VideoStatus.FAILED and video.reason == result.reason and video.job_slots is None
    assert unit.catalog.slots.in_flight() == 0  # its slots were given back
    assert unit.sends("fail") == [("fail", "tok-refused", ("VideoFailed", result.reason))]
    row = unit.svc.lake.get_text(table_key("videos", "dropin", "unit", vid))
    assert '"status":"FAILED"' in row and "too short" in row
    assert unit.catalog.stats()["dropin"]["failed"] == 1


def test_a_refusal_beside_throttling_fails_the_video_rather_than_retrying_it(unit: Unit):
    ref = unit.drop()  # the jobs start at once: one throttled, one refused; retrying would be futile
    unit.rekognition.refuse[JobKind.LABELS] = Backpressure("StartLabelDetection: ThrottlingException")
    unit.rekognition.refuse[JobKind.TEXT] = InvalidVideo("Rekognition refused the video: too short")
    result = analyze_object(unit.svc, ref)
    assert (result.outcome, result.reason) == ("failed", "Rekognition refused the video: too short")
    assert sorted(kind.value for kind, _ in unit.rekognition.calls) == sorted(k.value for k in JobKind)
    assert unit.catalog.videos.get(video_id_for(ref.key)).status == VideoStatus.FAILED


def test_a_file_that_is_no_video_fails_once_with_a_readable_reason(unit: Unit):
    ref = unit.drop("notes.mp4", token="tok-notes")
    unit.media.in_place = MediaError("no video stream in the file")
    result = analyze_object(unit.svc, ref)
    again = analyze_object(unit.svc, ref)  # redelivered
    assert (result.outcome, result.reason) == ("failed", "no video stream in the file")
    assert (again.outcome, again.reason) == ("skipped", "already failed")
    assert unit.catalog.stats()["dropin"]["failed"] == 1 and unit.rekognition.calls == []
    assert unit.sends("fail") == [("fail", "tok-notes", ("VideoFailed", "no video stream in the file"))]


@pytest.mark.parametrize("failure", [Unreadable("could not read the header"), subprocess.TimeoutExpired("ffmpeg", 15)])
def test_a_header_unreadable_over_http_is_probed_after_a_download(unit: Unit, failure):
    ref = unit.drop()
    unit.media.in_place = failure
    result = analyze_object(unit.svc, ref)
    assert result.outcome == "started" and unit.media.probed == ["url", "local"]
    assert unit.media.transcoded == []  # H.264 already: analysed as it is
    assert unit.catalog.videos.get(video_id_for(ref.key)).analysed_key == ref.key


def test_a_download_that_is_no_video_fails(unit: Unit):
    ref = unit.drop()
    unit.media.in_place, unit.media.local = Unreadable("over HTTP"), Unreadable("moov atom not found")
    result = analyze_object(unit.svc, ref)
    assert (result.outcome, result.reason) == ("failed", "moov atom not found")


def test_a_vp9_video_is_transcoded_once_and_its_rendition_analysed(unit: Unit):
    ref = unit.drop("clip.webm", body=b"vp9 bytes")
    unit.media.in_place = unit.media.local = VP9
    result = analyze_object(unit.svc, ref)
    raw = parse_raw_key(ref.key)
    assert result.outcome == "started" and len(unit.media.transcoded) == 1
    rendition = unit.svc.lake.head(raw.rendition_key)
    assert rendition.metadata["source-etag"] == ref.etag and rendition.content_type == "video/mp4"
    video = unit.catalog.videos.get(raw.video_id)
    assert video.analysed_key == raw.rendition_key and video.transcoded and video.original_codec == "vp9"
    assert {key for _, key in unit.rekognition.calls} == {raw.rendition_key}


def test_a_retry_finds_the_rendition_made_and_downloads_nothing(unit: Unit):
    ref = unit.drop("clip.webm")
    unit.media.in_place = unit.media.local = VP9
    unit.rekognition.refuse[JobKind.LABELS] = Backpressure("throttled")
    with pytest.raises(Backpressure):
        analyze_object(unit.svc, ref)
    del unit.rekognition.refuse[JobKind.LABELS]
    unit.media.probed.clear()
    result = analyze_object(unit.svc, ref)
    assert result.outcome == "started" and len(unit.media.transcoded) == 1  # not transcoded again
    assert unit.media.probed == ["url"]  # nor downloaded


def test_a_rendition_of_another_version_is_made_again(unit: Unit):
    ref = unit.drop("clip.webm")
    raw = parse_raw_key(ref.key)
    unit.s3.put_object(Bucket=ref.bucket, Key=raw.rendition_key, Body=b"old", Metadata={"source-etag": "older"})
    unit.media.in_place = unit.media.local = VP9
    assert analyze_object(unit.svc, ref).outcome == "started"
    assert unit.svc.lake.head(raw.rendition_key).metadata["source-etag"] == ref.etag


def test_an_original_probed_locally_as_h264_is_not_transcoded(unit: Unit):
    ref = unit.drop("clip.webm")
    unit.media.in_place = Unreadable("over HTTP")
    result = analyze_object(unit.svc, ref)  # the local probe says H.264/MP4 after all
    assert result.outcome == "started" and unit.media.transcoded == []


def test_a_long_video_to_transcode_fans_out_to_segments(unit: Unit):
    ref = unit.drop("long.webm", token="token-1")
    unit.media.in_place = VP9.__class__(**{**VP9.__dict__, "duration_s": 3600.0})
    result = analyze_object(unit.svc, ref)
    assert (result.outcome, result.reason) == ("transcoding", "3 segment tasks queued")
    assert unit.media.fanned_out == [ref.key] and unit.rekognition.calls == []
    video = unit.catalog.videos.get(video_id_for(ref.key))
    assert video.status == VideoStatus.RECEIVED and video.transcode == "segments" and video.original_codec == "vp9"
    assert unit.catalog.slots.in_flight() == 0  # no slot held while the segments transcode
    assert [s[0] for s in unit.tokens.sent] == ["heartbeat"]


def test_a_retry_announces_only_the_jobs_still_unrecorded(unit: Unit):
    ref = unit.drop()
    jobs = analyze_object(unit.svc, ref).jobs
    unit.catalog.videos.complete_job(video_id_for(ref.key), JobKind.LABELS, jobs["labels"], JobStatus.SUCCEEDED, "")
    for job in jobs.values():
        unit.rekognition.statuses[job] = ("SUCCEEDED", "")
    result = analyze_object(unit.svc, ref)
    assert result.outcome == "reconciled" and set(result.jobs) == {"moderation", "segments", "text"}
    assert jobs["labels"] not in {m["JobId"] for m in unit.topic.published}  # finalize has it already


def test_a_download_finds_the_rendition_a_previous_attempt_made(unit: Unit):
    ref = unit.drop("clip.webm")
    raw = parse_raw_key(ref.key)
    unit.s3.put_object(Bucket=ref.bucket, Key=raw.rendition_key, Body=b"made", Metadata={"source-etag": ref.etag})
    unit.media.in_place, unit.media.local = Unreadable("over HTTP"), VP9
    result = analyze_object(unit.svc, ref)
    assert result.outcome == "started" and unit.media.transcoded == []
    assert unit.catalog.videos.get(raw.video_id).analysed_key == raw.rendition_key
