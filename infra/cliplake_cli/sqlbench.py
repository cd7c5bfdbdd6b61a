"""`make bench`, SQL part: `cliplake sql` over the tables of 10,000 videos on the local cloud.

The tables' objects (one per video per table, as the index stage writes them) are generated directly into the
local cloud's S3 backend, not through the pipeline: 10,000 videos over 4 sources x 5 campaigns, 2-12 label segments
each. Measured, medians of the same run:
- a label count per campaign over S3, as on a deployed stack: the first query (every object fetched into an empty
  cache) and warm queries in-process (listing + DuckDB);
- the same on disk, as the local cloud reads its own lake (its data directory keeps the objects as files): warm
  queries in-process and the whole `cliplake sql` command as a user runs it (a new process: imports, listing,
  DuckDB) - the figure the target is about;
- the bytes DuckDB reads for a one-campaign query against the whole table (partition pruning).
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cliplake.lake import raw_key, video_id_for
from cliplake.tables import LabelRow, VideoRow, table_key, to_ndjson

TARGET_S = 1.0
SOURCES = ("wikimedia", "pixabay", "dropin", "samples")
CAMPAIGNS = ("travel", "tech", "nature", "city", "sea")
LABELS = ("Person", "Car", "Tree", "Bird", "Dog", "Waterfall", "Sky", "Building", "Road", "Beach", "Cat", "Boat")
COUNT_PER_CAMPAIGN = "SELECT campaign, count(*) AS segments FROM labels GROUP BY campaign ORDER BY campaign"
ONE_CAMPAIGN = "SELECT name, count(*) AS segments FROM labels WHERE campaign = 'nature' GROUP BY name ORDER BY name"


def generate(put: Callable[[str, bytes], None], n: int, seed: int = 7) -> int:
    """Write the `videos` and `labels` objects of `n` videos; returns the label rows written."""
    rng = random.Random(seed)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    segments = 0
    for i in range(n):
        source, campaign = SOURCES[i % len(SOURCES)], CAMPAIGNS[(i // len(SOURCES)) % len(CAMPAIGNS)]
        when = start + timedelta(minutes=13 * i)
        key = raw_key(source, campaign, f"clip_{i:05d}.mp4", when.strftime("%Y%m%d_%H%M%S"))
        vid, at = video_id_for(key), when.strftime("%Y-%m-%d %H:%M:%S")
        labels = []
        for _ in range(rng.randint(2, 12)):
            a = rng.randrange(0, 60_000, 500)
            end = a + rng.randrange(500, 9000, 500)
            conf = round(rng.uniform(50, 99), 3)
            labels.append(
                LabelRow(video_id=vid, name=rng.choice(LABELS), start_ms=a, end_ms=end, max_confidence=conf,
                         instances=1, ingested_at=at)
            )  # fmt: skip
        video = VideoRow(
            video_id=vid, status="INDEXED", filename=key.rsplit("/", 1)[-1], raw_key=key, ingested_at=at,
            duration_ms=60_000, width=1280, height=720, codec="h264", label_segments=len(labels),
        )  # fmt: skip
        put(table_key("videos", source, campaign, vid), to_ndjson([video]).encode())
        put(table_key("labels", source, campaign, vid), to_ndjson(labels).encode())
        segments += len(labels)
    return segments


def _median(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run(say: Callable[[str], None] = print, n: int = 10_000, runs: int = 5) -> bool:
    from moto.s3.models import s3_backends

    from cliplake_cli.sql import LakeSQL
    from cliplake_localcloud.cloud import QUIET_FUNCTIONS_ENV, LocalCloud

    say(f"SQL over the lake's tables: {n:,} videos (cliplake sql, DuckDB)")
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalCloud(start_dispatcher=False, function_env=QUIET_FUNCTIONS_ENV, data_dir=Path(tmp) / "data") as cloud,
    ):
        bucket = cloud.outputs["MediaBucketName"]
        account = cloud.resolver.account_id if cloud.resolver else "123456789012"
        backend = s3_backends[account]["aws"]
        t = time.perf_counter()
        segments = generate(lambda k, b: backend.put_object(bucket, k, b, disable_notification=True), n)
        say(f"  generated {2 * n:,} table objects ({segments:,} label segments) in {time.perf_counter() - t:.1f} s")

        cache = Path(tmp) / "cache"
        t = time.perf_counter()
        sql = LakeSQL(bucket, cloud.client("s3"), cache, disk_root=None)
        cold = sql.query(COUNT_PER_CAMPAIGN)
        cold_s = time.perf_counter() - t
        assert sum(r[1] for r in cold.rows) == segments, (cold.rows, segments)
        warm_s = _median(lambda: sql.query(COUNT_PER_CAMPAIGN), runs)
        duckdb_s = _median(lambda: sql.query(COUNT_PER_CAMPAIGN, relist=False), runs)
        listing_s = _median(lambda: sql.fs._list("labels"), runs)
        whole = sql.query("SELECT count(*) FROM labels")
        one = sql.query(ONE_CAMPAIGN)
        sql.close()

        disk = LakeSQL(bucket, cloud.client("s3"), Path(tmp) / "disk-cache")  # finds the data directory's files
        assert disk.fs.disk_root is not None, "the lake is not on disk"
        assert disk.query(COUNT_PER_CAMPAIGN).rows == cold.rows
        disk_s = _median(lambda: disk.query(COUNT_PER_CAMPAIGN), runs)
        disk_listing_s = _median(lambda: disk.fs._list("labels"), runs)
        disk.close()

        env = {**os.environ, "XDG_CACHE_HOME": str(cache.parent / "xdg")}
        cmd = [sys.executable, "-m", "cliplake_cli.cli", "sql", COUNT_PER_CAMPAIGN]
        subprocess.run(cmd, env=env, check=True, capture_output=True)  # fills that process's cache
        cli_s = _median(lambda: subprocess.run(cmd, env=env, check=True, capture_output=True), runs)

    say(f"  over S3 (a deployed stack), first query (fetches {cold.stats.objects_fetched:,} objects): {cold_s:.2f} s")
    say(f"  over S3, warm (listing + DuckDB), median of {runs}: {warm_s:.3f} s")
    say(f"    of which listing the {n:,} objects from the local S3: {listing_s:.3f} s; DuckDB alone: {duckdb_s:.3f} s")
    say(f"  on disk (the local cloud's data directory), warm, median of {runs}: {disk_s:.3f} s "
        f"(listing the files: {disk_listing_s:.3f} s)")  # fmt: skip
    ok = cli_s < TARGET_S
    verdict = "meets" if ok else "misses"
    say(
        f"  `cliplake sql` command on the local cloud (new process, on disk), median of {runs}: {cli_s:.2f} s "
        f"({verdict} < {TARGET_S:.0f} s)"
    )
    share = one.stats.bytes_read / max(whole.stats.bytes_read, 1)
    say(f"  bytes read: one campaign {one.stats.bytes_read:,} of {whole.stats.bytes_read:,} for the whole table "
        f"({share:.0%}; {len(CAMPAIGNS)} campaigns, partition pruning)")  # fmt: skip
    return ok


if __name__ == "__main__":
    sys.exit(0 if run() else 1)
