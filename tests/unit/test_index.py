"""index: a summary in the lake → the catalog (label and text search, counters) and the tables; re-indexing."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from unitkit import BUCKET, Unit

from cliplake.analyze import analyze_object
from cliplake.contracts import JobKind, ObjectRef, TextLine, TopLabel, VideoStatus, VideoSummary
from cliplake.finalize import finalize_completion
from cliplake.index import InvalidSummary, index_summary
from cliplake.lake import parse_raw_key, video_id_for
from cliplake.tables import table_key

ALL = [JobKind.LABELS, JobKind.MODERATION, JobKind.SEGMENTS, JobKind.TEXT]


def labels_document(*labels: tuple[str, float]) -> dict:
    return {"JobStatus": "SUCCEEDED", "Labels": [
        {"Timestamp": 0, "StartTimestampMillis": 0, "EndTimestampMillis": 1500,
         "Label": {"Name": name, "Confidence": conf, "Parents": [], "Categories": []}} for name, conf in labels
    ]}  # fmt: skip


TEXT = {"JobStatus": "SUCCEEDED", "TextDetections": [
    {"Timestamp": 500, "TextDetection": {"DetectedText": "Lantern Parade", "Type": "LINE", "Confidence": 97.0}},
]}  # fmt: skip


@pytest.fixture
def summarized(unit: Unit) -> ObjectRef:
    """A video analysed and finalized in this world: its summary's object reference (its token is `tok`)."""
    ref = unit.drop(token="tok")
    analyze_object(unit.svc, ref)
    jobs = unit.catalog.videos.get(video_id_for(ref.key)).jobs
    unit.rekognition.documents[jobs[JobKind.LABELS].job_id] = labels_document(("Cat", 91.5), ("Lamp", 64.25))
    unit.rekognition.documents[jobs[JobKind.TEXT].job_id] = TEXT
    for kind in ALL:
        result = finalize_completion(unit.svc, unit.completion(ref, kind))
    unit.tokens.sent.clear()
    return ObjectRef(bucket=BUCKET, key=result.summary_key)


def put_summary(unit: Unit, ref: ObjectRef, change) -> None:
    summary = VideoSummary.model_validate_json(unit.svc.lake.get_text(ref.key))
    change(summary)
    unit.svc.lake.put_json(ref.key, summary.model_dump_json())


def hits(unit: Unit, label: str, floor: float = 0.0) -> list[tuple[str, float]]:
    return [(h["video_id"], h["confidence"]) for h in unit.catalog.labels.search(label, floor).items]


def test_a_key_that_is_no_summary_is_skipped(unit: Unit):
    result = index_summary(unit.svc, ObjectRef(bucket=BUCKET, key="media-processed/clip.rekognition/labels.json"))
    assert result.outcome == "skipped" and result.reason


def test_a_summary_deleted_before_its_event_is_skipped(unit: Unit):
    result = index_summary(unit.svc, ObjectRef(bucket=BUCKET, key="media-processed/video/dropin/c/t/x_labels.json"))
    assert (result.outcome, result.reason) == ("skipped", "summary no longer exists")


def test_a_summary_that_breaks_the_contract_goes_to_the_dead_letter_queue(unit: Unit):
    key = "media-processed/video/dropin/unit/20260101_000000/bad_labels.json"
    unit.svc.lake.put_json(key, {"video_id": "v1", "labels": "not a list"})
    with pytest.raises(InvalidSummary, match=r"invalid summary .*bad_labels.json: \d+ errors"):
        index_summary(unit.svc, ObjectRef(bucket=BUCKET, key=key))


def test_a_summary_is_indexed_searchable_counted_and_its_batch_item_completed(unit: Unit, summarized):
    result = index_summary(unit.svc, summarized)
    vid = result.video_id
    assert result.outcome == "indexed"
    video = unit.catalog.videos.get(vid)
    assert video.status == VideoStatus.INDEXED and video.summary_key == summarized.key and video.indexed_at
    assert [t.name for t in video.top_labels] == ["Cat", "Lamp"] and video.label_scores == {"Cat": 91.5, "Lamp": 64.25}
    assert video.text_words == ["lantern", "parade"] and video.text_lines == 1
    assert hits(unit, "cat", 91.5) == [(vid, 91.5)] and hits(unit, "CAT", 91.6) == []
    assert [h["line"] for h in unit.catalog.text.search("LANTERN").items] == ["Lantern Parade"]
    assert unit.catalog.stats()["dropin"] == {"raw": 1, "processed": 1, "failed": 0}
    assert unit.sends("succeed") == [("succeed", "tok", {"video_id": vid, "status": "INDEXED",
                                                         "top_labels": ["Cat", "Lamp"]})]  # fmt: skip
    row = json.loads(unit.svc.lake.get_text(table_key("videos", "dropin", "unit", vid)))
    assert row["status"] == "INDEXED"


def test_indexing_the_same_summary_again_changes_nothing(unit: Unit, summarized):
    first = index_summary(unit.svc, summarized)
    before = unit.catalog.get_video(first.video_id)
    again = index_summary(unit.svc, summarized)
    assert again.outcome == "unchanged"
    assert unit.catalog.get_video(first.video_id) == before
    assert unit.catalog.stats()["dropin"]["processed"] == 1 and len(unit.sends("succeed")) == 1


def test_a_changed_summary_moves_the_search_items(unit: Unit, summarized):
    vid = index_summary(unit.svc, summarized).video_id

    def change(summary: VideoSummary) -> None:
        summary.labels = [s.model_copy(update={"max_confidence": 70.0}) for s in summary.labels if s.name == "Cat"]
        summary.top_labels = [TopLabel(name="Cat", max_confidence=70.0, total_ms=1500, segments=1)]
        summary.text = [TextLine(text="Night Market", start_ms=0, end_ms=1000, confidence=90.0)]

    put_summary(unit, summarized, change)
    result = index_summary(unit.svc, summarized)
    assert result.outcome == "indexed"
    assert hits(unit, "cat") == [(vid, 70.0)]  # its old sort key (91.50) is gone
    assert hits(unit, "lamp") == []
    assert unit.catalog.text.search("lantern").items == []
    assert [h["video_id"] for h in unit.catalog.text.search("market").items] == [vid]
    assert unit.catalog.stats()["dropin"]["processed"] == 1  # still one video


def test_a_summary_indexed_before_its_status_arrives_still_indexes(unit: Unit, summarized):
    vid = video_id_for(parse_raw_key(json.loads(unit.svc.lake.get_text(summarized.key))["raw_key"]).key)
    unit.catalog.videos.set_status(vid, VideoStatus.ANALYZING)  # finalize's status write not seen yet
    assert index_summary(unit.svc, summarized).outcome == "indexed"
    assert unit.catalog.videos.get(vid).status == VideoStatus.INDEXED


def test_a_token_that_could_not_be_sent_is_sent_by_the_redelivery(unit: Unit, summarized):
    unit.tokens.broken = True
    with pytest.raises(ClientError):
        index_summary(unit.svc, summarized)
    vid = video_id_for(json.loads(unit.svc.lake.get_text(summarized.key))["raw_key"])
    assert unit.catalog.tasks.get(vid).open  # reopened: the retry completes it
    unit.tokens.broken = False
    assert index_summary(unit.svc, summarized).outcome == "unchanged"
    assert [s[:2] for s in unit.sends("succeed")] == [("succeed", "tok")]
    assert not unit.catalog.tasks.get(vid).open
