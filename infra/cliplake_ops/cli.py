"""`cliplake`: run the local cloud, drop videos into the lake, and read the catalog.

    cliplake up [--port N]                      the local cloud, in the foreground until Ctrl-C
    cliplake demo                               the whole pipeline on the bundled sample videos, offline
    cliplake drop FILE... --campaign NAME       upload to media-raw/video/dropin/<campaign>/<ts>/
    cliplake videos [--label NAME] [--text WORD] [--campaign NAME] [--source NAME]
    cliplake show VIDEO_ID
    cliplake dashboard [--port N] [--headless]  the Streamlit dashboard (dashboard/app.py)
    cliplake sql "SELECT ..." [--json|--csv]    SQL over the lake's tables (DuckDB); `reindex` rebuilds them

`drop`, `videos` and `show` work against the local cloud (export what `cliplake up` prints) and against a real
AWS account alike: resources come from CLIPLAKE_* variables or from the stack's outputs (`--stack`).
"""

from __future__ import annotations

import argparse
import json
import mimetypes
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3

from cliplake.adapters.catalog import Catalog
from cliplake.adapters.s3 import Lake
from cliplake.contracts import Attribution
from cliplake.lake import batch_timestamp, raw_key, video_id_for
from cliplake.settings import Settings, get_settings

DEFAULT_STACK = "cliplake"
TERMINAL = {"INDEXED", "FAILED"}


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------- resources
def resolve_settings(stack: str) -> Settings:
    """CLIPLAKE_* variables first; what they leave empty comes from the stack's outputs."""
    settings = get_settings().model_copy()
    if settings.bucket and settings.catalog_table and settings.batch_state_machine_arn:
        return settings
    try:
        stack_desc = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
    except Exception as err:
        if settings.bucket and settings.catalog_table:
            return settings  # batches unavailable; the other commands work
        raise SystemExit(
            f"cliplake: no CLIPLAKE_BUCKET/CLIPLAKE_CATALOG_TABLE set and stack {stack!r} not readable ({err}).\n"
            "Start the local cloud with `cliplake up` and export what it prints, or deploy with `sam deploy`."
        ) from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack_desc.get("Outputs", [])}
    settings.bucket = settings.bucket or outputs.get("MediaBucketName", "")
    settings.catalog_table = settings.catalog_table or outputs.get("CatalogTableName", "")
    settings.batch_state_machine_arn = settings.batch_state_machine_arn or outputs.get("BatchStateMachineArn", "")
    settings.notifications_topic_arn = settings.notifications_topic_arn or outputs.get("NotificationsTopicArn", "")
    if outputs.get("CampaignsParameterPath"):
        settings.campaigns_parameter_path = outputs["CampaignsParameterPath"]
    return settings


# ---------------------------------------------------------------------------------------------------- drop
class _Progress:
    """boto3 transfer callback: one line per file, updated in place."""

    def __init__(self, name: str, size: int) -> None:
        self.name, self.size, self.seen = name, max(size, 1), 0
        self._lock = threading.Lock()

    def __call__(self, n: int) -> None:
        with self._lock:
            self.seen += n
            pct = 100 * self.seen / self.size
            print(f"\r  uploading {self.name}: {pct:5.1f}%", end="", file=sys.stderr, flush=True)


def drop_files(lake: Lake, files: Sequence[Path], campaign: str, ts: str | None = None) -> list[str]:
    """Upload local files as ad-hoc drop-ins; returns their raw keys. Attribution: the file name as title."""
    ts = ts or batch_timestamp()
    keys = []
    for path in files:
        key = raw_key("dropin", campaign, path.name, ts)
        attribution = Attribution(title=path.stem, source="dropin")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        lake.client.upload_file(
            str(path),
            lake.bucket,
            key,
            ExtraArgs={"ContentType": content_type, "Metadata": attribution.to_metadata()},
            Callback=_Progress(path.name, path.stat().st_size),
        )
        print(file=sys.stderr)
        keys.append(key)
    return keys


def wait_for_videos(catalog: Catalog, keys: Sequence[str], timeout_s: float = 300) -> list[dict[str, Any]]:
    """Follow videos through the catalog until each is INDEXED or FAILED, printing each change."""
    ids = {video_id_for(k): k for k in keys}
    last: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    while True:
        records = {vid: catalog.get_video(vid) or {} for vid in ids}
        for vid, rec in records.items():
            status = rec.get("status", "WAITING")
            if last.get(vid) != status:
                last[vid] = status
                done = sum(1 for r in records.values() if r.get("status") in TERMINAL)
                say(f"  [{done}/{len(ids)}] {Path(ids[vid]).name}: {status.lower()}")
        if all(r.get("status") in TERMINAL for r in records.values()):
            return list(records.values())
        if time.monotonic() > deadline:
            raise TimeoutError(f"videos not finished after {timeout_s:.0f} s: {last}")
        time.sleep(0.2)


