from datetime import UTC, datetime

import pytest

from cliplake.adapters.s3 import Lake, s3_client
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


@pytest.mark.parametrize("region", ["us-east-1", "eu-south-2"])
def test_presigned_urls_are_sigv4_on_the_buckets_regional_host(monkeypatch, region):
    """botocore presigns with SigV2 by default, which newer regions (eu-south-2, 2022) reject."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    url = Lake("cliplake-media", s3_client(region_name=region)).presigned_url("media-raw/a b+ü.mp4", 60)
    host = "s3.amazonaws.com" if region == "us-east-1" else f"s3.{region}.amazonaws.com"
    assert url.startswith(f"https://cliplake-media.{host}/media-raw/a%20b%2B%C3%BC.mp4?"), url
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and f"%2F{region}%2Fs3%2Faws4_request" in url
    assert "AWSAccessKeyId=" not in url
