"""The dashboard's SQL and pipeline-health pages under Streamlit's AppTest, on the local cloud."""

from __future__ import annotations

import pytest
from dashkit import CAMPAIGN, texts

pytestmark = pytest.mark.e2e


def ok(at):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_sql_page_runs_a_query_over_the_lakes_tables(app, dropped):
    at = ok(app("sql"))
    at.text_area(key="sql_query").input(
        f"SELECT video_id, status, reason FROM videos WHERE campaign = '{CAMPAIGN}' ORDER BY video_id"
    ).run()
    at.button(key="sql_run").click().run()
    frame = ok(at).dataframe[0].value
    statuses = dict(zip(frame["video_id"], frame["status"], strict=True))
    assert statuses[dropped["indexed"]["video_id"]] == "INDEXED"
    assert statuses[dropped["failed"]["video_id"]] == "FAILED"
    assert "bytes" in texts(at)


def test_sql_page_refuses_what_is_not_a_select(app, dropped):
    at = ok(app("sql"))
    at.text_area(key="sql_query").input("DROP VIEW videos").run()
    at.button(key="sql_run").click().run()
    assert at.error and "only one SELECT" in at.error[0].value
    assert not at.dataframe


def test_health_page_shows_queues_slots_batches_and_videos(app, dropped, catalog):
    at = ok(app("health"))
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Dead letters"] == "0"
    assert metrics["Job slots in use"] == f"{catalog.jobs_in_flight()} / 12"
    queues = at.dataframe[0].value
    assert list(queues["name"]) == ["RawVideo", "Completion", "Summary", "Batch", "Ingest", "Segment"]
    videos = at.dataframe[2].value
    assert "dropin" in set(videos["source"])
