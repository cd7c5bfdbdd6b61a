"""A batch's items as records of their own (a batch of 1,000 is not one DynamoDB item over 400 KB): written 25 a
call with DynamoDB's unprocessed items sent again, read back in plan order page by page, and a summary whose
listed failures stay within Step Functions' and SNS's 256 KB however many videos fail."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber
from unitkit import TABLE, Unit

import cliplake.adapters.dynamo as dynamo
from cliplake.adapters.catalog import batch_key
from cliplake.adapters.dynamo import Table
from cliplake.batches.plan import batch_record
from cliplake.batches.summary import LISTED_FAILURES_BYTES, MAX_LISTED_FAILURES, listed_failures, render, run_summarize
from cliplake.contracts import Attribution, BatchItemRef, BatchSummary, PlanTask, SummarizeTask, VideoStatus

KB = 1024


def refs(n: int, title: str = "clip") -> list[BatchItemRef]:
    return [BatchItemRef(video_id=f"v{i:04d}", source="wikimedia", title=f"{title} {i}", raw_key=f"k/{i}") for i in
            range(n)]  # fmt: skip


def item_bytes(unit: Unit, key: dict) -> int:
    """The stored size of one item, about as DynamoDB counts it (names and values)."""
    item = unit.svc.catalog.client.get_item(TableName=TABLE, Key=key)["Item"]
    return len(json.dumps(item))


def test_the_items_are_read_back_in_plan_order_page_by_page(unit: Unit):
    batches = unit.catalog.batches
    placed = batches.put_items("b1", refs(130))
    assert [p.position for p in placed] == list(range(130))
    seen, cursor, pages = [], "", 0
    while True:
        page, cursor = batches.items("b1", limit=50, cursor=cursor)
        seen += page
        pages += 1
        if not cursor:
            break
    assert pages == 3 and [i.video_id for i in seen] == [f"v{i:04d}" for i in range(130)]
    batches.ITEMS_PAGE = 40  # all_items follows the cursors too
    assert [i.position for i in batches.all_items("b1")] == list(range(130))
    assert batches.all_items("other") == []


def test_a_plan_written_again_replaces_the_earlier_one(unit: Unit):
    batches = unit.catalog.batches
    batches.put_items("b2", refs(40, "first"))
    batches.put_items("b2", refs(12, "second"))  # a redelivered Plan task that found fewer videos
    again = batches.all_items("b2")
    assert len(again) == 12 and {i.title.split()[0] for i in again} == {"second"}


def test_a_summary_of_a_large_batch_writes_every_outcome_and_keeps_the_record_small(unit: Unit):
    """70 planned videos, every fifth indexed, the others failed with a 1,000-character reason: each item record
    has its outcome, the batch record and the summary list only the first failures and count the rest."""
    catalog, n = unit.catalog, 70
    catalog.batches.put(batch_record(PlanTask(task="plan", token="t", batch_id="big"), "history", 5, "2026-12-01"))
    items = catalog.batches.put_items("big", refs(n, "File:" + "A long lecture title " * 8))
    long_reason = "download failed: " + "HTTP 404 Not Found from upload.wikimedia.org; " * 25
    for it in items:
        if it.position % 5 == 0:
            catalog.videos.register(it.video_id, it.raw_key, "e", 1, "wikimedia", "history", "f.webm", Attribution())
            catalog.videos.set_status(it.video_id, VideoStatus.INDEXED)
        else:
            catalog.tasks.put(it.video_id, "tok", "big")
            catalog.tasks.finish(it.video_id, "FAILED", long_reason)
    summary = run_summarize(unit.svc, SummarizeTask(task="summarize", token="tok-big", batch_id="big"))

    assert (summary.received, summary.processed, summary.failed) == (n, n // 5, n - n // 5)
    assert len(summary.failures) + summary.failures_unlisted == summary.failed
    assert 0 < len(summary.failures) <= MAX_LISTED_FAILURES and summary.failures_unlisted > 0
    assert f"and {summary.failures_unlisted} more" in summary.message
    outcomes = catalog.batches.all_items("big")
    assert [i.outcome for i in outcomes] == ["INDEXED" if i % 5 == 0 else "FAILED" for i in range(n)]
    assert all(len(i.reason) == len(long_reason[:1000]) for i in outcomes if i.outcome == "FAILED")
    assert item_bytes(unit, batch_key("big")) < 64 * KB  # the record does not grow with the items
    [(verb, token, output)] = unit.tokens.sent
    assert (verb, token) == ("succeed", "tok-big") and len(json.dumps(output).encode()) < 100 * KB
    record = catalog.get_batch("big")
    assert len(record["items"]) == n and record["failed"] == n - n // 5


def test_the_listed_failures_stay_within_their_bounds_however_many_fail():
    """1,000 failures with the longest reasons and long titles: the email's failure lines stay within their byte
    budget, the summary (the task's output) far under 256 KiB."""
    items = [it.model_copy(update={"outcome": "FAILED", "reason": "x" * 1000}) for it in refs(1000, "T" * 240)]
    listed, unlisted = listed_failures(items)
    assert len(listed) + unlisted == 1000 and 0 < len(listed) <= MAX_LISTED_FAILURES
    summary = BatchSummary(batch_id="b", received=1000, failed=1000, failures=listed, failures_unlisted=unlisted)
    summary.subject, summary.message = render(summary)
    failure_lines = [line for line in summary.message.splitlines() if line.startswith("  - ")]
    assert len(failure_lines) == len(listed)
    assert sum(len(line.encode()) + 1 for line in failure_lines) <= LISTED_FAILURES_BYTES
    assert len(summary.model_dump_json().encode()) < 64 * KB  # the Map's results (≈ 63 KiB at 1,000) fit beside it
    assert listed_failures(items[:3]) == (listed[:3], 0)


def _stubbed() -> tuple[Table, Stubber]:
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return Table("t", client), Stubber(client)


def _puts(n: int) -> list[dict]:
    return [{"PutRequest": {"Item": {"pk": {"S": "p"}, "sk": {"S": f"s{i}"}}}} for i in range(n)]


def test_batch_write_sends_25_a_call_and_resends_what_is_left_unprocessed(monkeypatch):
    pauses: list[float] = []
    monkeypatch.setattr(dynamo.time, "sleep", pauses.append)
    table, stub = _stubbed()
    requests = _puts(60)
    chunks = [requests[:25], requests[25:50], requests[50:]]
    stub.add_response(
        "batch_write_item", {"UnprocessedItems": {"t": chunks[0][20:]}}, {"RequestItems": {"t": chunks[0]}}
    )
    stub.add_response("batch_write_item", {"UnprocessedItems": {"t": chunks[0][23:]}},
                      {"RequestItems": {"t": chunks[0][20:]}})  # fmt: skip
    stub.add_response("batch_write_item", {}, {"RequestItems": {"t": chunks[0][23:]}})
    stub.add_response("batch_write_item", {"UnprocessedItems": {}}, {"RequestItems": {"t": chunks[1]}})
    stub.add_response("batch_write_item", {}, {"RequestItems": {"t": chunks[2]}})
    with stub:
        table.batch_write(requests)
        stub.assert_no_pending_responses()
    assert pauses == [0.05, 0.1]  # a pause before each resend, doubling


def test_batch_write_gives_up_when_dynamodb_keeps_the_items_unprocessed(monkeypatch):
    monkeypatch.setattr(dynamo.time, "sleep", lambda s: None)
    table, stub = _stubbed()
    requests = _puts(3)
    for _ in range(dynamo.UNPROCESSED_RETRIES + 1):
        stub.add_response("batch_write_item", {"UnprocessedItems": {"t": requests[1:]}})
    with stub, pytest.raises(RuntimeError, match="2 request"):
        table.batch_write(requests)


def test_batch_get_asks_100_keys_a_call_once_each_and_again_for_the_unprocessed(monkeypatch):
    pauses: list[float] = []
    monkeypatch.setattr(dynamo.time, "sleep", pauses.append)
    table, stub = _stubbed()
    keys = [{"pk": {"S": "p"}, "sk": {"S": f"s{i}"}} for i in range(130)]
    first, second = keys[:100], keys[100:]
    left = {"t": {"Keys": first[90:]}}
    stub.add_response("batch_get_item", {"Responses": {"t": first[:90]}, "UnprocessedKeys": left},
                      {"RequestItems": {"t": {"Keys": first, "ConsistentRead": True}}})  # fmt: skip
    stub.add_response("batch_get_item", {"Responses": {"t": first[90:]}}, {"RequestItems": left})
    stub.add_response("batch_get_item", {"Responses": {"t": second[:-1]}},  # the last key has no item
                      {"RequestItems": {"t": {"Keys": second, "ConsistentRead": True}}})  # fmt: skip
    with stub:
        found = table.batch_get(keys + keys[:5])  # a key asked twice is asked once (DynamoDB refuses repeats)
        stub.assert_no_pending_responses()
    assert [f["sk"] for f in found] == [f"s{i}" for i in range(129)] and pauses == [0.05]
