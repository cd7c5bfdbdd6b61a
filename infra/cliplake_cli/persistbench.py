"""`make bench`, the durable local cloud: memory while a 1 GB video is dropped and analysed, restart time with
10,000 catalogued videos. The cloud runs as a child process (`cliplake up --data DIR`), measured from outside.

    python -m cliplake_cli.persistbench [--gb 1.0] [--videos 10000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from cliplake.lake import video_id_for
from cliplake.media import ffmpeg_exe
from cliplake_localcloud.child import ChildCloud

TARGET_MEMORY_MB = 300
TARGET_RESTART_S = 5.0
MB = 1 << 20


def synthetic_video(path: Path, size_bytes: int) -> Path:
    """A big H.264 file, cheaply: a few seconds of lossless 720p noise (≈ 35 MB/s of video), encoded once and
    repeated by stream copy until the file is `size_bytes`."""
    chunk = path.with_name("chunk.mp4")
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25",
                    "-vf", "noise=alls=40:allf=t", "-t", "3", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0",
                    "-pix_fmt", "yuv420p", str(chunk)], check=True)  # fmt: skip
    loops = max(0, -(-size_bytes // chunk.stat().st_size) - 1)
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", str(loops), "-i", str(chunk), "-c", "copy",
                    "-movflags", "+faststart", str(path)], check=True)  # fmt: skip
    chunk.unlink()
    return path


class Sampler:
    """The peak of the cloud's memory (`ChildCloud.memory_bytes`), sampled every `interval_s`."""

    def __init__(self, cloud: ChildCloud, interval_s: float = 0.2) -> None:
        self.cloud, self.interval_s = cloud, interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, self.cloud.memory_bytes())

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def bench_memory(size_gb: float, report: Any = print) -> dict[str, float]:
    """Peak memory while a 3 s clip, then a `size_gb` video, are dropped and analysed in one cloud: the clip's
    peak is what the analysis itself costs (models, frames), the difference is what the file's size costs."""
    from cliplake_cli.cli import drop_files, wait_for_videos

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clip = synthetic_video(root / "clip.mp4", 0)  # one 3 s chunk
        video = synthetic_video(root / "big.mp4", int(size_gb * (1 << 30)))
        size, clip_size = video.stat().st_size, clip.stat().st_size
        cloud = ChildCloud(root / "data", root / "cloud.log").start()
        try:
            time.sleep(3)  # settle after start-up (imports, first checkpoint)
            idle = max(cloud.memory_bytes() for _ in range(10) if not time.sleep(0.2))
            with Sampler(cloud) as first:
                wait_for_videos(cloud.catalog(), drop_files(cloud.lake(), [clip], "nature"), timeout_s=600)
            t0 = time.perf_counter()
            with Sampler(cloud) as sampler:
                keys = drop_files(cloud.lake(), [video], "nature")
                uploaded = time.perf_counter() - t0
                [record] = wait_for_videos(cloud.catalog(), keys, timeout_s=1800)
            total = time.perf_counter() - t0
            on_disk = sum(p.stat().st_size for p in (root / "data" / "s3" / ".bodies").iterdir())
        finally:
            cloud.stop()
    grew, clip_grew = (sampler.peak - idle) / MB, (first.peak - idle) / MB
    verdict = "ok" if grew <= TARGET_MEMORY_MB else "MISSED"
    report(f"\nLocal cloud memory, a {size / (1 << 30):.2f} GB H.264 video dropped and analysed "
           f"({record['status']}, {record.get('duration_ms', 0) / 1000:.0f} s of video; upload {uploaded:.1f} s, "
           f"indexed after {total:.1f} s)")  # fmt: skip
    report(f"  memory of the cloud (its RSS, its children's own): idle {idle / MB:.0f} MB, "
           f"peak {sampler.peak / MB:.0f} MB, +{grew:.0f} MB  {verdict} "
           f"(target: within {TARGET_MEMORY_MB} MB of idle)")  # fmt: skip
    report(
        f"  a {clip_size / MB:.0f} MB 3 s clip analysed first: peak +{clip_grew:.0f} MB (the analysis' "
        f"own models and frames); what the {size / (1 << 30):.2f} GB size adds: {grew - clip_grew:+.0f} MB"
    )
    report(f"  bodies on disk in the data directory: {on_disk / MB:.0f} MB (the objects, summaries and renditions)")
    return {"idle_mb": idle / MB, "peak_mb": sampler.peak / MB, "grew_mb": grew, "clip_grew_mb": clip_grew,
            "video_id": video_id_for(keys[0])}  # fmt: skip


