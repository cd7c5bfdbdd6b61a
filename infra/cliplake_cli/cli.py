"""`cliplake`: run the local cloud, drop videos into the lake, and read the catalog.

    cliplake up [--data DIR] [--port N]         the local cloud, in the foreground until Ctrl-C; state in DIR
    eval "$(cliplake env)"                      this shell then reaches it (boto3, the aws CLI, cliplake)
    cliplake demo                               a batch end to end, left in the local cloud's lake
    cliplake drop FILE... --campaign NAME       upload to media-raw/video/dropin/<campaign>/<ts>/
    cliplake videos [--label NAME] [--text WORD] [--campaign NAME] [--source NAME]
    cliplake show VIDEO_ID
    cliplake campaigns [list|show|set-current|add]
    cliplake dashboard [--data DIR] [--port N]  the Streamlit dashboard, on the local cloud of DIR
    cliplake sql "SELECT ..." [--json|--csv]    SQL over the lake's tables (DuckDB); `reindex` rebuilds them

`drop`, `videos` and `show` work against the local cloud (`eval "$(cliplake env)"`) and against a real AWS
account alike: resources come from CLIPLAKE_* variables or from the stack's outputs (`--stack`).
"""

from __future__ import annotations

import argparse
import faulthandler
import hashlib
import json
import mimetypes
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from cliplake.adapters.catalog import Catalog
from cliplake.adapters.s3 import Lake
from cliplake.campaigns import (
    DEFAULT_CAMPAIGNS,
    CampaignNotFound,
    list_campaigns,
    load_campaign,
)
from cliplake.contracts import Attribution
from cliplake.lake import SOURCES, batch_timestamp, raw_key, video_id_for
from cliplake_cli.console import ENV_HINT, env_hint, format_video_line, say
from cliplake_cli.stack import (
    DEFAULT_STACK,
    BatchesNotDeployed,
    StackConfig,
    StackUnreadable,
    current_campaign,
    load_config,
    make_current,
)
from cliplake_localcloud.persistence import DataDir, default_data_dir

TERMINAL = {"INDEXED", "FAILED"}
QUIET_LIBRARIES = ("botocore", "boto3", "urllib3", "s3transfer")  # at WARNING in the functions' log
NOT_FOUND = {"ResourceNotFoundException", "NoSuchBucket", "QueueDoesNotExist", "StateMachineDoesNotExist",
             "ExecutionDoesNotExist", "ParameterNotFound", "NoSuchKey", "AWS.SimpleQueueService.NonExistentQueue",
             "NotFoundException"}  # fmt: skip


class CliError(Exception):
    """A one-line error for the user (with its fix); `main` prints it and exits with `code`."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------------------------------- resources
def resolve_config(stack: str) -> StackConfig:
    """CLIPLAKE_* variables first; what they leave empty comes from the stack's outputs (`stack.load_config`)."""
    try:
        return load_config(stack)
    except StackUnreadable as err:
        raise CliError(
            f"cliplake: {err}: for the local cloud, `cliplake up` then {ENV_HINT}; "
            "for AWS, `sam deploy` or --stack NAME"
        ) from None


