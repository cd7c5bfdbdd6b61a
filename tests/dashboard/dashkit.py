"""Helpers of the dashboard tests: batch records in the catalog's documented shape, a stand-in execution,
page text."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from cliplake.adapters.catalog import Catalog, batch_item_keys, batch_key, to_ddb
from cliplake.contracts import BatchItemRef
from cliplake.lake import video_id_for

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboard" / "app.py")
OUTPUT = ROOT / "test-output"
CAMPAIGN = "dashtest"


DEFINITION = {
    "Comment": "stand-in with the batch wrapper's data shapes (the real one comes with the batch issue)",
    "StartAt": "Plan",
    "States": {
        "Plan": {
            "Type": "Pass",
            "Result": {
                "items": [{"video_id": "v0", "raw_key": "media-raw/video/dropin/dashtest/20260101_000000/a.mp4"}]
            },
            "ResultPath": "$.plan",
            "Next": "Summarize",
        },
        "Summarize": {
            "Type": "Pass",
            "Parameters": {"JobId": "job-0001", "top_labels": [{"name": "Dog", "videos": 1}]},
            "End": True,
        },
    },
}


def run_execution(cloud, arn: str, payload: dict[str, Any], name: str) -> str:
    sfn = cloud.client("stepfunctions")
    execution = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(payload))["executionArn"]
    deadline = time.monotonic() + 30
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
        assert time.monotonic() < deadline, "stand-in execution did not finish"
        time.sleep(0.1)
    return execution


# ------------------------------------------------------------------------------------ batch records
def put_batch(cloud, record: dict[str, Any]) -> None:
    """The batch record, and its items as records of their own under it (as the batch function writes them)."""
    items = record.get("items", [])
    meta = {k: v for k, v in record.items() if k != "items"}
    item = {**batch_item_keys(record["batch_id"], record["started_at"]), **meta}
    cloud.client("dynamodb").put_item(
        TableName=cloud.outputs["CatalogTableName"], Item={k: to_ddb(v) for k, v in item.items()}
    )
    _catalog(cloud).batches.put_items(record["batch_id"], [BatchItemRef.model_validate(i) for i in items])


def _catalog(cloud) -> Catalog:
    return Catalog(cloud.outputs["CatalogTableName"], cloud.client("dynamodb"))


def delete_batch(cloud, batch_id: str) -> None:
    _catalog(cloud).batches.put_items(batch_id, [])  # its item records
    cloud.client("dynamodb").delete_item(TableName=cloud.outputs["CatalogTableName"], Key=batch_key(batch_id))


def batch_record(batch_id: str, items: list[dict], status: str, **extra: Any) -> dict[str, Any]:
    started = datetime.now(UTC) - timedelta(seconds=1)  # the newest batch of the session
    record = {
        "batch_id": batch_id,
        "execution_arn": "",
        "campaign": CAMPAIGN,
        "batch_size": len(items),
        "max_concurrency": 5,
        "trigger": "dashboard",
        "status": status,
        "offline": True,
        "items": items,
        "received": 0,
        "processed": 0,
        "failed": 0,
        "failures": [],
        "top_labels": [],
        "started_at": started.isoformat(timespec="milliseconds"),
        "ended_at": "",
    }
    return {**record, **extra}


def items_of(dropped) -> list[dict[str, Any]]:
    return [
        {"video_id": video_id_for(k), "source": "dropin", "title": Path(k).stem, "raw_key": k} for k in dropped["keys"]
    ]


def texts(at: AppTest) -> str:
    """All the text an AppTest run put on the page (markdown, captions, messages, metrics, tables)."""
    parts = [e.value for kind in ("markdown", "caption", "header", "subheader", "info", "error", "warning",
                                  "success") for e in getattr(at, kind)]  # fmt: skip
    parts += [f"{m.label} {m.value}" for m in at.metric]
    parts += [df.value.to_csv() for df in at.dataframe]
    return "\n".join(str(p) for p in parts)