CHECKPOINT_WINDOW_S = 12.0  # two checkpoints or more (one every few seconds of writes)


def write_latencies(cloud: ChildCloud, seconds: float) -> list[float]:
    """Latency of catalog writes, one after another, for `seconds`: how long writes wait on checkpoints."""
    ddb, table = cloud.client("dynamodb"), cloud.env["CLIPLAKE_CATALOG_TABLE"]
    out: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        ddb.put_item(TableName=table, Item={"pk": {"S": f"BENCH#{len(out)}"}, "sk": {"S": "WRITE"}})
        out.append(time.perf_counter() - t0)
    return out


def bench_restart(videos: int, report: Any = print) -> dict[str, float]:
    from dashboard.bench import seed

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cloud = ChildCloud(root / "data", root / "cloud.log").start()
        first = cloud.start_s
        try:
            t0 = time.perf_counter()
            seed(cloud, videos)
            seeded = time.perf_counter() - t0
            count = len(cloud.catalog().list_videos(source="wikimedia", limit=videos))
            cloud.stop()
            clean = cloud.start().start_s
            time.sleep(1)
            cloud.kill9()  # a crash with a checkpoint a second old: most of the work is loading it
            crashed = cloud.start().start_s
            after = len(cloud.catalog().list_videos(source="wikimedia", limit=videos))
            pickle_mb = (root / "data" / "state.pickle").stat().st_size / MB
            writes = write_latencies(cloud, seconds=CHECKPOINT_WINDOW_S)
        finally:
            cloud.stop()
    verdict = "ok" if max(clean, crashed) <= TARGET_RESTART_S else "MISSED"
    report(f"\nLocal cloud restart with {videos} catalogued videos (seeded in {seeded:.1f} s; checkpoint "
           f"{pickle_mb:.1f} MB)")  # fmt: skip
    report(f"  first start (stack created) {first:.2f} s; restart after Ctrl-C {clean:.2f} s; after kill -9 "
           f"{crashed:.2f} s  {verdict} (target <= {TARGET_RESTART_S:.0f} s)")  # fmt: skip
    writes.sort()
    p95 = writes[int(len(writes) * 0.95)]
    report(f"  catalog writes for {CHECKPOINT_WINDOW_S:.0f} s, checkpoints of this state (forked) meanwhile: "
           f"{len(writes)} writes, median {statistics.median(writes) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
           f"max {writes[-1] * 1000:.0f} ms")  # fmt: skip
    if after != count:
        report(f"  MISSED: {count} wikimedia videos before the restarts, {after} after")
    return {"first_s": first, "clean_s": clean, "crash_s": crashed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cliplake-persistbench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=1.0, help="size of the synthetic video, GiB")
    parser.add_argument("--videos", type=int, default=10_000, help="catalogued videos for the restart time")
    parser.add_argument("--skip-memory", action="store_true", help="skip the memory benchmark")
    parser.add_argument("--skip-restart", action="store_true", help="skip the restart benchmark")
    args = parser.parse_args(argv)
    if not args.skip_memory:
        bench_memory(args.gb)
    if not args.skip_restart:
        bench_restart(args.videos)
    return 0


if __name__ == "__main__":
    sys.exit(main())
