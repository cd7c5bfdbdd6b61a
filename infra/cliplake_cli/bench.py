"""`make bench`: measured speed of the local pipeline, medians and ratios from the same run.

1. Per-hop latency of the choreography over N videos (put → analysis started, completion → summary written,
   summary → indexed), from the catalog's timestamps and the completion messages' own timestamps. Videos are
   put one at a time, so each hop's pickup and work are measured, not queueing behind other videos. Measured
   twice in the same run: in memory, and durable (a data directory: journal, checkpoints, bodies as files).
2. The local analysis engine against a bare decode of the same file (when the engine provides `bench.run`).
3. `cliplake sql` over the tables of 10,000 videos and the bytes a one-campaign query reads (`sqlbench`).
4. The cost per video on AWS of the batch design (task tokens, counted by walking the state machine definition)
   beside a 30-second polling design, from public per-request prices.
5. The durable local cloud (`persistbench`): resident memory while a 1 GB video is dropped and analysed beside
   idle, and the restart time with 10,000 catalogued videos.
6. The segmented transcode of a 10-minute 720p WebM beside a single pass, and the modelled wall time of a 2-hour
   1080p WebM on AWS (`transcode_bench`).
"""

from __future__ import annotations

import argparse
import json
import math
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
from cliplake.services import get_services
from cliplake.settings import FEATURES, get_settings

