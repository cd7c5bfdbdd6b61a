"""`cliplake demo`: a real batch through the state machine on one machine.

local cloud up (moto from the template, dispatcher, Rekognition-compatible endpoint, local scheduler) → a batch
execution: plan (Wikimedia Commons and Pixabay when reachable and configured, else the bundled samples) → each
video ingested and followed by its task token through analyze → Rekognition → finalize → index → summary,
published to the notifications topic and printed here.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from typing import Any

from cliplake.adapters.catalog import Catalog
from cliplake_cli.assets import ensure_assets
from cliplake_cli.batchops import follow_batch, print_summary
from cliplake_cli.console import env_hint, format_video_line, say
from cliplake_cli.stack import StackConfig, from_environment, start_batch

# S3's test event on set-up carries no records, hence no metric: powertools warns about it on every run.
warnings.filterwarnings("ignore", message="No application metrics to publish")


def run_demo(timeout_s: float = 600, batch_size: int = 2, campaign: str = "", data_dir: str | None = None) -> int:
    """A batch on the local cloud of `data_dir` (the default data directory): attached to it when it runs,
    else started for the demo. The batch stays in that lake; the last lines say how to open the dashboard."""
    from cliplake_localcloud.cloud import QUIET_FUNCTIONS_ENV, LocalCloud
    from cliplake_localcloud.persistence import DataDir, DataDirBusy, default_data_dir

    assets = ensure_assets()
    if not (assets / "samples.json").is_file():
        raise SystemExit("cliplake demo: no sample videos found; run `make setup`")
    data = DataDir(data_dir or default_data_dir())
    say(f"cliplake demo: starting the local cloud on {data.path} (moto server + stack from infra/template.yaml)")
    started = time.monotonic()
    try:
        cloud = LocalCloud(port=0, function_env=QUIET_FUNCTIONS_ENV, data_dir=data.path).start()
    except DataDirBusy:
        return _demo_on_running_cloud(data, timeout_s, batch_size, campaign)
    handler = _log_records_to(data.log_file)
    try:
        state = "restored" if cloud.restored and cloud.restored.anything else "new"
        say(f"  local cloud ready on {cloud.endpoint_url} in {time.monotonic() - started:.1f} s ({state} data dir)")
        code = _demo_batch(from_environment(), timeout_s, batch_size, campaign, cloud.client("stepfunctions"), cloud)
    finally:
        cloud.stop()
        logging.getLogger().removeHandler(handler)
        handler.close()
    _how_to_continue(data)
    return code


def _log_records_to(path: Any) -> logging.Handler:
    """The functions' log records (the stages' warnings: a batch that plans nothing, a video rejected) go to the
    data directory's log file, as `cliplake up` keeps them; without a handler Python printed each one bare on the
    demo's console, beside the summary that says the same."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


def _demo_on_running_cloud(data: Any, timeout_s: float, batch_size: int, campaign: str) -> int:
    import os

    env = data.read_info().get("env") or {}
    say(f"  a local cloud already runs on {data.path} ({env.get('AWS_ENDPOINT_URL', '?')}): the demo uses it")
    os.environ.update(env)
    code = _demo_batch(from_environment(), timeout_s, batch_size, campaign, None, None)
    _how_to_continue(data, running=True)
    return code


def _how_to_continue(data: Any, running: bool = False) -> None:
    flag = "" if env_hint(data).endswith('env)"') else f" --data {data.path}"
    print(f"\nThe batch stays in the local cloud's lake: {data.path}/s3 (media-raw/, media-processed/).")
    print(f"Open the dashboard on it: cliplake dashboard{flag}   (http://127.0.0.1:8501)")
    if not running:
        print(f"Or keep the cloud running: cliplake up{flag}   then, in another shell: {env_hint(data)}")


def _demo_batch(config: StackConfig, timeout_s: float, batch_size: int, campaign: str, sfn: Any, cloud: Any) -> int:
    catalog = Catalog(config.table)
    t0 = time.monotonic()
    name, arn = start_batch(config, campaign, batch_size, sfn=sfn)
    say(f"cliplake demo: batch {name} started (Step Functions execution)")
    execution, record = follow_batch(catalog, arn, name, timeout_s, sfn=sfn)
    if cloud is not None:
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
            print(f"      summary: s3://{config.bucket}/{video['summary_key']}")
    print("  batch record: " + json.dumps({k: record.get(k) for k in ("received", "processed", "failed")}))
    if execution["status"] == "SUCCEEDED" and not record.get("received"):
        print("  (nothing new to plan: the library keeps what earlier runs indexed)")
        return 0
    return 0 if execution["status"] == "SUCCEEDED" and not record.get("failed") else 1
