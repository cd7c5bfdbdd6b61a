"""`cliplake demo`: a real batch through the state machine on one machine.

local cloud up (moto from the template, dispatcher, Rekognition-compatible endpoint, local scheduler) → a batch
execution: plan (Wikimedia Commons and Pixabay when reachable and configured, else the bundled samples) → each
video ingested and followed by its task token through analyze → Rekognition → finalize → index → summary,
published to the notifications topic and printed here.
"""

from __future__ import annotations

import json
import time
import warnings

from cliplake.adapters.catalog import Catalog
from cliplake.settings import get_settings
from cliplake_ops.assets import ensure_assets
from cliplake_ops.batchops import follow_batch, print_summary, start_batch
from cliplake_ops.cli import format_video_line, say

# S3's test event on set-up carries no records, hence no metric: powertools warns about it on every run.
warnings.filterwarnings("ignore", message="No application metrics to publish")


def run_demo(timeout_s: float = 600, batch_size: int = 2, campaign: str = "") -> int:
    from cliplake_ops.localcloud.cloud import QUIET_FUNCTIONS_ENV, LocalCloud

    assets = ensure_assets()
    if not (assets / "samples.json").is_file():
        raise SystemExit("cliplake demo: no sample videos found; run `make setup`")
    say("cliplake demo: starting the local cloud (moto server + stack from infra/template.yaml)")
    started = time.monotonic()
    with LocalCloud(port=0, function_env=QUIET_FUNCTIONS_ENV) as cloud:
        say(f"  local cloud ready on {cloud.endpoint_url} in {time.monotonic() - started:.1f} s")
        get_settings.cache_clear()
        settings = get_settings()
        catalog = Catalog(settings.catalog_table)
        t0 = time.monotonic()
        name, arn = start_batch(settings, campaign, batch_size, sfn=cloud.client("stepfunctions"))
        say(f"cliplake demo: batch {name} started (Step Functions execution)")
        execution, record = follow_batch(catalog, arn, name, timeout_s, sfn=cloud.client("stepfunctions"))
        cloud.wait_idle(timeout=60)
        say(f"  batch finished in {time.monotonic() - t0:.1f} s")
        if record.get("offline"):
            failed = record.get("sources_failed") or {}
            why = "; ".join(f"{k}: {v}" for k, v in failed.items()) or "they had nothing new"
            print(f"\nRAN OFFLINE: the live sources were not used ({why}); the batch took the bundled samples.")
        print_summary(execution, record)
        for item in record.get("items", []):
            video = catalog.get_video(item["video_id"]) or {}
            print("  " + format_video_line(video) if video else f"  {item['video_id']}: not ingested")
            if video.get("credit_line"):
                print(f"      credit: {video['credit_line']}")
            if video.get("summary_key"):
                print(f"      summary: s3://{settings.bucket}/{video['summary_key']}")
        print("  batch record: " + json.dumps({k: record.get(k) for k in ("received", "processed", "failed")}))
    ok = execution["status"] == "SUCCEEDED" and record.get("received", 0) > 0 and not record.get("failed")
    return 0 if ok else 1
