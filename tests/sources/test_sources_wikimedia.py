"""Wikimedia Commons client against recorded Action API responses (formatversion=2, generator=search)."""

from __future__ import annotations

import json

import pytest
import requests
import responses
from sources_testkit import WIKI_API, as_response, query_of, recorded

from cliplake.sources.http import ConfigurationError
from cliplake.sources.wikimedia import (
    WikimediaClient,
    WikimediaError,
    choose_rendition,
    classify_licence,
    parse_artist,
)

CONTACT = "media-team@example.org"


def paged_callback(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
    """Answer like the API: the page for the requested `gsroffset` (copied from the previous `continue`)."""
    offset = dict(part.split("=", 1) for part in request.url.split("?", 1)[1].split("&")).get("gsroffset")
    name = {None: "search_page1.json", "3": "search_page2.json", "6": "search_page3.json"}[offset]
    return as_response(recorded(f"wikimedia/{name}"))


@pytest.fixture
def client(sleeper) -> WikimediaClient:
    return WikimediaClient(requests.Session(), WIKI_API, CONTACT, sleep=sleeper)


@pytest.fixture
def paged(rsps: responses.RequestsMock) -> responses.RequestsMock:
    rsps.add_callback(responses.GET, WIKI_API, callback=paged_callback)
    return rsps


def test_continuation_collects_every_page_in_index_order(client, paged):
    pages = client.search_pages("timelapse", limit=20, page_size=3)

    assert [p["index"] for p in pages] == list(range(1, 9))  # each response lists pages by page id, not rank
    assert len(paged.calls) == 3
    first, second, third = (query_of(c) for c in paged.calls)
    assert first["generator"] == "search" and first["gsrnamespace"] == "6" and first["gsrlimit"] == "3"
    assert first["gsrsearch"] == "filetype:video timelapse"
    assert first["prop"] == "videoinfo"
    assert first["viprop"] == "url|size|mime|sha1|extmetadata|derivatives"
    assert (first["format"], first["formatversion"], first["maxlag"]) == ("json", "2", "5")
    assert "gsroffset" not in first
    # The whole `continue` object is copied into the next request, on top of the original parameters.
    assert second["gsroffset"] == "3" and second["continue"] == "gsroffset||"
    assert third["gsroffset"] == "6" and third["gsrsearch"] == first["gsrsearch"]


def test_search_filters_licences_and_counts_skips(client, paged):
    result = client.search("timelapse", limit=20, page_size=3)

    assert [c.title for c in result.candidates] == [
        "Timelapse of Shinjuku at night",
        "Waves at Nazaré beach",
        "Aurora over Earth from ISS",
        "Big Buck Bunny",
        "Hamburg Hafen Zeitraffer",
    ]
    assert result.skipped == {"licence_not_allowed": 3}  # GFDL, Free Art Licence, custom "Attribution"
    licences = {c.title: (c.licence, c.licence_url) for c in result.candidates}
    assert licences["Timelapse of Shinjuku at night"] == (
        "CC BY-SA 4.0",
        "https://creativecommons.org/licenses/by-sa/4.0",
    )
    assert licences["Big Buck Bunny"] == ("CC BY 3.0", "https://creativecommons.org/licenses/by/3.0/")  # URL filled
    assert licences["Hamburg Hafen Zeitraffer"] == (
        "CC BY-SA 3.0 de",
        "https://creativecommons.org/licenses/by-sa/3.0/de/",
    )
    assert licences["Aurora over Earth from ISS"] == ("Public domain", "")
    assert all(c.source == "wikimedia" and c.query == "timelapse" for c in result.candidates)


def test_artist_html_gives_author_and_first_link(client, paged):
    by_title = {c.title: c for c in client.search("timelapse", limit=20, page_size=3).candidates}

    shinjuku = by_title["Timelapse of Shinjuku at night"]
    assert (shinjuku.author, shinjuku.author_url) == (
        "Tokyo Walker",
        "https://commons.wikimedia.org/wiki/User:Tokyo_Walker",
    )
    waves = by_title["Waves at Nazaré beach"]
    assert (waves.author, waves.author_url) == ("Jane Doe & friends", "")
    aurora = by_title["Aurora over Earth from ISS"]
    assert aurora.author == "NASA Goddard Space Flight Center from Greenbelt, MD, USA"
    assert aurora.author_url == "https://www.nasa.gov/goddard"
    assert by_title["Big Buck Bunny"].author_url == "https://www.wikidata.org/wiki/Q1353556"
    assert by_title["Hamburg Hafen Zeitraffer"].author_url == "https://commons.wikimedia.org/wiki/User:Hafenblick"


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (
            '<a href="//commons.wikimedia.org/wiki/User:A_B" title="User:A B">A B</a>',
            ("A B", "https://commons.wikimedia.org/wiki/User:A_B"),
        ),
        ("Unknown author", ("Unknown author", "")),
        (
            '<div class="fn">\n  <a href="https://x.org/1">X</a>  &amp; <a href="https://y.org/2">Y</a>\n</div>',
            ("X & Y", "https://x.org/1"),
        ),
        ("", ("", "")),
    ],
)
def test_parse_artist(html, expected):
    assert parse_artist(html) == expected


