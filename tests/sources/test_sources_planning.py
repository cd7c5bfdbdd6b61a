"""Planning: distribution across sources, de-duplication, limits; campaigns in SSM; the samples source."""

from __future__ import annotations

import json

import pytest
from sources_testkit import ASSETS, SAMPLE_MP4

from cliplake.sources.models import Candidate, SearchResult
from cliplake.sources.planning import (
    DEFAULT_CAMPAIGNS,
    REKOGNITION_MAX_BYTES,
    CampaignNotFound,
    Limits,
    gather_candidates,
    load_campaign,
    plan_batch,
    seed_default_campaigns,
)
from cliplake.sources.samples import SamplesSource, load_samples


def cand(source: str, n: int, **kw) -> Candidate:
    defaults = {"download_url": f"https://example.org/{source}/{n}.webm", "duration_s": 30.0, "size": 10_000_000}
    return Candidate(source=source, source_id=f"{source[:2]}{n}", title=f"{source} {n}", **{**defaults, **kw})


def pool(n_wiki: int, n_pixa: int) -> dict[str, list[Candidate]]:
    return {
        "wikimedia": [cand("wikimedia", i) for i in range(n_wiki)],
        "pixabay": [cand("pixabay", i) for i in range(n_pixa)],
    }


def test_batch_of_two_takes_one_from_each_source():
    plan = plan_batch(pool(5, 5), 2)
    assert [c.source_id for c in plan.items] == ["wi0", "pi0"]


def test_odd_remainder_and_short_source_are_filled_from_the_other():
    assert plan_batch(pool(5, 5), 3).per_source == {"wikimedia": 2, "pixabay": 1}
    short = plan_batch(pool(5, 1), 3)
    assert short.per_source == {"wikimedia": 2, "pixabay": 1}
    assert plan_batch(pool(5, 1), 4).per_source == {"wikimedia": 3, "pixabay": 1}
    assert plan_batch(pool(0, 4), 3).per_source == {"pixabay": 3}
    assert plan_batch(pool(1, 1), 5).per_source == {"wikimedia": 1, "pixabay": 1}  # fewer than asked: all there is


def test_dedup_against_the_catalog_by_id_and_by_hash():
    candidates = pool(4, 4)
    candidates["wikimedia"][1] = cand("wikimedia", 1, sha1="aa" * 20)
    known_ids = {("wikimedia", "wi0"), ("pixabay", "pi0")}
    known_hashes = {"aa" * 20}

    plan = plan_batch(candidates, 4, seen=lambda s, i: (s, i) in known_ids, seen_hash=lambda h: h in known_hashes)

    assert [c.source_id for c in plan.items] == ["wi2", "pi1", "wi3", "pi2"]
    assert plan.skipped == {"already_in_catalog": 2, "same_content_in_catalog": 1}


def test_same_content_twice_in_one_batch_is_taken_once():
    same = "bb" * 20
    candidates = {
        "wikimedia": [cand("wikimedia", 0, source_sha1=same), cand("wikimedia", 1)],
        "samples": [cand("samples", 0, sha1=same), cand("samples", 1)],
    }
    plan = plan_batch(candidates, 3)
    assert [c.source_id for c in plan.items] == ["wi0", "sa1", "wi1"]
    assert plan.skipped == {"duplicate_in_batch": 1}


def test_catalog_protocol_object_plugs_in():
    class Catalog:
        def seen(self, source, source_id):
            return source_id == "wi0"

        def seen_hash(self, sha1):
            return False

    assert [c.source_id for c in plan_batch(pool(2, 0), 2, catalog=Catalog()).items] == ["wi1"]


def test_duration_and_size_limits():
    candidates = {
        "wikimedia": [
            cand("wikimedia", 0, duration_s=601.0),
            cand("wikimedia", 1, size=600 * 1024**2),
            cand("wikimedia", 2, duration_s=None, size=None),  # unknown: the ingest checks what it can
            cand("wikimedia", 3),
        ]
    }
    plan = plan_batch(candidates, 5, limits=Limits(max_duration_s=600, max_bytes=500 * 1024**2))
    assert [c.source_id for c in plan.items] == ["wi2", "wi3"]
    assert plan.skipped == {"too_long": 1, "too_large": 1}


