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
