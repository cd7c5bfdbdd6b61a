"""Merging Rekognition result documents into the summary (pure functions, AWS response shapes)."""

import pytest

from cliplake.contracts import JobKind
from cliplake.summarize import build_summary, label_segments, moderation_findings, shots_and_cues, top_labels


def label(ts, name, conf, start=None, end=None, parents=(), cats=()):
    item = {
        "Timestamp": ts,
        "Label": {
            "Name": name,
            "Confidence": conf,
            "Instances": [],
            "Parents": [{"Name": p} for p in parents],
            "Aliases": [],
            "Categories": [{"Name": c} for c in cats],
        },
    }
    if start is not None:
        item |= {"StartTimestampMillis": start, "EndTimestampMillis": end, "DurationMillis": end - start}
    return item


def test_timestamps_merge_into_segments_and_gaps_split_them():
    items = [label(t, "Dog", 80 + t / 1000, parents=["Animal"]) for t in (0, 500, 1000, 1500)]
    items += [label(t, "Dog", 70) for t in (6000, 6500)]
    items += [label(500, "Beach", 60, cats=["Nature and Outdoors"])]
    segs = label_segments(items)
    dogs = [s for s in segs if s.name == "Dog"]
    assert [(s.start_ms, s.end_ms) for s in dogs] == [(0, 1500), (6000, 6500)]
    assert dogs[0].max_confidence == 81.5 and dogs[0].parents == ["Animal"]
    top = top_labels(segs)
    assert [t.name for t in top] == ["Dog", "Beach"]
    assert top[0].total_ms == 2000 and top[0].segments == 2


def test_segment_aggregated_results_are_kept():
    segs = label_segments([label(0, "Cat", 90, 0, 4000), label(9000, "Cat", 85, 9000, 12000)])
    assert [(s.start_ms, s.end_ms) for s in segs] == [(0, 4000), (9000, 12000)]


def test_moderation_and_segments():
    mods = moderation_findings(
        [
            {"Timestamp": t, "ModerationLabel": {"Name": "Suggestive", "ParentName": "", "TaxonomyLevel": 1,
                                                 "Confidence": 60 + t / 100}}
            for t in (1000, 1500, 2000)
        ]
    )  # fmt: skip
    assert len(mods) == 1 and (mods[0].start_ms, mods[0].end_ms) == (1000, 2000) and mods[0].confidence == 80
    shots, cues = shots_and_cues(
        [
            {"Type": "SHOT", "StartTimestampMillis": 0, "EndTimestampMillis": 2000,
             "StartTimecodeSMPTE": "00:00:00:00", "EndTimecodeSMPTE": "00:00:02:00",
             "ShotSegment": {"Index": 0, "Confidence": 99.1}, "StartFrameNumber": 0, "EndFrameNumber": 49},
            {"Type": "TECHNICAL_CUE", "StartTimestampMillis": 2000, "EndTimestampMillis": 3000,
             "StartTimecodeSMPTE": "00:00:02:00", "EndTimecodeSMPTE": "00:00:03:00",
             "TechnicalCueSegment": {"Type": "BlackFrames", "Confidence": 97.0}},
        ]
    )  # fmt: skip
    assert shots[0].end_frame == 49 and cues[0].type == "BlackFrames"