SOURCES = ["testsrc2", "smptebars", "mandelbrot", "rgbtestsrc", "cellauto", "life"]
SEEDED = {"cellauto", "life"}  # random patterns unless seeded: seeded, every run benchmarks the same clips
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
        graph = f"{src}=size=320x240:rate=25" + (":seed=1" if src in SEEDED else "")
        path = directory / f"bench_{i:02d}_{src}.mp4"
        subprocess.run(
            [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-t", "2", "-i", graph,
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
        # The hops are the catalog's own timestamps, not when this loop sees them: it may look rarely. Every 20 ms,
        # its signed, IAM-checked reads took a third of the cloud's time from the stages being measured.
        time.sleep(0.25)
    raise TimeoutError(f"{vid} not indexed after {timeout_s} s")


def bench_hops(n: int, enforce_iam: bool = True, durable: bool = False) -> dict[str, list[float]]:
    """Per-hop latency; `durable`: with a data directory (journal, checkpoints, bodies as files)."""
    from cliplake_localcloud.cloud import QUIET_FUNCTIONS_ENV, LocalCloud

    hops: dict[str, list[float]] = {
        "put → analysis started": [],
        "analysis (Rekognition jobs)": [],
        "completion → summary written": [],
        "summary → indexed": [],
        "put → indexed (end to end)": [],
    }
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalCloud(
            port=0,
            function_env=QUIET_FUNCTIONS_ENV,
            enforce_iam=enforce_iam,
            data_dir=Path(tmp) / "data" if durable else None,
        ) as cloud,
    ):
        get_settings.cache_clear()
        get_services.cache_clear()  # the handlers' clients of a previous cloud in this process
        lake, catalog = (
            Lake(cloud.outputs["MediaBucketName"], cloud.client("s3")),
            Catalog(cloud.outputs["CatalogTableName"], cloud.client("dynamodb")),
        )
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


HOPS = ("put → analysis started", "completion → summary written", "summary → indexed")
TARGET_IAM_RATIO = 1.1


def bench_enforcement(n: int, rounds: int = 2) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """The hops without IAM enforcement and with it, in alternating rounds of the same run (n videos each)."""
    plain: dict[str, list[float]] = {}
    enforced: dict[str, list[float]] = {}
    per_round = max(1, math.ceil(n / rounds))
    for r in range(rounds):
        for enforce, into in ((False, plain), (True, enforced)):
            print(f"  round {r + 1}/{rounds}, IAM {'enforced' if enforce else 'off'}", file=sys.stderr)
            for name, values in bench_hops(per_round, enforce_iam=enforce).items():
                into.setdefault(name, []).extend(values)
    return plain, enforced


def report_enforcement(plain: dict[str, list[float]], enforced: dict[str, list[float]]) -> bool:
    """Each hop's p95 with IAM enforced beside the figure without it; target: within 1.1x and under 0.5 s."""
    ok = True
    n = len(next(iter(enforced.values())))
    print(f"\nIAM enforcement: per-hop latency with and without it ({n} videos each, alternating rounds)")
    print(f"  {'hop':32} {'off p50':>8} {'off p95':>8} {'on p50':>8} {'on p95':>8} {'p95 ratio':>9}  target")
    for name, on in enforced.items():
        off = plain[name]
        off95, on95 = percentile(off, 95), percentile(on, 95)
        ratio = on95 / off95 if off95 else float("inf")
        verdict = ""
        if name in HOPS:
            met = ratio <= TARGET_IAM_RATIO and on95 < TARGET_P95_S
            ok &= met
            verdict = ("ok" if met else "MISSED") + f" (on p95 <= {TARGET_IAM_RATIO}x off, < {TARGET_P95_S} s)"
        print(f"  {name:32} {statistics.median(off):7.3f}s {off95:7.3f}s {statistics.median(on):7.3f}s "
              f"{on95:7.3f}s {ratio:8.2f}x  {verdict}")  # fmt: skip
    return ok


def report_hops(hops: dict[str, list[float]], title: str = "") -> bool:
    ok = True
    n = len(next(iter(hops.values())))
    print(f"\nPer-hop latency on the local cloud{title} ({n} videos, 2 s 320x240 H.264)")
    print(f"  {'hop':32} {'median':>9} {'p95':>9} {'max':>9}  target")
    for name, values in hops.items():
        med, p95 = statistics.median(values), percentile(values, 95)
        is_hop = name in HOPS
        verdict = ("ok" if p95 < TARGET_P95_S else "MISSED") + f" (p95 < {TARGET_P95_S} s)" if is_hop else ""
        ok &= not is_hop or p95 < TARGET_P95_S
        print(f"  {name:32} {med:8.3f}s {p95:8.3f}s {max(values):8.3f}s  {verdict}")
    return ok


# ------------------------------------------------------------------------------------------ cost model (AWS)
# Public on-demand prices, us-east-1, as listed on the services' pricing pages (checked for this model):
PRICE_SFN_STANDARD_TRANSITION = 0.025 / 1000  # USD; https://aws.amazon.com/step-functions/pricing/
PRICE_LAMBDA_REQUEST = 0.20 / 1_000_000  # USD, requests only; https://aws.amazon.com/lambda/pricing/
PRICE_SQS_REQUEST = 0.40 / 1_000_000  # USD, standard queue; https://aws.amazon.com/sqs/pricing/
PRICE_SNS_PUBLISH = 0.50 / 1_000_000  # USD; SNS→SQS deliveries are free; https://aws.amazon.com/sns/pricing/
SQS_REQUESTS_PER_MESSAGE = 3  # send + receive + delete (Lambda's event source mapping receives and deletes)
POLL_INTERVAL_S = 30
# Rekognition Video, stored video, first pricing tier (us-east-1), USD per minute of video, per feature, as listed
# on https://aws.amazon.com/rekognition/pricing/ (not re-checked from this offline machine); segment detection is
# billed per segment type: shots and technical cues, both requested by analyze.
PRICE_REKOGNITION_PER_MIN = {"labels": 0.10, "moderation": 0.10, "segments": 0.05 + 0.05, "text": 0.10}
ASL_PATH = Path(__file__).resolve().parents[1] / "statemachine" / "batch.asl.json"


# Step Functions Standard bills every state a workflow enters as one transition. A Distributed Map's child execution
# is billed one more transition when it starts, plus the states it enters itself; an inline Map's iterations are
# not billed, only their states (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-transitions.html).
# Task-token callbacks and heartbeats (SendTaskSuccess/Failure/Heartbeat) are API calls, not transitions.
CHILD_EXECUTION_START_TRANSITIONS = 1


def _follow(states: dict, start: str, caught: bool) -> list[str]:
    """The states one run enters from `start`: every Next to the end, or, when `caught`, to the first state with a
    Catch and then its first Catch's target to the end."""
    path, name = [], start
    while name:
        state = states[name]
        path.append(name)
        if caught and state.get("Catch"):
            name, caught = state["Catch"][0]["Next"], False
            continue
        name = None if state.get("End") or state.get("Type") in {"Succeed", "Fail"} else state.get("Next")
    return path


def item_paths(definition: dict) -> dict[str, object]:
    """What the batch definition does: the states of one batch (its top level, success path), and for each item
    the states its run enters on the success path and on the Catch path, and whether it is a child execution."""
    top = definition["States"]
    batch = _follow(top, definition["StartAt"], caught=False)
    [mapped] = [s for s in top.values() if s.get("ItemProcessor") or s.get("Iterator")]
    inner = mapped.get("ItemProcessor") or mapped["Iterator"]
    mode = inner.get("ProcessorConfig", {}).get("Mode", "INLINE")
    return {
        "batch": batch,
        "success": _follow(inner["States"], inner["StartAt"], caught=False),
        "catch": _follow(inner["States"], inner["StartAt"], caught=True),
        "child_execution": mode == "DISTRIBUTED",
    }


def start_transitions(paths: dict[str, object]) -> int:
    """Transitions billed to start one item's run: a child execution's start; nothing for an inline iteration."""
    return CHILD_EXECUTION_START_TRANSITIONS if paths["child_execution"] else 0


def transitions_per_item(definition: dict, failed_share: float = 0.0) -> float:
    """State transitions billed per video: the child execution's start (Distributed Map) and the states it enters,
    a `failed_share` of the videos taking the Catch path."""
    paths = item_paths(definition)
    return start_transitions(paths) + (1 - failed_share) * len(paths["success"]) + failed_share * len(paths["catch"])  # type: ignore[arg-type]


def cost_per_video(
    batch_size: int = 2,
    definition: dict | None = None,
    features: tuple[str, ...] = FEATURES,
    failed_share: float = 0.0,
) -> dict[str, float]:
    """Requests per video of this design on AWS, counted from the definition and the choreography; one
    Rekognition job (and completion) per feature."""
    definition = definition or json.loads(ASL_PATH.read_text())
    per_batch = len(item_paths(definition)["batch"])  # type: ignore[arg-type]
    jobs = len(features)
    tasks_per_batch = sum(
        1 for s in definition["States"].values() if s.get("Resource", "").endswith("waitForTaskToken")
    )  # plan + summarize: one BatchQueue message and one BatchFunction invocation each
    counts = {
        "state transitions": transitions_per_item(definition, failed_share) + per_batch / batch_size,
        # ingest, analyze, finalize (one per job completion at worst), index; plus plan/summarize per batch
        "lambda invocations": 1 + 1 + jobs + 1 + tasks_per_batch / batch_size,
        # messages: item (IngestQueue), raw S3 event, job completions, summary S3 event; plus batch tasks
        "sqs requests": SQS_REQUESTS_PER_MESSAGE * (1 + 1 + jobs + 1 + tasks_per_batch / batch_size),
        # Rekognition's completions; the batch summary
        "sns publishes": jobs + 1 / batch_size,
    }
    return counts


def cost_per_video_polling(analysis_s: float, batch_size: int = 2) -> dict[str, float]:
    """The same work driven by a 30-second polling loop (Start jobs → Wait 30 s → Get status → Choice, repeated)
    with direct Lambda task states, and the same plan/summary around it."""
    polls = max(1, math.ceil(analysis_s / POLL_INTERVAL_S))
    per_item_states = 1 + 3 * polls + 1 + 1  # ingest+start, (Wait, Get, Choice) x polls, finalize, index
    return {
        "state transitions": per_item_states + 3 / batch_size,  # plan, map, summary+notify amortised
        "lambda invocations": 1 + polls + 1 + 1 + 2 / batch_size,
        "sqs requests": 0.0,
        "sns publishes": 1 / batch_size,
    }


def dollars(counts: dict[str, float]) -> float:
    return (
        counts["state transitions"] * PRICE_SFN_STANDARD_TRANSITION
        + counts["lambda invocations"] * PRICE_LAMBDA_REQUEST
        + counts["sqs requests"] * PRICE_SQS_REQUEST
        + counts["sns publishes"] * PRICE_SNS_PUBLISH
    )


def rekognition_per_minute(features: tuple[str, ...] | list[str] = FEATURES) -> float:
    """Rekognition Video's charge per minute of video for the chosen features (the template's Features)."""
    return sum(PRICE_REKOGNITION_PER_MIN[f] for f in features)


def report_feature_costs() -> None:
    print("\nRekognition Video per minute of video, by the Features parameter (campaigns may choose a subset):")
    choices = [FEATURES, ("labels", "segments", "text"), ("labels", "moderation"), ("labels",), ("text",)]
    for features in choices:
        per_min = rekognition_per_minute(features)
        print(f"  {','.join(features):34} ${per_min:.2f}/min  ${per_min * 60:6.2f}/hour of video  "
              f"{len(features)} jobs and completions per video")  # fmt: skip


def report_costs(batch_size: int = 2, analysis_times_s: tuple[float, ...] = (60, 300, 1800)) -> None:
    ours = cost_per_video(batch_size)
    paths = item_paths(json.loads(ASL_PATH.read_text()))
    print(f"\nCost model per video on AWS (requests only, batch of {batch_size}; Rekognition, S3 and Lambda")
    print("duration are the same in both designs and left out). Prices: Step Functions Standard")
    prices = (
        f"${PRICE_SFN_STANDARD_TRANSITION * 1000:.3f}/1k transitions, Lambda ${PRICE_LAMBDA_REQUEST * 1e6:.2f}/1M "
        f"requests, SQS ${PRICE_SQS_REQUEST * 1e6:.2f}/1M, SNS ${PRICE_SNS_PUBLISH * 1e6:.2f}/1M (us-east-1)."
    )
    print(prices)
    start = start_transitions(paths)
    child = "a child execution of the Distributed Map" if paths["child_execution"] else "an inline Map iteration"
    for line in (
        "Assumptions (state transitions counted from infra/statemachine/batch.asl.json):",
        "- each state an execution enters is one transition; task-token answers and heartbeats are API calls, free",
        f"- a batch enters {' -> '.join(paths['batch'])}: {len(paths['batch'])}, shared by its videos",
        f"- each video is {child}: {start} transition to start it, then {' -> '.join(paths['success'])} "
        f"({len(paths['success'])}) when indexed,",
        f"  {' -> '.join(paths['catch'])} ({len(paths['catch'])}) on the Catch path (a failed video)",
        "  (the states a child execution enters in the local cloud are checked against these paths by",
        "  pytest tests/test_segments_e2e.py -k quotas)",
        "- an SQS message is send + receive + delete; one Rekognition job and completion per feature",
    ):
        print(line)
    header = f"  {'design':38} {'transitions':>11} {'lambda':>7} {'sqs':>6} {'sns':>5} {'USD/video':>11} {'USD/1k':>8}"
    print(header)

    def row(label: str, c: dict[str, float]) -> None:
        usd = dollars(c)
        print(f"  {label:38} {c['state transitions']:11.2f} {c['lambda invocations']:7.1f} "
              f"{c['sqs requests']:6.1f} {c['sns publishes']:5.1f} {usd:11.7f} {usd * 1000:8.4f}")  # fmt: skip

    row("task tokens (this design, any T)", ours)
    row("  batch of 1,000, none failing", cost_per_video(1000))
    row("  batch of 1,000, a fifth failing", cost_per_video(1000, failed_share=0.2))
    for t in analysis_times_s:
        row(f"30 s polling, analysis T = {t:.0f} s", cost_per_video_polling(t, batch_size))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cliplake-bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=12, help="videos for the per-hop latency (≥ 10)")
    parser.add_argument("--skip-engine", action="store_true", help="skip the analysis-engine benchmark")
    parser.add_argument("--skip-dashboard", action="store_true", help="skip the dashboard render benchmark")
    parser.add_argument("--cost-only", action="store_true", help="only the AWS cost model (no local cloud)")
    parser.add_argument("--skip-sql", action="store_true", help="skip `cliplake sql` over 10,000 videos")
    parser.add_argument("--skip-persistence", action="store_true", help="skip the memory and restart benchmarks")
    parser.add_argument("--gb", type=float, default=1.0, help="size of the video of the memory benchmark, GiB")
    parser.add_argument("--catalogued", type=int, default=10_000, help="catalogued videos for the restart time")
    parser.add_argument("--skip-transcode", action="store_true", help="skip the segmented-transcode benchmark")
    parser.add_argument("--transcode-only", action="store_true", help="only the segmented-transcode benchmark")
    parser.add_argument("--transcode-seconds", type=int, default=600, help="length of the transcode benchmark's video")
    args = parser.parse_args(argv)
    if args.transcode_only:
        from cliplake_cli import transcode_bench

        transcode_bench.run(print, seconds=args.transcode_seconds)
        return 0
    report_costs()
    report_feature_costs()
    if args.cost_only:
        return 0
    plain, enforced = bench_enforcement(args.videos)
    report_hops(enforced, ", in memory, IAM enforced")
    report_enforcement(plain, enforced)
    report_hops(bench_hops(args.videos, durable=True), ", durable (data directory: journal, checkpoints, files)")
    if not args.skip_persistence:
        from cliplake_cli import persistbench

        persistbench.bench_memory(args.gb)
        persistbench.bench_restart(args.catalogued)
    if not args.skip_engine:
        try:
            from cliplake_localcloud.rekognition import bench as engine_bench
        except ImportError:
            print("\n(analysis engine benchmark not available)")
        else:
            from cliplake_localcloud.rekognition import quality

            print()
            engine_bench.run(print)
            print("\nLabel quality on the evaluation set (expected labels written down before the first run):")
            quality.run(print, engine_bench.default_engine())
    if not args.skip_dashboard:
        from dashboard import bench as dashboard_bench

        print()
        dashboard_bench.run(print)
    if not args.skip_sql:
        from cliplake_cli import sqlbench

        print()
        sqlbench.run(print)
    if not args.skip_transcode:
        from cliplake_cli import transcode_bench

        print()
        transcode_bench.run(print, seconds=args.transcode_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
