"""The durable server's large request bodies: streamed to files beside the journal, replayed from them after a
crash, removed once a checkpoint holds them; and the server keeps no uploaded body alive after its request.

Each phase runs in a child process (moto's backends are process-wide: a restore would replace the state of the
session's local cloud): only moto's server behind the journal, no stack, so each takes a second or two.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PART = 5 << 20  # S3's smallest part


def _server(data: Path) -> tuple[Any, Any, Any]:
    import boto3
    from botocore.config import Config

    from cliplake_localcloud.persistence import MotoServer, Persistence

    persistence = Persistence(data)
    server = MotoServer("127.0.0.1", 0, persistence).start()
    s3 = boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{server.port}", region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing", config=Config(retries={"max_attempts": 1}),
    )  # fmt: skip
    return persistence, server, s3


def _upload(data: Path) -> dict[str, Any]:
    """Upload, then die as kill -9 would (no checkpoint: everything is in the journal)."""
    from boto3.s3.transfer import TransferConfig
    from werkzeug.wrappers import Request

    gc.disable()  # what is still alive below is kept by references, not waiting for a collection
    persistence, _, s3 = _server(data)
    s3.create_bucket(Bucket="lake")
    put = os.urandom(1 << 20)
    big = os.urandom(4 * PART + (1 << 20))
    s3.put_object(Bucket="lake", Key="media-raw/one file+ü.bin", Body=put)
    path = data.parent / "big.bin"
    path.write_bytes(big)
    config = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=4)
    s3.upload_file(str(path), "lake", "media-raw/big.bin", Config=config)
    rows = persistence.journal.conn.execute("SELECT payload, length(body) FROM journal").fetchall()
    sha = {
        "media-raw/one file+ü.bin": hashlib.sha256(put).hexdigest(),
        "media-raw/big.bin": hashlib.sha256(big).hexdigest(),
    }
    result = {
        "sha": sha,
        "blob_bytes": max(n or 0 for _, n in rows),
        "body_files": sum("body_file" in json.loads(p) for p, _ in rows),
        "files": len(list(persistence.journal.bodies.iterdir())),
        "requests_alive": sum(isinstance(o, Request) for o in gc.get_objects()),
    }
    (persistence.journal.bodies / "orphan").write_bytes(b"a body whose request never returned")
    print(json.dumps(result), flush=True)
    os._exit(0)


def _restore(data: Path) -> dict[str, Any]:
    persistence, server, s3 = _server(data)
    restored = server.restored
    sha = {
        key: hashlib.sha256(s3.get_object(Bucket="lake", Key=key)["Body"].read()).hexdigest()
        for key in ("media-raw/one file+ü.bin", "media-raw/big.bin")
    }
    orphan_kept = (persistence.journal.bodies / "orphan").exists()
    files_before = len(list(persistence.journal.bodies.iterdir()))
    persistence.checkpoint()
    result = {
        "replayed": restored.replayed,
        "replay_failures": restored.replay_failures,
        "sha": sha,
        "orphan_kept": orphan_kept,
        "files_before_checkpoint": files_before,
        "files_after_checkpoint": len(list(persistence.journal.bodies.iterdir())),
    }
    server.stop()
    persistence.close(final_checkpoint=False)
    return result


def _run(phase: str, data: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, phase, str(data)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def phases(tmp_path_factory):
    data = tmp_path_factory.mktemp("journal") / "data"
    return _run("upload", data), _run("restore", data)


def test_large_bodies_are_files_beside_the_journal_not_blobs(phases):
    uploaded, _ = phases
    assert uploaded["blob_bytes"] < 64 << 10  # only small requests (create bucket, complete upload) inline
    assert uploaded["body_files"] == 1 + 5  # the put and the five parts
    assert uploaded["files"] == 6


def test_the_server_keeps_no_request_alive_after_answering_it(phases):
    """Flask's debug mode (moto turns it on) made each request a reference cycle holding its body: the parts of an
    upload piled up in memory until a garbage collection."""
    uploaded, _ = phases
    assert uploaded["requests_alive"] <= 1


def test_after_a_crash_the_bodies_replay_from_their_files_and_a_checkpoint_removes_them(phases):
    uploaded, restored = phases
    assert restored["replay_failures"] == 0 and restored["replayed"] >= 8
    assert restored["sha"] == uploaded["sha"]
    assert not restored["orphan_kept"]  # spooled by a request that never answered: nothing refers to it
    assert restored["files_before_checkpoint"] == 6  # the journal still needs them until a checkpoint
    assert restored["files_after_checkpoint"] == 0


if __name__ == "__main__":
    phase, where = sys.argv[1], Path(sys.argv[2])
    out = _upload(where) if phase == "upload" else _restore(where)
    print(json.dumps(out), flush=True)
