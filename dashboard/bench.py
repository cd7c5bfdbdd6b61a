"""Dashboard benchmark: render time of the library and of a video page with 10,000 videos in the catalog.

    python -m dashboard.bench [--videos 10000] [--runs 5]

Starts its own local cloud (one per process, no dispatcher), seeds video and label items with batch_write_item
(one real clip with a summary, for the video page), then times Streamlit AppTest renders: median of `runs`
(the first, cold render is reported apart).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

APP = str(Path(__file__).resolve().parent / "app.py")
LABELS = [f"Bench{i:02d}" for i in range(20)]


def _video_item(i: int, now: datetime, label: str, conf: float) -> dict[str, Any]:
    vid = f"vbench{i:08d}"
    created = (now - timedelta(seconds=i)).isoformat(timespec="milliseconds")
    source = ("wikimedia", "pixabay", "dropin")[i % 3]
    return {
        "pk": f"VIDEO#{vid}", "sk": "META", "video_id": vid, "status": "INDEXED", "reason": "",
        "source": source, "campaign": f"bench{i % 5}", "filename": f"bench_{i:05d}.mp4",
        "raw_key": f"media-raw/video/{source}/bench/20260101_000000/bench_{i:05d}.mp4", "duration_ms": 4000,
        "width": 320, "height": 240, "shots": 2, "top_labels": [{"name": label, "max_confidence": conf,
        "total_ms": 4000, "segments": 1, "categories": []}], "label_scores": {label: conf},
        "credit_line": f'"bench {i}" via {source}', "created_at": created, "indexed_at": created,
        "gsi1pk": f"CAMPAIGN#bench{i % 5}", "gsi1sk": f"{created}#{vid}",
        "gsi2pk": f"SOURCE#{source}", "gsi2sk": f"{created}#{vid}",
    }  # fmt: skip


def seed(cloud: Any, n: int) -> str:
    """n videos with one label each; returns the id of one real, playable video with a summary."""
    from cliplake.adapters.catalog import label_sk, to_ddb
    from cliplake.media import ffmpeg_exe

    ddb, table, now = cloud.client("dynamodb"), cloud.outputs["CatalogTableName"], datetime.now(UTC)
    requests: list[dict[str, Any]] = []
    for i in range(n):
        label, conf = LABELS[i % len(LABELS)], 50 + (i * 7919) % 5000 / 100
        video = _video_item(i, now, label, conf)
        hit = {"pk": f"LABEL#{label.lower()}", "sk": label_sk(conf, video["video_id"]), "video_id": video["video_id"],
               "name": label, "confidence": conf, "total_ms": 4000, "campaign": video["campaign"],
               "source": video["source"], "filename": video["filename"]}  # fmt: skip
        requests += [{"PutRequest": {"Item": {k: to_ddb(v) for k, v in item.items()}}} for item in (video, hit)]
    for i in range(0, len(requests), 25):
        pending: dict[str, Any] = {table: requests[i : i + 25]}
        while pending:
            pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems", {})

    # One real video for the video page: a clip in the lake, its summary, its record.
    s3, bucket = cloud.client("s3"), cloud.outputs["MediaBucketName"]
    key, summary_key = "media-raw/video/dropin/bench/20260101_000000/real.mp4", "media-processed/bench_labels.json"
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "real.mp4"
        subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:d=4",
                        "-c:v", "libx264", "-pix_fmt", "yuv420p", str(clip)], check=True)  # fmt: skip
        etag = s3.put_object(Bucket=bucket, Key=key, Body=clip.read_bytes())["ETag"].strip('"')
    shots = [{"index": j, "start_ms": j * 2000, "end_ms": j * 2000 + 2000, "start_timecode": f"00:00:0{j * 2}:00",
              "end_timecode": f"00:00:0{j * 2 + 2}:00", "confidence": 99.0} for j in range(2)]  # fmt: skip
    labels = [{"name": name, "start_ms": j * 400, "end_ms": j * 400 + 1200, "max_confidence": 60 + j}
              for j, name in enumerate(LABELS[:8])]  # fmt: skip
    summary = {"video_id": "vbenchreal", "video": {"duration_ms": 4000}, "labels": labels, "shots": shots,
               "moderation": [], "top_labels": [], "credit_line": '"real" via dropin',
               "attribution": {"title": "real"}, "provenance": {"raw_key": key, "raw_etag": etag}}  # fmt: skip
    s3.put_object(Bucket=bucket, Key=summary_key, Body=json.dumps(summary).encode())
    real = {**_video_item(n, now, LABELS[0], 99.0), "video_id": "vbenchreal", "pk": "VIDEO#vbenchreal",
            "raw_key": key, "analysed_key": key, "raw_etag": etag, "summary_key": summary_key}  # fmt: skip
    ddb.put_item(TableName=table, Item={k: to_ddb(v) for k, v in real.items()})
    return "vbenchreal"


def _render(query: dict[str, str], state: dict[str, Any]) -> float:
    """One full render of the app (a fresh session) with these query parameters and widget values."""
    from streamlit.testing.v1 import AppTest

    started = time.perf_counter()
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    if at.exception or at.error:
        raise RuntimeError(f"render failed: {[e.value for e in [*at.exception, *at.error]]}")
    return time.perf_counter() - started


def run(report: Callable[[str], None] = print, videos: int = 10_000, runs: int = 5) -> dict[str, float]:
    from cliplake.settings import get_settings
    from cliplake_localcloud.cloud import LocalCloud

    # "missing ScriptRunContext" between AppTest runs: a filter, since AppTest resets streamlit's log levels.
    for name in ("streamlit.runtime.scriptrunner_utils.script_run_context", "streamlit.runtime.caching"):
        logging.getLogger(name).addFilter(lambda record: record.levelno >= logging.ERROR)
    with LocalCloud(port=0, start_dispatcher=False) as cloud:
        get_settings.cache_clear()
        t = time.perf_counter()
        real = seed(cloud, videos)
        report(f"Dashboard with {videos:,} videos in the catalog (seeded in {time.perf_counter() - t:.1f} s)")
        cases = {
            "library (newest, all sources)": ({"page": "library"}, {}),
            "library (label, min confidence 70)": ({"page": "library"}, {"lib_label": LABELS[3], "lib_min_conf": 70}),
            "library (campaign)": ({"page": "library"}, {"lib_campaign": "bench2"}),
            "video page (player, timeline, shots)": ({"page": "video", "video": real}, {}),
        }
        results = {}
        report(f"  {'render':40} {'cold':>8} {'median':>8} {'max':>8}  ({runs} warm runs)")
        for name, (query, state) in cases.items():
            cold = _render(query, state)
            warm = [_render(query, state) for _ in range(runs)]
            results[name] = statistics.median(warm)
            report(f"  {name:40} {cold:7.3f}s {results[name]:7.3f}s {max(warm):7.3f}s")
        get_settings.cache_clear()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dashboard-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    run(print, args.videos, args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
