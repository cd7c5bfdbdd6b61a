"""A permission missing from the template fails a deploy's first video in the local cloud as it would on AWS:
with a readable AccessDenied reason, at once, not after the retries; with the permission back the video is indexed.
The copy is deployed under a stack name with capitals, long enough that a bucket name built from it is invalid.

These tests start clouds of their own, so they run before the session's shared cloud (tests/conftest.py)."""

from __future__ import annotations

import copy
import json
import re
import time

import pytest

from cliplake.adapters.catalog import Catalog
from cliplake.adapters.s3 import Lake
from cliplake.lake import batch_timestamp, raw_key, video_id_for
from cliplake_localcloud.cloud import QUIET_FUNCTIONS_ENV, LocalCloud
from cliplake_localcloud.template import load_template

pytestmark = pytest.mark.e2e
STACK = "Cliplake-Prod-EU-Media-Pipeline-Stack"
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def _drop_and_wait(cloud: LocalCloud, clip, timeout_s: float = 120) -> dict:
    lake = Lake(cloud.outputs["MediaBucketName"], cloud.client("s3"))
    catalog = Catalog(cloud.outputs["CatalogTableName"], cloud.client("dynamodb"))
    key = raw_key("dropin", "iam", clip.name, batch_timestamp())
    lake.upload(clip, key, "video/mp4")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        video = catalog.get_video(video_id_for(key)) or {}
        if video.get("status") == "FAILED" or (video.get("status") == "INDEXED" and "indexed_at" in video):
            cloud.wait_idle(timeout=60)
            return catalog.get_video(video_id_for(key))
        time.sleep(0.1)
    raise TimeoutError(f"{key}: still {video.get('status')} after {timeout_s} s")


def _dlq_depth(cloud: LocalCloud, output: str) -> int:
    attrs = cloud.client("sqs").get_queue_attributes(
        QueueUrl=cloud.outputs[output], AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def test_a_missing_statement_fails_the_video_with_access_denied_and_with_it_back_it_is_indexed(tmp_path, clips):
    sam = load_template()
    broken = copy.deepcopy(sam)
    statements = broken["Resources"]["FinalizeFunction"]["Properties"]["Policies"][0]["Statement"]
    statements[:] = [s for s in statements if s.get("Sid") != "Idempotency"]
    path = tmp_path / "template.yaml"
    path.write_text(json.dumps(broken), encoding="utf-8")  # JSON is YAML; relative URIs resolve against infra/

    with LocalCloud(template_path=path, stack_name=STACK, function_env=QUIET_FUNCTIONS_ENV) as cloud:
        assert BUCKET_NAME.match(cloud.outputs["MediaBucketName"]), cloud.outputs["MediaBucketName"]
        video = _drop_and_wait(cloud, clips["h264"])
        table = cloud.resolver.physical_ids["IdempotencyTable"]
        assert video["status"] == "FAILED"
        assert video["reason"].startswith("AccessDenied"), video["reason"]
        assert "dynamodb:PutItem" in video["reason"] and f"table/{table}" in video["reason"]
        assert "FinalizeFunctionRole" in video["reason"]  # who was refused
        assert _dlq_depth(cloud, "CompletionDLQUrl") == 0  # decided at once, not after five retries
        assert "job_slots" not in video  # the slots finalize holds were given back

    with LocalCloud(stack_name=STACK, function_env=QUIET_FUNCTIONS_ENV) as cloud:
        video = _drop_and_wait(cloud, clips["h264"])
        assert video["status"] == "INDEXED", video.get("reason")
