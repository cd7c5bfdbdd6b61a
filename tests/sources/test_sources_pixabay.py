"""Pixabay client against recorded responses: renditions, licence, errors, rate limits, cache, key secrecy."""

from __future__ import annotations

import json
import logging
import traceback

import boto3
import pytest
import requests
import responses
from sources_testkit import PIXABAY_API, add_recorded, query_of, recorded

from cliplake.sources.pixabay import (
    LICENCE,
    LICENCE_URL,
    PixabayClient,
    PixabayError,
    api_key_of,
    cached_session,
    choose_rendition,
    dynamodb_cache,
)

KEY = "12345678-0f1e2d3c4b5a69788796a5b4c"  # the shape of a Pixabay key; never a real one


def make_client(session, sleeper, **kw) -> PixabayClient:
    return PixabayClient(session, PIXABAY_API, KEY, sleep=sleeper, clock=sleeper.clock, **kw)


def test_search_pages_and_picks_renditions_at_or_below_720(rsps, sleeper):
    add_recorded(rsps, PIXABAY_API, "pixabay/videos_page1.json")
    add_recorded(rsps, PIXABAY_API, "pixabay/videos_page2.json")

    result = make_client(requests.Session(), sleeper).search("travel", limit=10, per_page=3)

    assert [query_of(c)["page"] for c in rsps.calls] == ["1", "2"]
    q = query_of(rsps.calls[0])
    assert (q["key"], q["q"], q["safesearch"], q["per_page"]) == (KEY, "travel", "true", "3")
    picked = {c.source_id: (c.rendition, c.width, c.height) for c in result.candidates}
    assert picked == {
        "27669": ("tiny", 1280, 720),
        "125681": ("small", 1280, 720),
        "190933": ("small", 720, 1280),  # portrait: the short side is what counts
        "41758": ("small", 1280, 720),
        "88321": ("tiny", 1280, 720),
    }
    assert result.skipped == {}


def test_empty_large_rendition_is_skipped():
    hit = recorded("pixabay/videos_page1.json")["body"]["hits"][1]
    assert hit["videos"]["large"] == {"url": "", "width": 0, "height": 0, "size": 0, "thumbnail": ""}
    name, rendition = choose_rendition(hit, max_height=4320)
    assert name == "medium" and rendition["height"] == 1080


def test_hits_without_a_small_enough_rendition_are_counted(rsps, sleeper):
    add_recorded(rsps, PIXABAY_API, "pixabay/videos_page1.json")
    add_recorded(rsps, PIXABAY_API, "pixabay/videos_page2.json")

    result = make_client(requests.Session(), sleeper, max_height=360).search("travel", limit=10, per_page=3)

    assert [c.source_id for c in result.candidates] == ["41758"]
    assert result.skipped == {"no_rendition_within_height": 4}


def test_licence_user_and_page_are_recorded(rsps, sleeper):
    add_recorded(rsps, PIXABAY_API, "pixabay/videos_page1.json")

    cand = make_client(requests.Session(), sleeper).search("travel", limit=3).candidates[1]

    assert (cand.licence, cand.licence_url) == (LICENCE, LICENCE_URL)
    assert cand.author == "Engin_Akyurt"
    assert cand.author_url == "https://pixabay.com/users/Engin_Akyurt-3656355/"
    assert cand.page_url == "https://pixabay.com/videos/beach-125681/"
    assert cand.download_url.endswith("125681-730421287_small.mp4") and cand.size == 5128734
    assert cand.duration_s == 21.0
    att = cand.to_attribution()
    assert att.source == "pixabay" and att.source_id == "125681"
    assert "Pixabay Content License (https://pixabay.com/service/license-summary/)" in att.credit_line()


def test_plain_text_error_body_becomes_a_clear_error(rsps, sleeper):
    add_recorded(rsps, PIXABAY_API, "pixabay/error_per_page.json")

    with pytest.raises(PixabayError) as err:
        make_client(requests.Session(), sleeper).search_page("travel", per_page=500)

    assert err.value.status == 400
    assert str(err.value) == 'Pixabay API HTTP 400: [ERROR 400] "per_page" is out of accepted range 3-200.'


def test_per_page_is_kept_in_range(rsps, sleeper):
    add_recorded(rsps, PIXABAY_API, "pixabay/videos_page1.json")
    make_client(requests.Session(), sleeper).search("travel", limit=1)
    assert query_of(rsps.calls[0])["per_page"] == "3"


def test_429_is_retried_after_the_rate_limit_window(rsps, sleeper):
    add_recorded(rsps, PIXABAY_API, "pixabay/error_429.json")
    add_recorded(rsps, PIXABAY_API, "pixabay/videos_page1.json")

    data = make_client(requests.Session(), sleeper).search_page("travel", per_page=3)

    assert len(data["hits"]) == 3
    assert sleeper.calls == [42.0]  # X-RateLimit-Reset of the 429


def test_429_retries_are_bounded(rsps, sleeper):
    for _ in range(3):
        add_recorded(rsps, PIXABAY_API, "pixabay/error_429.json")
    with pytest.raises(PixabayError, match="HTTP 429"):
        make_client(requests.Session(), sleeper, max_retries=2).search_page("travel", per_page=3)
    assert len(sleeper.calls) == 2