def test_build_summary_carries_attribution_and_provenance():
    video = {
        "video_id": "vabc",
        "raw_key": "media-raw/video/wikimedia/travel/20260101_000000/x.webm",
        "raw_etag": "e1",
        "source": "wikimedia",
        "campaign": "travel",
        "filename": "x.webm",
        "transcoded": True,
        "original_codec": "vp9",
        "analysed_key": "media-processed/video/wikimedia/travel/20260101_000000/x_h264.mp4",
        "attribution": {"title": "X", "author": "Ann", "licence": "CC BY-SA 4.0", "source": "wikimedia"},
        "jobs": {"labels": {"job_id": "j1", "status": "SUCCEEDED"}},
    }
    meta = {"Codec": "h264", "DurationMillis": 5000, "Format": "QuickTime / MOV", "FrameRate": 25.0,
            "FrameHeight": 720, "FrameWidth": 1280, "ColorRange": "LIMITED"}  # fmt: skip
    results = {
        JobKind.LABELS: {
            "JobStatus": "SUCCEEDED",
            "VideoMetadata": meta,
            "LabelModelVersion": "3.0",
            "Labels": [label(0, "Tree", 77)],
        },
        JobKind.MODERATION: {"JobStatus": "SUCCEEDED", "ModerationLabels": [], "ModerationModelVersion": "7.0"},
        JobKind.SEGMENTS: {
            "JobStatus": "SUCCEEDED",
            "Segments": [],
            "SelectedSegmentTypes": [{"Type": "SHOT", "ModelVersion": "1.0"}],
        },
    }
    s = build_summary(video, results, "bucket", "2026-01-01T00:00:00Z")
    assert s.video.width == 1280 and s.video.duration_ms == 5000
    assert s.top_labels[0].name == "Tree"
    assert s.attribution.modifications == ["transcoded from vp9 to H.264 for analysis"]
    assert "by Ann" in s.credit_line and "CC BY-SA 4.0" in s.credit_line
    assert s.provenance.jobs[JobKind.LABELS].job_id == "j1"
    assert s.provenance.jobs[JobKind.SEGMENTS].model_version == "SHOT:1.0"
    assert s.provenance.transcoded and s.provenance.analysed_key.endswith("_h264.mp4")


def _line(ts: int, text: str, conf: float = 95.0) -> dict:
    box = {"Width": 0.5, "Height": 0.1, "Left": 0.25, "Top": 0.8}
    return {
        "Timestamp": ts,
        "TextDetection": {
            "DetectedText": text,
            "Type": "LINE",
            "Id": 0,
            "Confidence": conf,
            "Geometry": {"BoundingBox": box},
        },
    }


def test_text_lines_are_stretches_of_time_per_line():
    from cliplake.summarize import text_lines

    word = {"Timestamp": 1000, "TextDetection": {"DetectedText": "Harbour", "Type": "WORD", "Id": 1, "ParentId": 0}}
    items = [_line(1000, "Harbour Lights", 90), word, _line(2000, "Harbour Lights", 97), _line(9000, "Harbour Lights")]
    items.append(_line(2000, "Exit"))
    lines = text_lines(items)
    assert [(t.text, t.start_ms, t.end_ms) for t in lines] == [
        ("Harbour Lights", 1000, 3000),  # seen at 1 s and 2 s, sampled every second
        ("Exit", 2000, 3000),
        ("Harbour Lights", 9000, 10000),  # back much later: a second stretch
    ]
    assert lines[0].confidence == 97 and lines[0].box["Top"] == 0.8


def test_features_are_a_checked_subset():
    from cliplake.settings import RekognitionJobsSettings, parse_features

    assert parse_features(" text, labels ") == ["labels", "text"]
    jobs = RekognitionJobsSettings(features="segments", rekognition_topic_arn="arn:topic", rekognition_role_arn="arn:r")
    assert jobs.feature_kinds == ["segments"]
    for bad in ("", "labels,faces"):
        with pytest.raises(ValueError, match="subset of labels, moderation, segments, text"):
            parse_features(bad)


def test_a_campaign_narrows_the_stacks_features():
    from cliplake.analyze import chosen_kinds
    from cliplake.campaigns import Campaign

    stack = ["labels", "moderation", "segments", "text"]
    assert chosen_kinds(stack, None) == [JobKind(k) for k in stack]
    assert chosen_kinds(stack, "text,labels") == [JobKind.LABELS, JobKind.TEXT]
    assert chosen_kinds(["labels", "segments"], "text,labels") == [JobKind.LABELS]  # never beyond the stack's
    assert chosen_kinds(stack, "faces") == [JobKind(k) for k in stack]  # unreadable metadata: the stack's
    assert Campaign(name="news", features=["text", "labels"]).features == ["labels", "text"]
    with pytest.raises(ValueError, match="subset of"):
        Campaign(name="bad", features=["faces"])