# ------------------------------------------------------------------------------------------------- display
def format_video_line(v: dict[str, Any]) -> str:
    labels = ", ".join(f"{t['name']} {t['max_confidence']:.0f}%" for t in v.get("top_labels", [])[:5])
    dur = v.get("duration_ms", 0) / 1000
    info = f"{dur:5.1f}s {v.get('width', 0)}x{v.get('height', 0)} {v.get('shots', 0)} shots"
    if v.get("status") == "FAILED":
        info = f"FAILED: {v.get('reason', '')}"
    return f"{v['video_id']}  {v.get('source', ''):9} {v.get('filename', '')[:40]:40}  {info}  {labels}"


def print_report(videos: list[dict[str, Any]], stats: dict[str, dict[str, int]]) -> None:
    print("\ncliplake: pipeline summary")
    for v in videos:
        print("  " + format_video_line(v))
        if v.get("credit_line") and v.get("status") == "INDEXED":
            print(f"      credit: {v['credit_line']}")
    print("  counts by source: " + ", ".join(f"{s}: {json.dumps(c)}" for s, c in sorted(stats.items())))


# ------------------------------------------------------------------------------------------------ commands
def cmd_up(args: argparse.Namespace) -> int:
    from cliplake_ops.localcloud.cloud import LocalCloud

    with LocalCloud(port=args.port) as cloud:
        print(f"cliplake local cloud on {cloud.endpoint_url}  (Ctrl-C stops it)")
        print("# reach it from another shell:")
        for k, v in sorted(cloud.env.items()):
            print(f"export {k}={v}")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            say("stopping")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from cliplake_ops.demo import run_demo

    return run_demo(timeout_s=args.timeout)


def cmd_drop(args: argparse.Namespace) -> int:
    settings = resolve_settings(args.stack)
    files = [Path(f) for f in args.files]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise SystemExit(f"cliplake drop: no such file: {', '.join(missing)}")
    keys = drop_files(Lake(settings.bucket), files, args.campaign)
    for key in keys:
        print(f"{video_id_for(key)}  s3://{settings.bucket}/{key}")
    if args.wait:
        videos = wait_for_videos(Catalog(settings.catalog_table), keys, args.timeout)
        for v in videos:
            print(format_video_line(v))
    return 0


