"""A long video's segmented transcode: a part the media itself cannot give is a verdict, not a retry."""

from __future__ import annotations

from unitkit import VP9, Unit

import cliplake.segments as segments
from cliplake.analyze import analyze_object
from cliplake.contracts import SegmentTask, VideoStatus
from cliplake.lake import video_id_for
from cliplake.media import MediaError
from cliplake.segments import run_part, transcodes
from cliplake.tables import table_key


def test_a_part_the_media_cannot_give_fails_the_video_and_the_other_parts_skip(unit: Unit, monkeypatch):
    ref = unit.drop("long.webm", token="tok-long")
    unit.media.in_place = VP9.__class__(**{**VP9.__dict__, "duration_s": 3600.0})
    assert analyze_object(unit.svc, ref).outcome == "transcoding"
    vid = video_id_for(ref.key)
    transcodes(unit.svc).create(vid, ref.etag, ["v00000.mp4", "v00001.mp4"], [0.0, 60.0])
    encoded = []

    def encode(url, out, start, end):
        encoded.append(start)
        raise MediaError("encoding a segment failed: Invalid data found")

    monkeypatch.setattr(segments, "encode_segment", encode)
    task = SegmentTask(kind="video", bucket=ref.bucket, raw_key=ref.key, etag=ref.etag, index=1, start=60.0)
    result = run_part(unit.svc, task)  # returns: the message is deleted, never redelivered to its DLQ
    reason = "transcoding the part from 60.0 s failed: encoding a segment failed: Invalid data found"
    assert (result.outcome, result.reason) == ("failed", reason)
    video = unit.catalog.videos.get(vid)
    assert video.status == VideoStatus.FAILED and video.reason == reason
    assert unit.sends("fail") == [("fail", "tok-long", ("VideoFailed", reason))]
    assert unit.catalog.stats()["dropin"]["failed"] == 1
    assert "Invalid data" in unit.svc.lake.get_text(table_key("videos", "dropin", "unit", vid))
    first = SegmentTask(kind="video", bucket=ref.bucket, raw_key=ref.key, etag=ref.etag, index=0, start=0.0, end=60.0)
    skipped = run_part(unit.svc, first)  # a part still queued: nothing encoded for a failed transcode
    assert (skipped.outcome, skipped.reason) == ("skipped", "the transcode failed") and encoded == [60.0]
    assert run_part(unit.svc, task).outcome == "skipped" and unit.catalog.stats()["dropin"]["failed"] == 1
