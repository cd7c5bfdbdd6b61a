"""The catalog's stores: what their conditional writes guarantee, and cursor paging."""

from __future__ import annotations

import pytest
from unitkit import Unit

from cliplake.adapters.dynamo import decode_cursor
from cliplake.contracts import Attribution, VideoStatus


def register(unit: Unit, vid: str, campaign: str = "c", etag: str = "e1") -> bool:
    return unit.catalog.videos.register(vid, f"media-raw/video/dropin/{campaign}/20260101_000000/{vid}.mp4", etag, 10,
                                        "dropin", campaign, f"{vid}.mp4", Attribution(title=vid))  # fmt: skip


def test_a_video_fails_and_is_counted_once(unit: Unit):
    register(unit, "v1")
    assert unit.catalog.videos.mark_failed("v1", "dropin", "broken") is True
    assert unit.catalog.videos.mark_failed("v1", "dropin", "broken again") is False
    video = unit.catalog.videos.get("v1")
    assert (video.status, video.reason) == (VideoStatus.FAILED, "broken")
    assert unit.catalog.stats()["dropin"] == {"raw": 1, "processed": 0, "failed": 1}


def test_job_slots_are_held_once_per_video_within_the_bound(unit: Unit):
    slots = unit.catalog.slots
    for vid in ("v1", "v2", "v3"):
        register(unit, vid)
    assert slots.acquire("v1", 3, 6) and slots.acquire("v2", 3, 6)
    assert slots.acquire("v1", 3, 6)  # already held: True again, nothing added
    assert not slots.acquire("v3", 3, 6) and slots.in_flight() == 6  # full
    assert slots.release("v1", 3) and not slots.release("v1", 3)
    assert slots.acquire("v3", 3, 6) and slots.in_flight() == 6
    assert not slots.acquire("nobody", 1, 6)  # no such video: nothing held


def test_a_known_version_registers_nothing_and_a_new_one_resets_the_record(unit: Unit):
    assert register(unit, "v1") is True
    unit.catalog.videos.set_status("v1", VideoStatus.ANALYZING, analysed_key="k")
    assert register(unit, "v1") is False and unit.catalog.videos.get("v1").status == VideoStatus.ANALYZING
    assert register(unit, "v1", etag="e2") is False
    video = unit.catalog.videos.get("v1")
    assert (video.status, video.raw_etag, video.jobs) == (VideoStatus.RECEIVED, "e2", {})
    assert unit.catalog.stats()["dropin"]["raw"] == 1


def test_a_status_guard_keeps_an_indexed_video_indexed(unit: Unit):
    register(unit, "v1")
    unit.catalog.videos.set_status("v1", VideoStatus.INDEXED)
    assert not unit.catalog.videos.set_status("v1", VideoStatus.SUMMARIZED, unless=VideoStatus.INDEXED)
    assert unit.catalog.videos.get("v1").status == VideoStatus.INDEXED


def test_listing_pages_on_with_a_cursor_newest_first(unit: Unit):
    for i in range(5):
        register(unit, f"v{i}", campaign="paged")
    seen, cursor = [], ""
    while True:
        page, cursor = unit.catalog.videos.listed(campaign="paged", limit=2, cursor=cursor)
        seen += [v.video_id for v in page]
        if not cursor:
            break
    assert seen == ["v4", "v3", "v2", "v1", "v0"]
    assert [v["video_id"] for v in unit.catalog.list_videos(source="dropin", limit=3)] == ["v4", "v3", "v2"]
    with pytest.raises(ValueError, match="not a cursor"):
        decode_cursor("%%%")


def test_the_operator_view_is_the_stored_item(unit: Unit):
    register(unit, "v1", campaign="view")
    item = unit.catalog.get_video("v1")
    assert item["bytes"] == 10 and item["gsi1pk"].endswith("view") and "summary_key" not in item
    assert unit.catalog.get_video("nobody") is None and unit.catalog.get_task("nobody") is None
