"""The durable server's journal: large request bodies streamed to files beside it, replayed from them after a
crash, removed once a checkpoint holds them; the server keeps no uploaded body alive after its request; a
checkpoint (written by a forked child) names the last row it holds, so a crash before the rows are dropped does
not replay them twice.

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


def _checkpoint_then_crash(data: Path) -> dict[str, Any]:
    """Three messages sent, a checkpoint whose rows are not dropped (a crash right after its rename), one more."""
    persistence, server, _ = _server(data)
    sqs = _client(server, "sqs")
    url = sqs.create_queue(QueueName="work")["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"before {i}")
    persistence.journal.clear_through = lambda seq: None  # the process dies before it drops them
    persistence.checkpoint()
    sqs.send_message(QueueUrl=url, MessageBody="after")
    print(json.dumps({"rows": persistence.journal.count}), flush=True)
    os._exit(0)


def _messages(data: Path) -> dict[str, Any]:
    persistence, server, _ = _server(data)
    sqs = _client(server, "sqs")
    url = sqs.get_queue_url(QueueName="work")["QueueUrl"]
    bodies = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        bodies += [m["Body"] for m in batch]
        for m in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    result = {"bodies": sorted(bodies), "replayed": server.restored.replayed}
    server.stop()
    persistence.close(final_checkpoint=False)
    return result


def _client(server: Any, service: str) -> Any:
    import boto3

    return boto3.client(
        service, endpoint_url=f"http://127.0.0.1:{server.port}", region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip


def _unreadable_results(data: Path) -> dict[str, Any]:
    """A finished, published job whose stored results do not unpickle (another engine's), read after a restart."""
    import pickle

    from cliplake_localcloud.persistence import Persistence, RekognitionJobs
    from cliplake_localcloud.rekognition.server import Job, RekognitionServer

    persistence = Persistence(data)
    request = {"Video": {"S3Object": {"Bucket": "lake", "Name": "media-raw/a.mp4"}}, "JobTag": "v1"}
    job = Job("job-1", "StartLabelDetection", request, "SUCCEEDED", analysis={"frames": 1})
    RekognitionJobs(persistence, RekognitionServer())._save(job, notified=True)
    persistence.journal.conn.execute("UPDATE rekognition_jobs SET analysis = ?", (b"not a pickle",))
    server = RekognitionServer().start()  # the restarted endpoint
    analysed: list[dict] = []

    def analyse(obj: dict) -> dict:
        analysed.append(obj)
        if len(analysed) == 1:
            raise RuntimeError("the object could not be read")
        return {"frames": 2}

    server._analyse = analyse
    persistence.attach_rekognition(server)
    restored = server._jobs["job-1"]
    try:
        server._analysis_of(restored)
        first = "answered"
    except RuntimeError as exc:
        first = str(exc)
    result = {
        "first": first,
        "second": server._analysis_of(restored),
        "third": server._analysis_of(restored),
        "status": restored.status,
        "analysed": len(analysed),
        "stored": pickle.loads(persistence.journal.conn.execute("SELECT analysis FROM rekognition_jobs").fetchone()[0]),
    }
    server.stop()
    persistence.close(final_checkpoint=False)
    return result


def _body_written_while_collecting(data: Path) -> dict[str, Any]:
    """A body written (as moto's backends called in-process write one) while a checkpoint lists the body files."""
    from cliplake_localcloud.persistence import FileBody, Persistence

    persistence = Persistence(data)
    meanwhile: list[Any] = []
    listing = Path.iterdir

    def iterdir(path: Path) -> Any:
        if path == persistence.dir.bodies and not meanwhile:
            body = FileBody()
            body.write(b"an object written during the listing")
            meanwhile.append(body)
        return listing(path)

    Path.iterdir = iterdir  # type: ignore[method-assign]
    try:
        persistence._collect_bodies(set())
    finally:
        Path.iterdir = listing  # type: ignore[method-assign]
    meanwhile[0].seek(0)
    result = {"kept": meanwhile[0].path.exists(), "read": meanwhile[0].read().decode()}
    persistence.close(final_checkpoint=False)
    return result


PHASES = {"upload": _upload, "restore": _restore, "checkpoint": _checkpoint_then_crash, "messages": _messages,
          "unreadable": _unreadable_results, "collecting": _body_written_while_collecting}  # fmt: skip


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
    out = PHASES[phase](where)
    print(json.dumps(out), flush=True)


def test_a_crash_after_a_checkpoint_before_its_rows_are_dropped_replays_only_the_rows_after_it(tmp_path):
    crashed = _run("checkpoint", tmp_path / "data")
    assert crashed["rows"] >= 5  # create, three sends, one after: all still in the journal
    restored = _run("messages", tmp_path / "data")
    assert restored["bodies"] == ["after", "before 0", "before 1", "before 2"]  # once each, none twice
    assert restored["replayed"] == 1


def test_results_that_do_not_read_after_a_restart_are_analysed_again_when_read(tmp_path):
    """The job's completion was published before the restart: finalize reads its results. Unreadable ones (written by
    another engine) are made again by that read; the job stays SUCCEEDED, never an empty result."""
    out = _run("unreadable", tmp_path / "data")
    assert out["first"] == "the object could not be read"  # the read fails (finalize retries), nothing empty
    assert out["second"] == out["third"] == out["stored"] == {"frames": 2} and out["analysed"] == 2
    assert out["status"] == "SUCCEEDED"


def test_a_body_written_while_a_checkpoint_collects_the_unreferenced_ones_is_kept(tmp_path):
    """A checkpoint removes the body files nothing refers to. One written while it listed them (by a write outside
    the server's lock: make bench's SQL seeding puts 20,000 objects into moto's backend directly) was removed
    under its object, and the next listing of the bucket failed on the missing file."""
    out = _run("collecting", tmp_path / "data")
    assert out == {"kept": True, "read": "an object written during the listing"}