# ---------------------------------------------------------------------------------------------------- drop
class _Progress:
    """boto3 transfer callback: one line per file, updated in place on a terminal; elsewhere (a log, a pipe) a
    line at each quarter, where updates in place would pile up as hundreds of carriage returns."""

    def __init__(self, name: str, size: int) -> None:
        self.name, self.size, self.seen = name, max(size, 1), 0
        self.tty = sys.stderr.isatty()
        self._quarters = 0
        self._lock = threading.Lock()

    def __call__(self, n: int) -> None:
        with self._lock:
            self.seen += n
            pct = min(100.0, 100 * self.seen / self.size)
            if self.tty:
                print(f"\r  uploading {self.name}: {pct:5.1f}%", end="", file=sys.stderr, flush=True)
            elif int(pct // 25) > self._quarters:
                self._quarters = int(pct // 25)
                print(f"  uploading {self.name}: {pct:5.1f}%", file=sys.stderr, flush=True)


def file_sha1(path: Path) -> str:
    h = hashlib.sha1()  # noqa: S324 - a content hash, as the planner's (not for security)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def drop_source_id(campaign: str, sha1: str) -> str:
    """How a drop-in is remembered in the catalog: the same bytes under the same campaign are one video."""
    return f"{campaign}:{sha1}"


def drop_files(
    lake: Lake,
    files: Sequence[Path],
    campaign: str,
    ts: str | None = None,
    catalog: Catalog | None = None,
    force: bool = False,
    known: list[tuple[Path, str]] | None = None,
) -> list[str]:
    """Upload local files as ad-hoc drop-ins; returns their raw keys. With a catalog, a file whose bytes are
    already in the lake under this campaign is not dropped again: (file, video id) goes to `known` instead.
    Attribution: the file name as title."""
    ts = ts or batch_timestamp()
    keys: list[str] = []
    known = known if known is not None else []
    hashes: dict[str, str] = {}
    for path in files:
        key = raw_key("dropin", campaign, path.name, ts)
        sha1 = file_sha1(path)
        if not force:
            previous = hashes.get(sha1) or (
                catalog and catalog.ingested.source_video("dropin", drop_source_id(campaign, sha1))
            )
            if previous:
                known.append((path, previous))
                continue
        hashes[sha1] = video_id_for(key)
        attribution = Attribution(title=path.stem, source="dropin")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        lake.client.upload_file(
            str(path),
            lake.bucket,
            key,
            ExtraArgs={"ContentType": content_type, "Metadata": attribution.to_metadata()},
            Callback=(progress := _Progress(path.name, path.stat().st_size)),
        )
        if progress.tty:
            print(file=sys.stderr)  # the end of the line updated in place
        keys.append(key)
        if catalog is not None:
            catalog.ingested.mark("dropin", drop_source_id(campaign, sha1), "", video_id_for(key))
    return keys


def wait_for_videos(catalog: Catalog, keys: Sequence[str], timeout_s: float = 300) -> list[dict[str, Any]]:
    """Follow videos through the catalog until each is INDEXED or FAILED, printing each change."""
    ids = {video_id_for(k): k for k in keys}
    last: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    records: dict[str, dict[str, Any]] = {vid: {} for vid in ids}
    while True:
        pending = [vid for vid, rec in records.items() if rec.get("status") not in TERMINAL]
        records |= {vid: video.plain() for vid, video in catalog.videos.get_many(pending).items()}  # 100 a call
        for vid, rec in records.items():
            status = rec.get("status", "WAITING")
            if last.get(vid) != status:
                last[vid] = status
                done = sum(1 for r in records.values() if r.get("status") in TERMINAL)
                say(f"  [{done}/{len(ids)}] {Path(ids[vid]).name}: {status.lower()}")
        if all(r.get("status") in TERMINAL for r in records.values()):
            return list(records.values())
        if time.monotonic() > deadline:
            left = ", ".join(f"{Path(ids[v]).name}: {s.lower()}" for v, s in last.items() if s not in TERMINAL)
            raise CliError(f"cliplake: not finished after {timeout_s:.0f} s ({left}); --timeout waits longer", 3)
        time.sleep(0.2)


# ------------------------------------------------------------------------------------------------- display
def print_report(videos: list[dict[str, Any]], stats: dict[str, dict[str, int]]) -> None:
    print("\ncliplake: pipeline summary")
    for v in videos:
        print("  " + format_video_line(v))
        if v.get("credit_line") and v.get("status") == "INDEXED":
            print(f"      credit: {v['credit_line']}")
    print("  counts by source: " + ", ".join(f"{s}: {json.dumps(c)}" for s, c in sorted(stats.items())))


# ------------------------------------------------------------------------------------------------ commands
def cmd_up(args: argparse.Namespace) -> int:
    import warnings

    from cliplake_localcloud.cloud import LocalCloud
    from cliplake_localcloud.persistence import DataDirBusy

    # S3's test event carries no records, hence no metric: powertools warns about it at every start
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    data = DataDir(args.data)
    if not args.verbose:  # the functions' JSON logs (stdout) and the cloud's own logs go to the log file
        _log_to(data.log_file)
    try:
        cloud = LocalCloud(port=args.port, data_dir=data.path).start()
    except DataDirBusy:
        raise CliError(
            f"cliplake up: a local cloud already runs on {data.path}; reach it with: {env_hint(data)}"
        ) from None
    except OSError as err:
        raise CliError(
            f"cliplake up: port {args.port} is not free ({err.strerror}); --port 0 takes any free port"
        ) from None
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as Ctrl-C does: with a last checkpoint
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True)  # `kill -USR1`: where is it stuck?
    try:
        restored = cloud.restored
        state = "new data directory"
        if restored and restored.anything:
            state = f"restored in {restored.seconds:.1f} s"
            if restored.replayed:
                state += f", {restored.replayed} journaled request(s) replayed after a crash"
        say(f"cliplake: local cloud on {cloud.endpoint_url}, data in {data.path} ({state}; stack {cloud.stack_action})")
        for aborted in cloud.aborted_batches:
            say(f"cliplake: batch {aborted['name']} was running when the cloud stopped: marked ABORTED")
        say(f"cliplake: in another shell: {env_hint(data)}")
        if not args.verbose:
            say(f"cliplake: functions' logs in {data.log_file} (--verbose prints them here); Ctrl-C stops")
        # Not `Event().wait()`: a SIGTERM delivered to another thread only runs its Python handler once the main
        # thread executes bytecode, and a lock wait without a timeout never does (a child cloud ignored `kill`).
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("cliplake: stopping (a last checkpoint of the data directory)")
    finally:
        cloud.stop()
    return 0


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def _log_to(path: Path) -> None:
    import logging

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(fd, 1)
    os.close(fd)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - fd 1 lives as long as the process
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, force=True)
    for library in QUIET_LIBRARIES:  # "Found endpoint for sqs via: environment_global" on every client
        logging.getLogger(library).setLevel(logging.WARNING)


