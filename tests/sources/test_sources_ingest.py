"""Ingest: real bytes from a local HTTP server streamed into S3 (moto), verified, attributed, retried."""

from __future__ import annotations

import gc
import hashlib
import os
import tracemalloc

import boto3
import pytest
import requests
from sources_testkit import REGION, SAMPLE_MP4, generated_sha1

from cliplake.adapters.s3 import Lake, transfer_config
from cliplake.contracts import Attribution
from cliplake.lake import parse_raw_key, raw_key
from cliplake.sources.ingest import (
    IngestError,
    credits,
    ingest_batch,
    ingest_candidate,
    object_metadata,
)
from cliplake.sources.models import Candidate
from cliplake.sources.planning import plan_batch

TS = "20250101_120000"
MiB = 1024 * 1024


def sample_candidate(url: str, **kw) -> Candidate:
    data = SAMPLE_MP4.read_bytes()
    fields = {
        "source": "wikimedia",
        "source_id": "66554433",
        "title": "Big Buck Bunny — excerpt",
        "author": "Blender Foundation",
        "author_url": "https://www.wikidata.org/wiki/Q1353556",
        "page_url": "https://commons.wikimedia.org/wiki/File:Big_Buck_Bunny.webm",
        "licence": "CC BY 3.0",
        "licence_url": "https://creativecommons.org/licenses/by/3.0/",
        "download_url": url,
        "size": len(data),
        "sha1": hashlib.sha1(data).hexdigest(),
        "mime": "video/mp4",
    }
    return Candidate(**{**fields, **kw})


def test_streams_real_bytes_with_attribution_metadata(s3, media_server, sleeper):
    cand = sample_candidate(f"{media_server.url}/files/big_buck_bunny.mp4")

    key = ingest_candidate(cand, Lake("lake", s3), "travel", TS, requests.Session(), sleep=sleeper)

    assert key == raw_key("wikimedia", "travel", "big_buck_bunny.mp4", TS)
    parsed = parse_raw_key(key)
    assert (parsed.source, parsed.campaign, parsed.timestamp) == ("wikimedia", "travel", TS)
    obj = s3.get_object(Bucket="lake", Key=key)
    assert obj["Body"].read() == SAMPLE_MP4.read_bytes()
    assert obj["ContentType"] == "video/mp4"
    assert Attribution.from_metadata(obj["Metadata"]) == cand.to_attribution()
    assert sleeper.calls == []


def test_file_url_of_a_bundled_sample(s3, sleeper):
    cand = sample_candidate(SAMPLE_MP4.resolve().as_uri(), source="samples", source_id="big_buck_bunny")
    key = ingest_candidate(cand, Lake("lake", s3), "demo", TS, requests.Session(), sleep=sleeper)
    assert key.startswith("media-raw/video/samples/demo/")
    assert s3.head_object(Bucket="lake", Key=key)["ContentLength"] == SAMPLE_MP4.stat().st_size


def test_sha1_mismatch_raises_and_leaves_no_object(s3, media_server, sleeper):
    cand = sample_candidate(f"{media_server.url}/files/big_buck_bunny.mp4", sha1="0" * 40)

    with pytest.raises(IngestError, match="sha1 mismatch") as err:
        ingest_candidate(cand, Lake("lake", s3), "travel", TS, requests.Session(), sleep=sleeper)

    assert (err.value.source, err.value.source_id) == ("wikimedia", "66554433")
    assert s3.list_objects_v2(Bucket="lake").get("KeyCount") == 0
    assert sleeper.calls == []  # a complete body that does not match is not downloaded again


def test_sha1_mismatch_in_a_multipart_upload_aborts_it(s3, media_server, sleeper):
    size = 12 * MiB
    cand = sample_candidate(f"{media_server.url}/gen/{size}", size=size, sha1="f" * 40, source_id="big")

    with pytest.raises(IngestError, match="sha1 mismatch"):
        ingest_candidate(
            cand, Lake("lake", s3), "travel", TS, requests.Session(), sleep=sleeper, config=transfer_config(5 * MiB)
        )

    assert s3.list_objects_v2(Bucket="lake").get("KeyCount") == 0
    assert not s3.list_multipart_uploads(Bucket="lake").get("Uploads")


def test_listed_size_differing_from_the_server_fails_fast(s3, media_server, sleeper):
    cand = sample_candidate(f"{media_server.url}/files/big_buck_bunny.mp4", size=123)
    with pytest.raises(IngestError, match="size mismatch"):
        ingest_candidate(cand, Lake("lake", s3), "travel", TS, requests.Session(), sleep=sleeper)


def test_transient_failures_are_retried_honouring_retry_after(s3, media_server, sleeper):
    cand = sample_candidate(f"{media_server.url}/files/big_buck_bunny.mp4?fail=2")

    key = ingest_candidate(cand, Lake("lake", s3), "travel", TS, requests.Session(), sleep=sleeper)

    assert sleeper.calls == [1.0, 1.0]  # Retry-After: 1 on each 503
    assert s3.head_object(Bucket="lake", Key=key)["ContentLength"] == SAMPLE_MP4.stat().st_size


def test_retries_then_ingest_error(s3, media_server, sleeper):
    cand = sample_candidate(f"{media_server.url}/files/big_buck_bunny.mp4?fail=99&n=2")
    with pytest.raises(IngestError, match="HTTP 503") as err:
        ingest_candidate(cand, Lake("lake", s3), "travel", TS, requests.Session(), sleep=sleeper, retries=3)
    assert err.value.attempts == 4 and len(sleeper.calls) == 3


