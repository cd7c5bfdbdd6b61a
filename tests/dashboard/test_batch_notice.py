"""The dashboard says why a batch failed (the failing state's error and cause) or planned nothing."""

from __future__ import annotations

from dashboard import present

EVENTS = [
    {"id": 1, "type": "ExecutionStarted", "executionStartedEventDetails": {"input": "{}"}},
    {"id": 2, "type": "TaskStateEntered", "stateEnteredEventDetails": {"name": "Plan", "input": "{}"}},
    {"id": 3, "type": "TaskFailed", "taskFailedEventDetails": {"error": "PlanFailed",
                                                              "cause": "CampaignNotFound: no campaign 'natrue'"}},
    {"id": 4, "type": "ExecutionFailed", "executionFailedEventDetails": {"error": "PlanFailed", "cause": ""}},
]  # fmt: skip


def test_a_failed_batch_shows_the_failing_states_error_and_cause():
    level, text = present.batch_notice({"status": "FAILED", "items": []}, {"status": "FAILED"}, EVENTS)
    assert level == "error"
    assert "PlanFailed in state Plan: CampaignNotFound: no campaign 'natrue'" in text


def test_an_aborted_batch_shows_the_restart_reason():
    execution = {"status": "ABORTED", "error": "LocalCloudRestarted", "cause": "The local cloud stopped while ..."}
    level, text = present.batch_notice({"status": "ABORTED", "reason": "The local cloud stopped while ..."}, execution)
    assert level == "error" and "LocalCloudRestarted: The local cloud stopped while" in text


def test_an_empty_batch_says_why_and_a_good_one_says_nothing():
    empty = {"status": "SUCCEEDED", "items": [], "reason": "no source configured (pixabay: no key)"}
    assert present.batch_notice(empty, {"status": "SUCCEEDED"}) == (
        "warning", "Nothing was planned: no source configured (pixabay: no key)")  # fmt: skip
    good = {"status": "SUCCEEDED", "items": [{"video_id": "v1"}], "reason": ""}
    assert present.batch_notice(good, {"status": "SUCCEEDED"}) == ("", "")


def test_the_failures_shown_are_every_failed_item_not_only_those_the_summary_listed():
    items = [{"video_id": f"v{i}", "title": f"t{i}", "outcome": "FAILED" if i % 2 else "INDEXED",
              "reason": f"why {i}" if i % 2 else ""} for i in range(120)]  # fmt: skip
    listed = [{"video_id": "v1", "title": "t1", "reason": "why 1"}]  # the summary lists the first ones only
    failures = present.batch_failures({"items": items, "failures": listed, "failures_unlisted": 59})
    assert [f["video_id"] for f in failures] == [f"v{i}" for i in range(1, 120, 2)]
    assert failures[-1] == {"video_id": "v119", "title": "t119", "reason": "why 119"}
    # a record whose items carry no outcome yet (or written before they had one) shows what the summary listed
    assert present.batch_failures({"items": [{"video_id": "v1"}], "failures": listed}) == listed