def local_env(data: DataDir) -> dict[str, str]:
    env = data.read_info().get("env") or {}
    if not env:
        raise CliError(f"cliplake: no local cloud has run on {data.path} yet: start one with `cliplake up`")
    return env


def cmd_env(args: argparse.Namespace) -> int:
    """One line for `eval`: the variables that reach the local cloud of the data directory."""
    data = DataDir(args.data)
    env = local_env(data)
    if not _reachable(env.get("AWS_ENDPOINT_URL", "")):
        say(f"cliplake env: the local cloud of {data.path} is not running (start it with `cliplake up`)")
    print("export " + " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items())))
    return 0


def _reachable(url: str, timeout: float = 2.0) -> bool:
    import requests

    if not url:
        return False
    try:
        requests.get(f"{url}/moto-api/config", timeout=timeout)
        return True
    except requests.RequestException:
        return False


def cmd_demo(args: argparse.Namespace) -> int:
    from cliplake_cli.demo import run_demo

    return run_demo(timeout_s=args.timeout, data_dir=args.data)


def valid_campaign(config: StackConfig, name: str) -> str:
    """`name` if it is a campaign of the stack; otherwise a one-line error listing the valid ones."""
    names = sorted(set(list_campaigns(boto3.client("ssm"), config.campaigns_path)) | set(DEFAULT_CAMPAIGNS))
    if name not in names:
        raise CliError(
            f"cliplake: no campaign {name!r}; campaigns: {', '.join(names)} "
            f"(add one with `cliplake campaigns add {name} --wikimedia QUERY`)"
        )
    return name


def cmd_drop(args: argparse.Namespace) -> int:
    config = resolve_config(args.stack)
    files = [Path(f) for f in args.files]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise CliError(f"cliplake drop: no such file: {', '.join(missing)}")
    campaign = valid_campaign(config, args.campaign)
    catalog = Catalog(config.table)
    known: list[tuple[Path, str]] = []
    keys = drop_files(Lake(config.bucket), files, campaign, catalog=catalog, force=args.force, known=known)
    for path, vid in known:
        say(f"  {path.name}: already in the lake as {vid} (same bytes, campaign {campaign}); not dropped again "
            "(--force drops it anyway)")  # fmt: skip
    for key in keys:
        print(f"{video_id_for(key)}  s3://{config.bucket}/{key}")
    if args.wait and keys:
        videos = wait_for_videos(catalog, keys, args.timeout)
        for v in videos:
            print(format_video_line(v))
        failed = [v for v in videos if v.get("status") == "FAILED"]
        if failed:
            say(f"cliplake drop: {len(failed)} of {len(videos)} video(s) failed")
            return 1
    return 0


def cmd_videos(args: argparse.Namespace) -> int:
    catalog = Catalog(resolve_config(args.stack).table)
    if args.label:
        hits = catalog.videos_by_label(args.label, args.min_confidence, args.limit)
        for hit in hits:
            print(f"{hit['video_id']}  {hit['confidence']:6.2f}%  {hit['source']:9} {hit['filename']}")
        if not hits:
            say(f"no videos labelled {args.label!r} at {args.min_confidence:g}% or more")
        return 0
    if args.text:
        for hit in catalog.videos_by_text(args.text, args.limit):
            at = hit["start_ms"] / 1000
            print(f'{hit["video_id"]}  {at:7.1f}s  {hit["source"]:9} {hit["filename"]}  "{hit["line"]}"')
        return 0
    if args.campaign or args.source:
        videos = catalog.list_videos(campaign=args.campaign, source=args.source, limit=args.limit)
        if args.campaign and args.source:
            videos = [v for v in videos if v.get("source") == args.source]
    else:  # every source, newest first
        videos = [v for s in SOURCES for v in catalog.list_videos(source=s, limit=args.limit)]
        videos.sort(key=lambda v: v.get("created_at", ""), reverse=True)
        videos = videos[: args.limit]
    for v in videos:
        print(format_video_line(v))
    if not videos:
        where = " ".join(f"{k} {v}" for k, v in (("campaign", args.campaign), ("source", args.source)) if v)
        say(f"no videos{' for ' + where if where else ''}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    config = resolve_config(args.stack)
    video = Catalog(config.table).get_video(args.video_id)
    if video is None:
        raise CliError(f"cliplake show: no video {args.video_id} in the catalog (`cliplake videos` lists them)", 1)
    summary = Lake(config.bucket).get_json(video["summary_key"]) if video.get("summary_key") else None
    print(json.dumps(summary or video, indent=2, ensure_ascii=False, default=str))
    return 0


def cmd_campaigns(args: argparse.Namespace) -> int:
    config = resolve_config(args.stack)
    ssm, path = boto3.client("ssm"), config.campaigns_path
    action = args.action or "list"
    if action == "list":
        current = current_campaign(ssm, config)
        for name in list_campaigns(ssm, path):
            print(f"{'*' if name == current else ' '} {name}")
        if not current:
            say("no current campaign (`cliplake campaigns set-current NAME`)")
        return 0
    if not args.name:
        raise CliError(f"cliplake campaigns {action}: which campaign? (cliplake campaigns {action} NAME)")
    if action == "show":
        valid_campaign(config, args.name)
        print(json.dumps(load_campaign(ssm, path, args.name).model_dump(), indent=2))
    elif action == "set-current":
        make_current(ssm, config, valid_campaign(config, args.name))
        say(f"current campaign: {args.name} (scheduled batches use it)")
    else:  # add
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}", args.name):
            raise CliError("cliplake campaigns add: a name is 1-40 letters, digits, '-' or '_'")
        if not (args.wikimedia or args.pixabay):
            raise CliError("cliplake campaigns add: give at least one query (--wikimedia QUERY, --pixabay QUERY)")
        queries = {k: v for k, v in (("wikimedia", args.wikimedia), ("pixabay", args.pixabay)) if v}
        ssm.put_parameter(
            Name=f"{path.rstrip('/')}/{args.name}",
            Value=json.dumps({"queries": queries}),
            Type="String",
            Overwrite=args.overwrite,
            Description=f"cliplake campaign {args.name}: search queries per source",
        )
        say(f"campaign {args.name} added: {json.dumps(queries)}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Streamlit on 127.0.0.1 (unless --address), on the local cloud of the data directory: attached to it when
    it runs, else started for as long as the dashboard runs. With `--stack`/AWS variables: that deployment."""
    root = Path(__file__).resolve().parents[2]
    app = root / "dashboard" / "app.py"
    if not app.is_file():
        raise CliError(f"cliplake dashboard: {app} not found (run from a checkout of cliplake)")
    env = dict(os.environ)
    cloud_proc = None
    if not args.aws:
        data = DataDir(args.data)
        known = data.read_info().get("env") or {}
        if not (known and _reachable(known.get("AWS_ENDPOINT_URL", ""))):
            say(f"cliplake dashboard: starting the local cloud on {data.path}")
            cloud_proc = subprocess.Popen(
                [sys.executable, "-m", "cliplake_cli.cli", "up", "--data", str(data.path), "--port", "0"],
                stdin=subprocess.DEVNULL,
            )
            known = _wait_for_cloud(data, cloud_proc)
        else:
            say(f"cliplake dashboard: attached to the local cloud on {known['AWS_ENDPOINT_URL']} ({data.path})")
        env.update(known)
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(args.port)]
    cmd += ["--server.address", args.address, "--browser.gatherUsageStats", "false"]
    if args.headless:
        cmd += ["--server.headless", "true"]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the dashboard and the cloud it started, cleanly
    try:
        return subprocess.call(cmd, env=env, cwd=root)
    except KeyboardInterrupt:
        return 0
    finally:
        if cloud_proc is not None:
            cloud_proc.terminate()  # as Ctrl-C: the cloud checkpoints and stops
            try:
                cloud_proc.wait(30)
            except subprocess.TimeoutExpired:
                cloud_proc.kill()


def _wait_for_cloud(data: DataDir, proc: subprocess.Popen, timeout_s: float = 180) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    started = time.time()
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CliError(f"cliplake: the local cloud did not start (exit {proc.returncode}); see {data.log_file}")
        info = data.read_info()
        if info.get("started_at", 0) >= started and info.get("env") and _reachable(info["env"]["AWS_ENDPOINT_URL"]):
            return info["env"]
        time.sleep(0.3)
    proc.kill()
    raise CliError(f"cliplake: the local cloud did not start within {timeout_s:.0f} s; see {data.log_file}")


def cmd_run(args: argparse.Namespace) -> int:
    from cliplake_cli.batchops import follow_batch, print_summary
    from cliplake_cli.stack import start_batch

    config = resolve_config(args.stack)
    if args.campaign:
        valid_campaign(config, args.campaign)
    name, arn = start_batch(config, args.campaign, args.batch_size, args.max_concurrency)
    print(f"{name}  {arn}")
    if not args.wait:
        return 0
    execution, record = follow_batch(Catalog(config.table), arn, name, args.timeout)
    print_summary(execution, record)
    if execution["status"] == "SUCCEEDED" and not record.get("received"):
        return 1  # nothing planned: the summary says why
    return 0 if execution["status"] == "SUCCEEDED" and not record.get("failed") else 1


def cmd_credits(args: argparse.Namespace) -> int:
    from cliplake_cli.batchops import credit_lines

    lines = credit_lines(Catalog(resolve_config(args.stack).table), args.campaign, args.limit)
    for line in lines:
        print(line)
    if not lines:
        say("no indexed videos")
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from cliplake_cli.batchops import fire_schedule

    for arn in fire_schedule(resolve_config(args.stack), args.name):
        print(arn)
    return 0


def cmd_smoke(args: argparse.Namespace) -> int:
    from cliplake_cli.batchops import smoke

    return smoke(resolve_config(args.stack), args.timeout, args.campaign)


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = argparse.ArgumentParser(prog="cliplake", description=__doc__.split("\n\n")[0], formatter_class=fmt)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data_help = "data directory of the local cloud (objects, catalog, queues, batch history; $CLIPLAKE_DATA_DIR)"

    def add(name: str, fn: Any, helptext: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=helptext, description=helptext, formatter_class=fmt)
        sp.set_defaults(fn=fn)
        return sp

    def stack_option(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--stack", default=DEFAULT_STACK, help="CloudFormation stack to read resources from "
                        "when CLIPLAKE_* variables do not name them")  # fmt: skip

    up = add("up", cmd_up, "run the local cloud in the foreground (Ctrl-C stops it); its state stays in --data")
    up.add_argument("--data", default=str(default_data_dir()), help=data_help)
    up.add_argument("--port", type=int, default=5000, help="moto server port (0: the previous one, else any free)")
    up.add_argument("--verbose", action="store_true", help="print the functions' JSON logs here, not in the log file")

    env = add("env", cmd_env, 'print the variables that reach the local cloud, for eval "$(cliplake env)"')
    env.add_argument("--data", default=str(default_data_dir()), help=data_help)

    demo = add("demo", cmd_demo, "a batch end to end on the local cloud (live sources if configured, else samples)")
    demo.add_argument("--data", default=str(default_data_dir()), help=data_help)
    demo.add_argument("--timeout", type=float, default=600, help="seconds to wait for the batch")

    dash = add("dashboard", cmd_dashboard, "the Streamlit dashboard, on the local cloud of --data (started if needed)")
    dash.add_argument("--data", default=str(default_data_dir()), help=data_help)
    dash.add_argument("--port", type=int, default=8501, help="dashboard port")
    dash.add_argument("--address", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    dash.add_argument("--headless", action="store_true", help="don't open a browser")
    dash.add_argument("--aws", action="store_true", help="read the deployment the AWS variables point at instead")

    drop = add("drop", cmd_drop, "upload videos into the lake (media-raw/video/dropin/<campaign>/<ts>/)")
    stack_option(drop)
    drop.add_argument("files", nargs="+", metavar="FILE", help="video files")
    drop.add_argument("--campaign", required=True, help="campaign (one of `cliplake campaigns`)")
    drop.add_argument("--wait", action="store_true", help="follow the videos until indexed or failed (exit 1 if any "
                      "failed)")  # fmt: skip
    drop.add_argument("--timeout", type=float, default=600, help="seconds --wait waits")
    drop.add_argument("--force", action="store_true", help="drop files already in the lake under this campaign")

    videos = add("videos", cmd_videos, "list the catalog's videos (every source, newest first) or search a label")
    stack_option(videos)
    videos.add_argument("--label", help="only videos with this label (e.g. Dog)")
    videos.add_argument("--text", help="only videos showing this word of on-screen text")
    videos.add_argument("--min-confidence", type=float, default=0.0, help="with --label: minimum confidence, percent")
    videos.add_argument("--campaign", help="only this campaign")
    videos.add_argument("--source", choices=SOURCES, help="only this source (default: every source)")
    videos.add_argument("--limit", type=int, default=50, help="at most this many videos")

    show = add("show", cmd_show, "print a video's summary (the _labels.json of the lake)")
    stack_option(show)
    show.add_argument("video_id", help="a video id (`cliplake videos` lists them)")

    camp = add("campaigns", cmd_campaigns, "list, show, set the current, or add campaigns (queries per source)")
    stack_option(camp)
    camp.add_argument("action", nargs="?", choices=["list", "show", "set-current", "add"], default="list",
                      help="what to do")  # fmt: skip
    camp.add_argument("name", nargs="?", help="campaign name (show, set-current, add)")
    camp.add_argument("--wikimedia", action="append", metavar="QUERY", help="add: a Wikimedia Commons query "
                      "(repeatable)")  # fmt: skip
    camp.add_argument("--pixabay", action="append", metavar="QUERY", help="add: a Pixabay query (repeatable)")
    camp.add_argument("--overwrite", action="store_true", help="add: replace an existing campaign")

    run = add("run", cmd_run, "start a batch (plan, ingest, analyse, index, summary email)")
    run.add_argument("--campaign", default="", help="campaign name (becomes the current one); empty: the current")
    run.add_argument("--batch-size", type=int, default=2, help="videos to plan")
    run.add_argument("--max-concurrency", type=int, default=None, help="videos in flight (default: the stack's, 5)")
    run.add_argument("--wait", action="store_true", help="follow the batch and print its summary (exit 1 if a video "
                     "failed or nothing was planned)")  # fmt: skip
    run.add_argument("--timeout", type=float, default=3600, help="seconds --wait waits")

    credits = add("credits", cmd_credits, "credit lines of the indexed videos")
    credits.add_argument("--campaign", help="only this campaign (default: every campaign)")
    credits.add_argument("--limit", type=int, default=200, help="at most this many lines")

    schedule = add("schedule", cmd_schedule, "the weekly schedule")
    schedule.add_argument("action", choices=["fire"], help="fire: start the scheduled batch now")
    schedule.add_argument("--name", help="one schedule by name (default: every schedule of the state machine)")

    smoke = add("smoke", cmd_smoke, "a batch of 1 (or a known video re-run when nothing is new), then checks")
    smoke.add_argument("--campaign", default="", help="campaign (default: the current one)")
    smoke.add_argument("--timeout", type=float, default=900, help="seconds to wait")

    for sp in (run, credits, schedule, smoke):
        stack_option(sp)

    from cliplake_cli import lakeops

    lakeops.register(sub, resolve_config, DEFAULT_STACK)  # sql, reindex, status
    for sp in sub.choices.values():  # every command's help shows the defaults
        sp.formatter_class = fmt
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except CliError as err:
        say(str(err))
        return err.code
    except EndpointConnectionError as err:
        url = os.environ.get("AWS_ENDPOINT_URL", "")
        where = f"the local cloud at {url}" if url else "AWS"
        say(f"cliplake: cannot reach {where} ({err.kwargs.get('endpoint_url', '')}): start it with `cliplake up`, "
            f"then {ENV_HINT} in this shell" if url else f"cliplake: cannot reach AWS: {err}")  # fmt: skip
        return 2
    except NoCredentialsError:
        say(f"cliplake: no AWS credentials: for the local cloud, {ENV_HINT}; for AWS, configure a profile")
        return 2
    except NoRegionError:  # a shell with neither the local cloud's variables nor an AWS profile (botocore's words)
        say(f"cliplake: no AWS region in this shell: for the local cloud, start it (`cliplake up`) and {ENV_HINT}; "
            "for AWS, set AWS_REGION or a profile")  # fmt: skip
        return 2
    except BatchesNotDeployed as err:
        say(f"cliplake: {err}")
        return 1
    except CampaignNotFound as err:
        say(f"cliplake: {err} (`cliplake campaigns` lists them)")
        return 2
    except ClientError as err:
        code, msg = err.response.get("Error", {}).get("Code", ""), err.response.get("Error", {}).get("Message", "")
        if code in NOT_FOUND:
            say(f"cliplake: {msg or code} ({code}). This shell names resources the endpoint does not have: "
                f"{ENV_HINT} again, or check --stack / the CLIPLAKE_* variables")  # fmt: skip
        else:
            say(f"cliplake: {code}: {msg}")
        return 2
    except BotoCoreError as err:
        say(f"cliplake: {err}")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