@pytest.mark.parametrize(
    ("short", "code", "url", "expected"),
    [
        ("CC BY-SA 4.0", "cc-by-sa-4.0", "", ("CC BY-SA 4.0", "https://creativecommons.org/licenses/by-sa/4.0/")),
        (
            "CC BY 2.0",
            "cc-by-2.0",
            "https://creativecommons.org/licenses/by/2.0",
            ("CC BY 2.0", "https://creativecommons.org/licenses/by/2.0"),
        ),
        ("CC BY-SA 2.5 pl", "", "", ("CC BY-SA 2.5 pl", "https://creativecommons.org/licenses/by-sa/2.5/pl/")),
        ("CC0", "cc0", "", ("CC0 1.0", "https://creativecommons.org/publicdomain/zero/1.0/")),
        ("Public domain", "pd", "", ("Public domain", "")),
        ("PD-USGov", "", "", ("Public domain", "")),
        ("GFDL", "gfdl", "", None),
        ("CC BY-NC-SA 4.0", "cc-by-nc-sa-4.0", "", None),
        ("CC BY-ND 3.0", "", "", None),
        ("FAL", "fal", "", None),
        ("", "", "", None),
    ],
)
def test_classify_licence(short, code, url, expected):
    licence = classify_licence(short, code, url)
    assert (None if licence is None else (licence.name, licence.url)) == expected


def test_derivative_at_or_below_max_height_is_preferred(client, paged):
    by_title = {c.title: c for c in client.search("timelapse", limit=20, page_size=3).candidates}

    shinjuku = by_title["Timelapse of Shinjuku at night"]  # 1080p original
    assert shinjuku.rendition == "720p.vp9.webm"
    assert shinjuku.download_url.endswith("Timelapse_of_Shinjuku_at_night.webm.720p.vp9.webm")
    assert (shinjuku.width, shinjuku.height, shinjuku.mime) == (1280, 720, "video/webm")
    assert shinjuku.sha1 is None and shinjuku.source_sha1  # no hash to verify a transcode against; keep the original's
    assert not shinjuku.size_exact and shinjuku.size == int(2_700_000 * 63.5 / 8)
    assert "720p.vp9.webm" in shinjuku.modifications[0]
    assert by_title["Big Buck Bunny"].rendition == "720p.vp9.webm"  # 4K original

    waves = by_title["Waves at Nazaré beach"]  # already 360p: the untouched original, verifiable
    assert waves.rendition == "original" and waves.sha1 == waves.source_sha1 and waves.size_exact
    assert waves.modifications == []
    # Only VP8 and a 1080p VP9 transcode: nothing acceptable at <= 720p, so the original (limits decide later).
    assert by_title["Hamburg Hafen Zeitraffer"].rendition == "original"


def test_max_height_is_configurable():
    info = recorded("wikimedia/search_page1.json")["body"]["query"]["pages"]
    shinjuku = next(p for p in info if p["index"] == 1)["videoinfo"][0]
    assert choose_rendition(shinjuku, max_height=480).key == "480p.vp9.webm"
    assert choose_rendition(shinjuku, max_height=100).key == "original"
    assert choose_rendition(shinjuku, max_height=1080).key == "original"
    assert choose_rendition(shinjuku, max_height=1080, max_bytes=10**6).key == "1080p.vp9.webm"


def test_maxlag_error_waits_retry_after_then_retries(client, rsps, sleeper):
    status, headers, body = as_response(recorded("wikimedia/error_maxlag.json"))
    assert status == 200 and json.loads(body)["error"]["code"] == "maxlag"  # lag errors come with HTTP 200
    rsps.add(
        responses.GET,
        WIKI_API,
        body=body,
        status=status,
        headers={"Retry-After": headers["Retry-After"], "X-Database-Lag": headers["X-Database-Lag"]},
        content_type="application/json",
    )
    rsps.add_callback(responses.GET, WIKI_API, callback=paged_callback)

    pages = list(client.iter_pages("timelapse", page_size=3, max_requests=1))

    assert sleeper.calls == [5.0]
    assert [p["index"] for p in pages] == [1, 2, 3]


def test_http_429_waits_retry_after_then_retries(client, rsps, sleeper):
    status, headers, body = as_response(recorded("wikimedia/error_429.json"))
    rsps.add(responses.GET, WIKI_API, body=body, status=status, headers={"Retry-After": headers["Retry-After"]})
    rsps.add(responses.GET, WIKI_API, body="", status=503, headers={"Retry-After": "2"})
    rsps.add_callback(responses.GET, WIKI_API, callback=paged_callback)

    client.request({"action": "query"})

    assert sleeper.calls == [3.0, 2.0]


def test_retries_are_bounded(rsps, sleeper):
    client = WikimediaClient(requests.Session(), WIKI_API, CONTACT, sleep=sleeper, max_retries=2)
    status, _, body = as_response(recorded("wikimedia/error_maxlag.json"))
    for _ in range(3):
        rsps.add(responses.GET, WIKI_API, body=body, status=status, headers={"Retry-After": "5"})

    with pytest.raises(WikimediaError) as err:
        client.request({"action": "query"})

    assert err.value.code == "maxlag" and "7 seconds lagged" in str(err.value)
    assert sleeper.calls == [5.0, 5.0]


def test_error_object_becomes_a_clear_exception(client, rsps, sleeper):
    status, _, body = as_response(recorded("wikimedia/error_badvalue.json"))
    rsps.add(responses.GET, WIKI_API, body=body, status=status, content_type="application/json")

    with pytest.raises(WikimediaError, match=r"'badvalue'.*Unrecognized value for parameter \"prop\"") as err:
        client.request({"action": "query", "prop": "videoinf"})

    assert err.value.code == "badvalue"
    assert sleeper.calls == []  # not retried


def test_user_agent_names_the_tool_and_the_contact(client, paged):
    client.request({"action": "query"})
    ua = paged.calls[0].request.headers["User-Agent"]
    assert ua.startswith("cliplake/") and CONTACT in ua and "python-requests/" in ua


def test_refuses_the_live_api_without_a_contact():
    with pytest.raises(ConfigurationError, match="contact"):
        WikimediaClient(requests.Session(), WIKI_API, "")
    WikimediaClient(requests.Session(), "http://127.0.0.1:9/w/api.php", "")  # a local stand-in is fine