def test_truncated_body_is_retried_with_backoff_then_fails(s3, media_server, sleeper):
    cand = sample_candidate(f"{media_server.url}/truncate/big_buck_bunny.mp4")
    with pytest.raises(IngestError, match=r"interrupted|size mismatch") as err:
        ingest_candidate(cand, Lake("lake", s3), "travel", TS, requests.Session(), sleep=sleeper, retries=2)
    assert err.value.attempts == 3 and sleeper.calls == [2.0, 4.0]
    assert s3.list_objects_v2(Bucket="lake").get("KeyCount") == 0


def test_not_found_is_not_retried(s3, media_server, sleeper):
    cand = sample_candidate(f"{media_server.url}/files/nope.mp4")
    with pytest.raises(IngestError, match="HTTP 404"):
        ingest_candidate(cand, Lake("lake", s3), "travel", TS, requests.Session(), sleep=sleeper)
    assert sleeper.calls == []


def test_a_failed_video_does_not_stop_the_batch(s3, media_server, sleeper):
    good = sample_candidate(f"{media_server.url}/files/big_buck_bunny.mp4")
    bad = sample_candidate(f"{media_server.url}/files/nope.mp4", source_id="404")

    outcome = ingest_batch([bad, good], Lake("lake", s3), "travel", TS, requests.Session(), sleep=sleeper)

    assert outcome.failed == {("wikimedia", "404"): "HTTP 404"}
    assert list(outcome.ingested) == [("wikimedia", "66554433")]


def test_over_long_attribution_still_fits_s3_metadata():
    att = Attribution(title="Ü" * 600, author="A" * 900, source="wikimedia", source_id="1")
    meta = object_metadata(att)
    assert sum(len(k) + len(v) for k, v in meta.items()) <= 2000
    back = Attribution.from_metadata(meta)
    assert back.source_id == "1" and back.title.startswith("Ü") and back.title.endswith("…")


def test_credit_lines():
    a = Candidate(
        source="pixabay",
        source_id="1",
        title="Beach, waves",
        author="Engin_Akyurt",
        page_url="https://pixabay.com/videos/beach-1/",
        licence="Pixabay Content License",
        licence_url="https://pixabay.com/service/license-summary/",
        download_url="https://cdn.pixabay.com/video/x.mp4",
    )
    lines = credits([a, a.to_attribution()])
    assert lines[0] == lines[1]
    assert lines[0] == (
        '"Beach, waves" by Engin_Akyurt, licensed under Pixabay Content License '
        "(https://pixabay.com/service/license-summary/), via pixabay (https://pixabay.com/videos/beach-1/)"
    )


def test_running_the_same_plan_twice_ingests_nothing_new(s3, media_server, sleeper):
    def url(i: int) -> str:
        return f"{media_server.url}/named/big_buck_bunny.mp4/w{i}.mp4"

    pool = {
        "wikimedia": [
            sample_candidate(url(i), source_id=f"w{i}", sha1=None, source_sha1=f"{i:040x}") for i in range(3)
        ],
        "samples": [sample_candidate(SAMPLE_MP4.resolve().as_uri(), source="samples", source_id="big_buck_bunny")],
    }
    catalog_ids: set[tuple[str, str]] = set()
    catalog_hashes: set[str] = set()

    def run(ts: str) -> dict[tuple[str, str], str]:
        plan = plan_batch(pool, 3, seen=lambda s, i: (s, i) in catalog_ids, seen_hash=lambda h: h in catalog_hashes)
        outcome = ingest_batch(plan.items, Lake("lake", s3), "travel", ts, requests.Session(), sleep=sleeper)
        for cand in plan.items:
            if (cand.source, cand.source_id) in outcome.ingested:
                catalog_ids.add((cand.source, cand.source_id))
                catalog_hashes.add(cand.content_hash)
        return outcome.ingested

    first = run("20250101_000000")
    objects_after_first = s3.list_objects_v2(Bucket="lake")["KeyCount"]
    # The sample's bytes equal w*'s download, but their listed hashes differ: distinct works, as the sources say.
    assert sorted(first) == [("samples", "big_buck_bunny"), ("wikimedia", "w0"), ("wikimedia", "w1")]
    assert objects_after_first == 3

    second = run("20250102_000000")
    assert sorted(second) == [("wikimedia", "w2")]  # only what the first run left over
    third = run("20250103_000000")
    assert third == {}
    assert s3.list_objects_v2(Bucket="lake")["KeyCount"] == 4


def test_memory_stays_flat_for_a_file_much_larger_than_the_chunk_budget(media_server, moto_server_url, aws_credentials):
    """200 MB generated on the fly by the local server, streamed into a moto server in another process."""
    size = int(os.environ.get("CLIPLAKE_TEST_BIG_MB", "200")) * MiB
    chunk = 8 * MiB
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto_server_url)
    s3.create_bucket(Bucket="big")
    cand = sample_candidate(f"{media_server.url}/gen/{size}", size=size, sha1=generated_sha1(size), source_id="big")
    session = requests.Session()

    gc.collect()
    tracemalloc.start()
    try:
        key = ingest_candidate(cand, Lake("big", s3), "travel", TS, session, config=transfer_config(chunk, 2))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    head = s3.head_object(Bucket="big", Key=key)
    assert head["ContentLength"] == size
    assert head["ETag"].endswith(f'-{size // chunk}"')  # really a multipart upload
    assert Attribution.from_metadata(head["Metadata"]).source_id == "big"
    print(f"\npeak traced memory while ingesting {size // MiB} MiB: {peak / MiB:.1f} MiB")
    assert peak < 8 * chunk  # a few chunks in flight, independent of the file size
    assert peak < size / 4
