from datetime import UTC, datetime

import pytest

from cliplake.lake import (
    LakeKeyError,
    batch_timestamp,
    parse_raw_key,
    raw_key,
    safe_filename,
    summary_key_to_raw_stem,
    video_id_for,
)


def test_layout_round_trip():
    key = raw_key("wikimedia", "travel", "Tour Eiffel, été+1.webm", ts="20260101_120000")
    assert key == "media-raw/video/wikimedia/travel/20260101_120000/Tour Eiffel, été+1.webm"
    raw = parse_raw_key(key)
    assert (raw.source, raw.campaign, raw.timestamp) == ("wikimedia", "travel", "20260101_120000")
    assert raw.summary_key == "media-processed/video/wikimedia/travel/20260101_120000/Tour Eiffel, été+1_labels.json"
    assert raw.rendition_key.endswith("Tour Eiffel, été+1_h264.mp4")
    assert raw.job_result_key("labels").endswith("Tour Eiffel, été+1.rekognition/labels.json")
    assert summary_key_to_raw_stem(raw.summary_key) == raw.stem


def test_adhoc_drop_outside_the_layout_is_kept_as_dropin():
    raw = parse_raw_key("media-raw/my clip+1.mov")
    assert (raw.source, raw.campaign, raw.filename) == ("dropin", "adhoc", "my clip+1.mov")
    assert raw.summary_key == "media-processed/my clip+1_labels.json"


@pytest.mark.parametrize("key", ["media-processed/x.mp4", "media-raw/video/", "other/x.mp4"])
def test_non_raw_keys_are_refused(key):
    with pytest.raises(LakeKeyError):
        parse_raw_key(key)


def test_video_id_is_stable_and_tag_safe():
    a = video_id_for("media-raw/a b.mp4")
    assert a == video_id_for("media-raw/a b.mp4") != video_id_for("media-raw/a+b.mp4")
    assert a.isalnum() and len(a) == 21


def test_safe_filename_strips_separators_keeps_unicode():
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("a/b\\c:d<e>#f.mp4") == "c_d_e_f.mp4"
    assert safe_filename("clip ü+1 (b).webm") == "clip ü+1 (b).webm"
    assert safe_filename("Ünïcode clip.webm") == "Ünïcode clip.webm"
    assert safe_filename("") == "video"


def test_batch_timestamp_format():
    assert batch_timestamp(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "20260102_030405"