def cmd_videos(args: argparse.Namespace) -> int:
    catalog = Catalog(resolve_settings(args.stack).catalog_table)
    if args.label:
        for hit in catalog.videos_by_label(args.label, args.min_confidence, args.limit):
            print(f"{hit['video_id']}  {hit['confidence']:6.2f}%  {hit['source']:9} {hit['filename']}")
        return 0
    if args.text:
        for hit in catalog.videos_by_text(args.text, args.limit):
            at = hit["start_ms"] / 1000
            print(f'{hit["video_id"]}  {at:7.1f}s  {hit["source"]:9} {hit["filename"]}  "{hit["line"]}"')
        return 0
    videos = catalog.list_videos(campaign=args.campaign, source=args.source, limit=args.limit)
    for v in videos:
        print(format_video_line(v))
    if not videos:
        say("no videos")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    settings = resolve_settings(args.stack)
    video = Catalog(settings.catalog_table).get_video(args.video_id)
    if video is None:
        raise SystemExit(f"cliplake show: no video {args.video_id}")
    summary = Lake(settings.bucket).get_json(video["summary_key"]) if video.get("summary_key") else None
    print(json.dumps(summary or video, indent=2, ensure_ascii=False, default=str))
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    """`streamlit run dashboard/app.py` with the current environment (CLIPLAKE_*, AWS_*), in this process."""
    import os

    root = Path(__file__).resolve().parents[2]
    app = root / "dashboard" / "app.py"
    if not app.is_file():
        raise SystemExit(f"cliplake dashboard: {app} not found (run from a checkout of cliplake)")
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port)]
    cmd += ["--browser.gatherUsageStats", "false"]
    if args.headless:
        cmd += ["--server.headless", "true"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    os.chdir(root)
    os.execve(sys.executable, cmd, env)  # noqa: S606 - streamlit replaces this process (signals reach it)


def cmd_run(args: argparse.Namespace) -> int:
    from cliplake_ops.batchops import follow_batch, print_summary, start_batch

    settings = resolve_settings(args.stack)
    name, arn = start_batch(settings, args.campaign, args.batch_size, args.max_concurrency)
    print(f"{name}  {arn}")
    if not args.wait:
        return 0
    execution, record = follow_batch(Catalog(settings.catalog_table), arn, name, args.timeout)
    print_summary(execution, record)
    return 0 if execution["status"] == "SUCCEEDED" else 1


def cmd_credits(args: argparse.Namespace) -> int:
    from cliplake_ops.batchops import credit_lines

    lines = credit_lines(Catalog(resolve_settings(args.stack).catalog_table), args.campaign, args.limit)
    for line in lines:
        print(line)
    if not lines:
        say("no indexed videos")
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from cliplake_ops.batchops import fire_schedule

    for arn in fire_schedule(resolve_settings(args.stack), args.name):
        print(arn)
    return 0


def cmd_smoke(args: argparse.Namespace) -> int:
    from cliplake_ops.batchops import smoke

    return smoke(resolve_settings(args.stack), args.timeout, args.campaign)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cliplake", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the local cloud in the foreground")
    up.add_argument("--port", type=int, default=5000, help="moto server port (0: any free port)")
    up.set_defaults(fn=cmd_up)

    demo = sub.add_parser("demo", help="run the pipeline end to end on the bundled samples")
    demo.add_argument("--timeout", type=float, default=600)
    demo.set_defaults(fn=cmd_demo)

    dash = sub.add_parser("dashboard", help="run the Streamlit dashboard")
    dash.add_argument("--port", type=int, default=8501)
    dash.add_argument("--headless", action="store_true", help="don't open a browser")
    dash.set_defaults(fn=cmd_dashboard)

    for name, fn, helptext in (
        ("drop", cmd_drop, "upload videos into the lake"),
        ("videos", cmd_videos, "list or search videos"),
        ("show", cmd_show, "print a video's summary"),
    ):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("--stack", default=DEFAULT_STACK, help="CloudFormation stack to read resources from")
        sp.set_defaults(fn=fn)
        if name == "drop":
            sp.add_argument("files", nargs="+")
            sp.add_argument("--campaign", required=True)
            sp.add_argument("--wait", action="store_true", help="follow the videos until indexed or failed")
            sp.add_argument("--timeout", type=float, default=600)
        elif name == "videos":
            sp.add_argument("--label")
            sp.add_argument("--text", help="a word of the on-screen text")
            sp.add_argument("--min-confidence", type=float, default=0.0)
            sp.add_argument("--campaign")
            sp.add_argument("--source", default="dropin")
            sp.add_argument("--limit", type=int, default=50)
        else:
            sp.add_argument("video_id")

    run = sub.add_parser("run", help="start a batch (plan, ingest, analyse, index, summary email)")
    run.add_argument("--campaign", default="", help="campaign name (becomes the current one); empty: current")
    run.add_argument("--batch-size", type=int, default=2)
    run.add_argument("--max-concurrency", type=int, default=None, help="videos in flight (default 5)")
    run.add_argument("--wait", action="store_true", help="follow the batch and print its summary")
    run.add_argument("--timeout", type=float, default=3600)
    run.set_defaults(fn=cmd_run)

    credits = sub.add_parser("credits", help="credit lines of the indexed videos")
    credits.add_argument("--campaign")
    credits.add_argument("--limit", type=int, default=200)
    credits.set_defaults(fn=cmd_credits)

    schedule = sub.add_parser("schedule", help="the weekly schedule")
    schedule.add_argument("action", choices=["fire"], help="fire: start the scheduled batch now")
    schedule.add_argument("--name", help="one schedule by name (default: every schedule of the state machine)")
    schedule.set_defaults(fn=cmd_schedule)

    smoke = sub.add_parser("smoke", help="a batch of 1, then check the lake and the catalog")
    smoke.add_argument("--campaign", default="", help="default: the current campaign")
    smoke.add_argument("--timeout", type=float, default=900)
    smoke.set_defaults(fn=cmd_smoke)

    for sp in (run, credits, schedule, smoke):
        sp.add_argument("--stack", default=DEFAULT_STACK, help="CloudFormation stack to read resources from")

    from cliplake_ops import lakeops

    lakeops.register(sub, resolve_settings, DEFAULT_STACK)  # sql, reindex, status
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
