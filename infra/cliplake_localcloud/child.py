"""A local cloud in a child process (`cliplake up --data DIR --port 0`), as a user runs it, and boto3 clients on what
it exports: for the crash and restart tests and the persistence benchmark (a kill -9 must not kill the caller)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3

from cliplake_localcloud.persistence import DataDir


class ChildCloud:
    def __init__(self, data: Path, log: Path) -> None:
        self.data, self.log = DataDir(data), log
        self.proc: subprocess.Popen | None = None
        self.env: dict[str, str] = {}
        self.start_s = 0.0  # how long the last start took, until the cloud answered with its stack

    def start(self, timeout_s: float = 180) -> ChildCloud:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CLIPLAKE_", "MOTO_"))}
        if os.environ.get("CLIPLAKE_ASSETS_DIR"):
            env["CLIPLAKE_ASSETS_DIR"] = os.environ["CLIPLAKE_ASSETS_DIR"]
        started, t0 = time.time(), time.perf_counter()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cliplake_cli.cli", "up", "--data", str(self.data.path), "--port", "0"],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env,
            )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the local cloud exited: {self.log.read_text()[-3000:]}")
            info = self.data.read_info()
            if info.get("started_at", 0) >= started and info.get("env"):
                self.start_s = time.perf_counter() - t0
                self.env = info["env"]
                return self
            time.sleep(0.02)
        raise TimeoutError(f"the local cloud did not start: {self.log.read_text()[-3000:]}")

    @property
    def outputs(self) -> dict[str, str]:
        return {"CatalogTableName": self.env["CLIPLAKE_CATALOG_TABLE"], "MediaBucketName": self.env["CLIPLAKE_BUCKET"]}

    def client(self, service: str) -> Any:
        e = self.env
        return boto3.session.Session(
            aws_access_key_id=e["AWS_ACCESS_KEY_ID"], aws_secret_access_key=e["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=e.get("AWS_SESSION_TOKEN"), region_name=e["AWS_DEFAULT_REGION"],
        ).client(service, endpoint_url=e["AWS_ENDPOINT_URL"])  # fmt: skip

    def catalog(self) -> Any:
        from cliplake.adapters.catalog import Catalog

        return Catalog(self.env["CLIPLAKE_CATALOG_TABLE"], self.client("dynamodb"))

    def lake(self) -> Any:
        from cliplake.adapters.s3 import Lake

        return Lake(self.env["CLIPLAKE_BUCKET"], self.client("s3"))

    def pids(self) -> list[int]:
        """The child and its descendants (ffmpeg, ...)."""
        if not self.proc:
            return []
        out, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            out.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*"):
                with contextlib.suppress(OSError):
                    todo += [int(c) for c in (task / "children").read_text().split()]
        return out

    def memory_bytes(self) -> int:
        """What the local cloud holds in memory: the resident memory of its process, plus what its child processes
        (ffmpeg, a checkpoint's fork) hold of their own, not the pages they share with it (a forked child shares
        almost all; summing their resident memory counted those twice)."""
        total, root = 0, self.proc.pid if self.proc else None
        for pid in self.pids():
            rollup = Path(f"/proc/{pid}/smaps_rollup")
            if pid != root and rollup.exists():  # a child: only the pages it does not share
                source, fields = rollup, ("Private_Clean:", "Private_Dirty:")
            else:
                source, fields = Path(f"/proc/{pid}/status"), ("VmRSS:",)
            try:
                text = source.read_text()
                total += sum(int(line.split()[1]) * 1024 for line in text.splitlines() if line.startswith(fields))
            except (OSError, ValueError):
                pass
        return total

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int:
        """As Ctrl-C (SIGTERM is handled the same way): a last checkpoint, then exit; returns the exit code."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(120)
            except subprocess.TimeoutExpired:  # stuck: its threads' stacks into the log (SIGUSR1), then kill it
                self.proc.send_signal(signal.SIGUSR1)
                time.sleep(2)
                self.proc.kill()
                self.proc.wait(30)
                return -signal.SIGKILL
        return self.proc.returncode if self.proc else 0
