"""`make bench`: measured speed of the local pipeline, medians and ratios from the same run.

1. Per-hop latency of the choreography over N videos (put → analysis started, completion → summary written,
   summary → indexed), from the catalog's timestamps and the completion messages' own timestamps. Videos are
   put one at a time, so each hop's pickup and work are measured, not queueing behind other videos.
2. The local analysis engine against a bare decode of the same file (when the engine provides `bench.run`).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from cliplake.adapters.catalog import Catalog
from cliplake.adapters.s3 import Lake
from cliplake.contracts import Attribution
from cliplake.lake import batch_timestamp, raw_key, video_id_for
from cliplake.media import ffmpeg_exe
from cliplake.settings import get_settings

SOURCES = ["testsrc2", "smptebars", "mandelbrot", "rgbtestsrc", "cellauto", "life"]
TARGET_P95_S = 0.5


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


def make_clips(directory: Path, n: int) -> list[Path]:
    clips = []
    for i in range(n):
        src = SOURCES[i % len(SOURCES)]
        path = directory / f"bench_{i:02d}_{src}.mp4"
        subprocess.run(
            [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-t", "2", "-i", f"{src}=size=320x240:rate=25",
             "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", str(path)],
            check=True,
        )  # fmt: skip
        clips.append(path)
    return clips


def wait_indexed(catalog: Catalog, vid: str, timeout_s: float = 120) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        video = catalog.get_video(vid) or {}
        # moto applies an update's SET actions one by one: a concurrent read can see the status before the
        # timestamp written with it, so wait for both.
        if video.get("status") == "FAILED" or (video.get("status") == "INDEXED" and "indexed_at" in video):
            return video
        time.sleep(0.02)
    raise TimeoutError(f"{vid} not indexed after {timeout_s} s")


def bench_hops(n: int) -> dict[str, list[float]]:
    from cliplake_ops.localcloud.cloud import LocalCloud

    hops: dict[str, list[float]] = {
        "put → analysis started": [],
        "analysis (Rekognition jobs)": [],
        "completion → summary written": [],
        "summary → indexed": [],
        "put → indexed (end to end)": [],
    }
    with tempfile.TemporaryDirectory() as tmp, LocalCloud(port=0) as cloud:
        get_settings.cache_clear()
        settings = get_settings()
        lake, catalog = Lake(settings.bucket), Catalog(settings.catalog_table)
        clips = make_clips(Path(tmp), n)
        ts = batch_timestamp()
        for i, clip in enumerate(clips):
            key = raw_key("dropin", "bench", clip.name, ts)
            put_at = time.time()
            lake.upload(clip, key, "video/mp4", Attribution(title=clip.stem).to_metadata())
            video = wait_indexed(catalog, video_id_for(key))
            if video["status"] != "INDEXED":
                raise RuntimeError(f"{clip.name} failed: {video.get('reason')}")
            started, completed = _epoch(video["jobs_started_at"]), video["last_completion_ms"] / 1000
            written, indexed = _epoch(video["summary_written_at"]), _epoch(video["indexed_at"])
            hops["put → analysis started"].append(started - put_at)
            hops["analysis (Rekognition jobs)"].append(completed - started)
            hops["completion → summary written"].append(written - completed)
            hops["summary → indexed"].append(indexed - written)
            hops["put → indexed (end to end)"].append(indexed - put_at)
            print(f"  video {i + 1}/{n} indexed in {indexed - put_at:.2f} s", file=sys.stderr)
        cloud.wait_idle(timeout=60)
    return hops


def report_hops(hops: dict[str, list[float]]) -> bool:
    ok = True
    print(f"\nPer-hop latency on the local cloud ({len(next(iter(hops.values())))} videos, 2 s 320x240 H.264)")
    print(f"  {'hop':32} {'median':>9} {'p95':>9} {'max':>9}  target")
    for name, values in hops.items():
        med, p95 = statistics.median(values), percentile(values, 95)
        is_hop = name in {"put → analysis started", "completion → summary written", "summary → indexed"}
        verdict = ("ok" if p95 < TARGET_P95_S else "MISSED") + f" (p95 < {TARGET_P95_S} s)" if is_hop else ""
        ok &= not is_hop or p95 < TARGET_P95_S
        print(f"  {name:32} {med:8.3f}s {p95:8.3f}s {max(values):8.3f}s  {verdict}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cliplake-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=12, help="videos for the per-hop latency (≥ 10)")
    parser.add_argument("--skip-engine", action="store_true", help="skip the analysis-engine benchmark")
    args = parser.parse_args(argv)
    report_hops(bench_hops(args.videos))
    if not args.skip_engine:
        try:
            from cliplake_ops.localcloud.rekognition import bench as engine_bench
        except ImportError:
            print("\n(analysis engine benchmark not available)")
        else:
            print()
            engine_bench.run(print)
    return 0


if __name__ == "__main__":
    sys.exit(main())