def test_limits_never_exceed_rekognition_and_follow_settings():
    limits = Limits(max_duration_s=10**9, max_bytes=10**15)
    assert limits.effective_duration_s == 6 * 3600 and limits.effective_bytes == REKOGNITION_MAX_BYTES

    class FakeSettings:
        max_duration_s = 120.0
        max_size_mb = 50.0

    assert Limits.from_settings(FakeSettings()) == Limits(120.0, 50 * 1024**2)


def test_gather_interleaves_queries_and_survives_a_failing_source(tmp_path):
    class Fake:
        def search(self, query, limit=50):
            return SearchResult(
                candidates=[cand("wikimedia", i, query=query) for i in range(2)]
                if query == "a"
                else [cand("wikimedia", 10 + i, query=query) for i in range(2)],
                skipped={"licence_not_allowed": 1},
            )

    class Down:
        def search(self, query, limit=50):
            raise RuntimeError("Pixabay API HTTP 503")

    found, skipped, errors = gather_candidates(
        {"wikimedia": Fake(), "pixabay": Down(), "samples": SamplesSource(tmp_path)},
        {"wikimedia": ["a", "b"], "pixabay": ["x"]},
    )
    assert [c.source_id for c in found["wikimedia"]] == ["wi0", "wi10", "wi1", "wi11"]
    assert skipped == {"wikimedia:licence_not_allowed": 2}
    assert errors == {"pixabay": "Pixabay API HTTP 503"}
    assert found["pixabay"] == [] and found["samples"] == []  # no samples.json there


# ----------------------------------------------------------------------------------------------- campaigns
PATH = "/cliplake/campaigns"


def test_built_in_campaign_when_no_parameter(ssm):
    campaign = load_campaign(ssm, PATH, "travel")
    assert campaign.name == "travel" and campaign.queries == DEFAULT_CAMPAIGNS["travel"]
    with pytest.raises(CampaignNotFound):
        load_campaign(ssm, PATH, "no-such-campaign")


def test_seed_and_load_campaigns(ssm):
    assert seed_default_campaigns(ssm, PATH) == ["travel", "tech", "nature"]
    assert seed_default_campaigns(ssm, PATH) == []  # idempotent: existing parameters are kept
    stored = json.loads(ssm.get_parameter(Name=f"{PATH}/tech")["Parameter"]["Value"])
    assert stored == {"queries": DEFAULT_CAMPAIGNS["tech"]}

    ssm.put_parameter(
        Name=f"{PATH}/tech", Value=json.dumps({"queries": {"wikimedia": ["robot arm"]}}), Type="String", Overwrite=True
    )
    assert load_campaign(ssm, PATH + "/", "tech").queries == {"wikimedia": ["robot arm"]}
    ssm.put_parameter(Name=f"{PATH}/cities", Value=json.dumps({"queries": {"pixabay": ["paris"]}}), Type="String")
    assert load_campaign(ssm, PATH, "cities").queries == {"pixabay": ["paris"]}


# ------------------------------------------------------------------------------------------------- samples
def test_bundled_samples_are_offline_candidates():
    if not SAMPLE_MP4.is_file():
        pytest.skip("sample assets missing")
    samples = load_samples(ASSETS)
    bunny = next(c for c in samples if c.source_id == "big_buck_bunny")
    assert bunny.source == "samples" and bunny.download_url.startswith("file:///")
    assert bunny.size == SAMPLE_MP4.stat().st_size and len(bunny.sha1) == 40
    assert (bunny.licence, bunny.author) == ("CC BY 3.0", "Blender Foundation")
    assert bunny.to_attribution().credit_line().startswith('"Big Buck Bunny (excerpt)" by Blender Foundation')
    found = SamplesSource(ASSETS).search("ignored", limit=1).candidates
    assert [c.source_id for c in found] == [samples[0].source_id]


def test_samples_index_entries_without_a_file_are_left_out(tmp_path):
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "a.mp4").write_bytes(b"\x00" * 10)
    entry = {
        "title": "A",
        "author": "Me",
        "author_url": "",
        "licence": "CC0",
        "licence_url": "",
        "source_url": "",
        "origin": "test",
    }
    (tmp_path / "samples.json").write_text(
        json.dumps([{**entry, "file": "samples/a.mp4"}, {**entry, "file": "samples/missing.mp4"}])
    )
    assert [c.source_id for c in load_samples(tmp_path)] == ["a"]