def test_waits_for_the_window_when_remaining_reaches_zero(rsps, sleeper):
    rec = recorded("pixabay/videos_page1.json")
    headers = {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"}
    rsps.add(responses.GET, PIXABAY_API, json=rec["body"], headers=headers)
    add_recorded(rsps, PIXABAY_API, "pixabay/videos_page2.json")
    client = make_client(requests.Session(), sleeper)

    client.search_page("travel", page=1, per_page=3)
    assert sleeper.calls == []  # nothing to wait for yet
    sleeper.now += 10  # 10 s pass before the next request
    client.search_page("travel", page=2, per_page=3)

    assert sleeper.calls == [20.0]
    assert json.loads(rsps.calls[1].response.text)["hits"][0]["id"] == 41758


def test_second_identical_query_is_served_from_the_cache(rsps, sleeper, tmp_path):
    add_recorded(rsps, PIXABAY_API, "pixabay/videos_page1.json")
    session = cached_session(tmp_path)

    first = make_client(session, sleeper).search_page("travel", per_page=3)
    # A later invocation: a new session on the same store, even a rotated key, still hits the cache.
    again = PixabayClient(cached_session(tmp_path), PIXABAY_API, "another-key", sleep=sleeper)
    second = again.search_page("travel", per_page=3)

    assert len(rsps.calls) == 1
    assert first == second
    assert (tmp_path / "pixabay_cache.sqlite").is_file()
    assert KEY.encode() not in (tmp_path / "pixabay_cache.sqlite").read_bytes()  # `key` is not stored


def test_a_different_query_is_not_served_from_the_cache(rsps, sleeper, tmp_path):
    add_recorded(rsps, PIXABAY_API, "pixabay/videos_page1.json")
    add_recorded(rsps, PIXABAY_API, "pixabay/videos_page2.json")
    client = make_client(cached_session(tmp_path), sleeper)
    client.search_page("travel", per_page=3)
    client.search_page("travel", page=2, per_page=3)
    assert len(rsps.calls) == 2


def _assert_secret_free(exc: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    text = "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)
    assert KEY not in text
    assert KEY not in caplog.text


def test_key_never_in_exceptions_or_logs_with_recorded_responses(rsps, sleeper, caplog):
    caplog.set_level(logging.DEBUG)
    add_recorded(rsps, PIXABAY_API, "pixabay/error_invalid_key.json")
    client = make_client(requests.Session(), sleeper, max_retries=1)

    with pytest.raises(PixabayError) as err:
        client.search_page("travel", per_page=3)
    _assert_secret_free(err.value, caplog)
    assert "Invalid API key" in str(err.value)

    # No mock matches now: `responses` raises a ConnectionError quoting the full URL, key included.
    rsps.reset()
    with pytest.raises(PixabayError) as err:
        client.search_page("unmatched", per_page=3)
    _assert_secret_free(err.value, caplog)
    assert "***" in str(err.value)
    assert KEY not in repr(client)


def test_key_never_in_logs_over_a_real_socket(media_server, sleeper, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)  # urllib3 logs every request line at DEBUG
    ok = PixabayClient(
        cached_session(tmp_path), f"{media_server.url}/json/pixabay/videos_page1.json", KEY, sleep=sleeper
    )
    assert len(ok.search("travel", limit=3).candidates) == 3
    assert "GET /json/pixabay/videos_page1.json" in caplog.text  # the request line *was* logged ...
    assert KEY not in caplog.text  # ... redacted

    bad = PixabayClient(requests.Session(), f"{media_server.url}/json/pixabay/error_per_page.json", KEY, sleep=sleeper)
    with pytest.raises(PixabayError) as err:
        bad.search_page("travel", per_page=500)
    _assert_secret_free(err.value, caplog)

    refused = PixabayClient(requests.Session(), "http://127.0.0.1:9/api/videos/", KEY, sleep=sleeper, max_retries=1)
    with pytest.raises(PixabayError) as err:
        refused.search_page("travel")
    _assert_secret_free(err.value, caplog)
    assert media_server.hits  # the local server really was called


def test_read_api_key_from_secrets_manager(secrets):
    from cliplake.adapters.secrets import NoSecret, Secrets

    secrets.create_secret(Name="cliplake/pixabay", SecretString=KEY)
    secrets.create_secret(Name="cliplake/pixabay-json", SecretString=f'{{"api_key": "{KEY}"}}')
    store = Secrets(secrets)
    assert api_key_of(store.value("cliplake/pixabay"), "cliplake/pixabay") == KEY
    assert api_key_of(store.value("cliplake/pixabay-json"), "cliplake/pixabay-json") == KEY
    with pytest.raises(NoSecret, match="no secret configured"):
        store.value("")


def test_dynamodb_backend_for_aws(aws, rsps, sleeper):
    """The AWS option: the cache in DynamoDB, shared by every Lambda container (moto here)."""
    dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
    backend = dynamodb_cache("pixabay-cache", dynamodb, create_table=True)
    add_recorded(rsps, PIXABAY_API, "pixabay/videos_page1.json")

    make_client(cached_session(backend=backend), sleeper).search_page("travel", per_page=3)
    again = make_client(cached_session(backend=dynamodb_cache("pixabay-cache", dynamodb)), sleeper)

    assert len(again.search_page("travel", per_page=3)["hits"]) == 3
    assert len(rsps.calls) == 1
