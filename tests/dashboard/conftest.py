"""Dashboard fixtures: real videos dropped through the local pipeline, a batch record in the catalog's documented
shape, a small real Step Functions execution, and Streamlit's AppTest on dashboard/app.py."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import botocore.client
import pytest
import streamlit as st
from dashkit import APP, CAMPAIGN, DEFINITION, ROOT, batch_record, delete_batch, items_of, put_batch, run_execution
from streamlit.testing.v1 import AppTest

from cliplake_cli.cli import drop_files, wait_for_videos

# The app's package lives at the repository's root (not installed); this folder's name must not shadow it.
sys.path.insert(0, str(ROOT))
sys.modules.pop("dashboard", None)


@pytest.fixture(autouse=True)
def _fresh_streamlit_caches():
    """AppTest runs the app in this process: its cached backend and reads must not leak between tests."""
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture(scope="session")
def dropped(cloud, lake, catalog, clips) -> dict[str, dict[str, Any]]:
    """Two clips through the real pipeline: one indexed (3 shots), one corrupt (failed)."""
    keys = drop_files(lake, [clips["h264"], clips["corrupt"]], campaign=CAMPAIGN)
    videos = wait_for_videos(catalog, keys, timeout_s=180)
    cloud.wait_idle(timeout=60)
    by_status = {v["status"]: v for v in videos}
    assert set(by_status) == {"INDEXED", "FAILED"}, by_status
    return {"indexed": by_status["INDEXED"], "failed": by_status["FAILED"], "keys": keys}


# ------------------------------------------------------------------------------------ stand-ins
@pytest.fixture(scope="module")
def state_machine(cloud):
    sfn = cloud.client("stepfunctions")
    arn = sfn.create_state_machine(
        name=f"dash-test-{time.time_ns()}",
        definition=json.dumps(DEFINITION),
        roleArn="arn:aws:iam::123456789012:role/dash-test",
    )["stateMachineArn"]
    yield arn
    sfn.delete_state_machine(stateMachineArn=arn)


@pytest.fixture(scope="module")
def finished_batch(cloud, dropped, state_machine):
    """A SUCCEEDED batch of the two dropped videos, as the batch wrapper records it, with a real execution."""
    batch_id = f"dash-{CAMPAIGN}-{datetime.now(UTC):%Y%m%d%H%M%S}-beef"
    execution = run_execution(cloud, state_machine, {"campaign": CAMPAIGN, "batch_size": 2}, batch_id)
    failed, indexed = dropped["failed"], dropped["indexed"]
    record = batch_record(
        batch_id,
        items_of(dropped),
        "SUCCEEDED",
        execution_arn=execution,
        received=2,
        processed=1,
        failed=1,
        failures=[{"video_id": failed["video_id"], "title": failed["filename"], "reason": failed["reason"]}],
        top_labels=[
            {"name": t["name"], "videos": 1, "max_confidence": t["max_confidence"]} for t in indexed["top_labels"]
        ],
        ended_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
    )
    put_batch(cloud, record)
    yield record
    delete_batch(cloud, batch_id)


# ------------------------------------------------------------------------------------------ AppTest
@pytest.fixture
def app() -> Callable[..., AppTest]:
    def run(page: str, timeout: float = 60, **query: str) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=timeout)
        at.query_params["page"] = page
        for k, v in query.items():
            at.query_params[k] = v
        return at.run()

    return run


@pytest.fixture
def api_calls(monkeypatch) -> list[tuple[str, str, dict[str, Any]]]:
    """Every AWS call made while the test runs: (service, operation, parameters)."""
    calls: list[tuple[str, str, dict[str, Any]]] = []
    original = botocore.client.BaseClient._make_api_call

    def recording(self, operation_name, api_params):
        calls.append((self.meta.service_model.service_name, operation_name, dict(api_params)))
        return original(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    return calls
