"""Durable state for the local cloud: a data directory that survives a restart and a crash (kill -9).

The contract (README, "The local cloud keeps its data"): a request that changed something and was answered with
success (an S3 put, a queue send, a catalog write, a campaign or secret written, a batch started) survives a crash
of the process; everything in flight (a handler running, a message received but not deleted, a Rekognition job
running) is redone by redelivery, and every stage is idempotent.

How, with moto's own models (its maintainers declined a persistence layer, getmoto/moto#9755):

- **Write-ahead journal in SQLite** (`journal.sqlite`, WAL mode): every successful mutating request is committed
  to the journal *before* its response leaves the server, with the seed of a per-request random generator:
  moto draws every id (message ids, version ids, upload ids, request ids) from `mock_random`, made thread-local
  here, so replaying a request gives the same ids. Requests that only read are not journaled; nor are
  `ReceiveMessage` and `ChangeMessageVisibility` (in-flight state: after a restart every message not deleted is
  visible again, its consumer died with the process); `DeleteMessage` is journaled by message id. Large request
  bodies (uploads) are streamed from the socket to files in `journal.bodies/`, which their rows name: an upload
  is never whole in memory on its way in, nor copied into SQLite.
- **Checkpoints**: every few seconds of writes (and on a clean stop) the backends of every service in use are
  pickled in one file (`state.pickle`, written to a temporary file and renamed), with a small `Pickler` for what
  does not pickle (locks, conditions, threads, SSM's parameter dict), and the journal rows it holds are dropped.
  Mutating requests are serialised by one lock; a checkpoint holds it only to fork: a child process pickles its
  copy-on-write snapshot while the server goes on (as Redis' BGSAVE), and the snapshot names the last journal row
  it holds. A restart loads the checkpoint into moto's existing module-level backend dicts and replays the rows
  after that one.
- **S3 bodies are files** (`s3/.bodies/<id>`, written once, never modified), with the newest version of each key
  hard-linked at `s3/<bucket>/<key>` so that `media-raw/` and `media-processed/` can be looked at on disk. A
  checkpoint keeps the path only; bodies no longer referenced are removed at the next checkpoint. Multipart
  completion concatenates the parts' files and a GET streams from the file, so memory stays flat whatever the size.
- **Step Functions**: an execution's end (succeeded, failed, aborted) is journaled when it happens. An execution
  still RUNNING when the process died cannot be resumed (its interpreter's threads are gone): at restart it is
  marked ABORTED with the reason; the videos it had started are still finished by their queues.
- **Rekognition jobs** (the local endpoint is not moto): each job is written to the same SQLite file when started
  and when finished; at restart, jobs whose completion was not published run again (same job id) and publish it.

The data directory holds pickles, which can run code when loaded: it is created private (0700) to its user.
"""

from __future__ import annotations

import contextlib
import copyreg
import dataclasses
import datetime
import fcntl
import gc
import io
import json
import logging
import os
import pickle
import random
import secrets
import sqlite3
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CHECKPOINT_EVERY_S = 5.0  # a checkpoint this long after the first journaled write since the last one
CHECKPOINT_JOURNAL_BYTES = 256 << 20  # or as soon as the journal holds this many bytes of bodies
SPOOL_BYTES = 256 << 10  # request bodies from this size are streamed to a file, not read into memory
SPOOL_CHUNK = 1 << 20
_READ_PREFIXES = ("Get", "List", "Describe", "Head", "Query", "Scan", "BatchGet", "TransactGet", "Check", "Search",
                  "Lookup", "Validate", "Test", "Estimate", "Simulate", "Decode", "Filter", "Select")  # fmt: skip
_WRITES_DESPITE_PREFIX = {"GetSessionToken", "GetFederationToken", "GetRandomPassword"}
_NOT_JOURNALED = {"ReceiveMessage", "ChangeMessageVisibility", "ChangeMessageVisibilityBatch"}
_SQS_DELETES = {"DeleteMessage", "DeleteMessageBatch"}
_ENVIRON_KEYS = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "CONTENT_LENGTH",
                 "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REQUEST_URI", "RAW_URI", "REMOTE_ADDR",
                 "wsgi.url_scheme")  # fmt: skip


# ================================================================================================ the data dir
def default_data_dir() -> Path:
    """`$CLIPLAKE_DATA_DIR`, else the user's data directory: `$XDG_DATA_HOME/cliplake` (`~/.local/share/cliplake`),
    `~/Library/Application Support/cliplake` on macOS, `%LOCALAPPDATA%\\cliplake` on Windows."""
    if os.environ.get("CLIPLAKE_DATA_DIR"):
        return Path(os.environ["CLIPLAKE_DATA_DIR"]).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "cliplake"
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "cliplake"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "cliplake"


class DataDirBusy(RuntimeError):
    pass


class DataDir:
    """The layout: `journal.sqlite`, `state.pickle`, `s3/`, `cloud.json` (port, stack), `logs/`, `lock`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser().resolve()
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(OSError):
            self.path.chmod(0o700)
        self.s3 = self.path / "s3"
        self.bodies = self.s3 / ".bodies"
        self.bodies.mkdir(parents=True, exist_ok=True)
        (self.path / "logs").mkdir(exist_ok=True)
        self._lock_file: Any = None

    @property
    def journal(self) -> Path:
        return self.path / "journal.sqlite"

    @property
    def checkpoint(self) -> Path:
        return self.path / "state.pickle"

    @property
    def log_file(self) -> Path:
        return self.path / "logs" / "functions.log"

    @property
    def info_file(self) -> Path:
        return self.path / "cloud.json"

    def lock(self) -> None:
        """One local cloud per data directory (an advisory lock, released when the process ends, even by kill -9)."""
        self._lock_file = (self.path / "lock").open("a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            self._lock_file = None
            raise DataDirBusy(f"another local cloud is using {self.path}") from None
        self._lock_file.seek(0)
        self._lock_file.truncate()
        self._lock_file.write(str(os.getpid()))
        self._lock_file.flush()

    def unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def read_info(self) -> dict[str, Any]:
        try:
            return json.loads(self.info_file.read_text())
        except (OSError, ValueError):
            return {}

    def write_info(self, info: dict[str, Any]) -> None:
        tmp = self.info_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=1, sort_keys=True))
        tmp.replace(self.info_file)

    def has_state(self) -> bool:
        return self.checkpoint.exists() or self.journal.exists()


# ================================================================================================ the journal
class Journal:
    """Append-only SQLite table of what changed since the last checkpoint. One connection, used under the lock.

    `synchronous=NORMAL` in WAL mode: a committed row survives a crash of the process (kill -9); a power cut may
    lose the last transactions (FULL would fsync every commit)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,"
            " payload TEXT NOT NULL, body BLOB)"
        )
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS rekognition_jobs (job_id TEXT PRIMARY KEY, api TEXT NOT NULL,"
            " request TEXT NOT NULL, status TEXT NOT NULL, message TEXT, notified INTEGER NOT NULL DEFAULT 0,"
            " analysis BLOB, created REAL NOT NULL)"
        )
        self.bytes = 0
        self.count = self.conn.execute("SELECT count(*) FROM journal").fetchone()[0]
        # Large request bodies (uploaded parts, objects) are files beside the journal, its rows name them: a body
        # is streamed from the socket to its file and never held whole in memory, nor copied into SQLite.
        self.bodies = path.with_name("journal.bodies")
        self.bodies.mkdir(exist_ok=True)
        named = {p["body_file"] for _, _, p, _ in self.entries() if "body_file" in p}
        for orphan in self.bodies.iterdir():  # spooled by a request that never returned (a crash): not journaled
            if orphan.name not in named:
                orphan.unlink(missing_ok=True)

    def spool(self, stream: Any, length: int | None) -> Path:
        """Copy a request body to a file of its own (outside the lock: uploads stream in parallel)."""
        path = self.bodies / uuid.uuid4().hex
        with path.open("wb") as f:
            left = length
            while left is None or left > 0:
                chunk = stream.read(SPOOL_CHUNK if left is None else min(SPOOL_CHUNK, left))
                if not chunk:
                    break
                f.write(chunk)
                if left is not None:
                    left -= len(chunk)
        return path

    def append(self, kind: str, payload: dict[str, Any], body: bytes | Path | None = None) -> None:
        if isinstance(body, Path):
            payload = {**payload, "body_file": body.name}
            self.conn.execute("INSERT INTO journal (kind, payload) VALUES (?, ?)", (kind, json.dumps(payload)))
            self.bytes += body.stat().st_size
        else:
            self.conn.execute(
                "INSERT INTO journal (kind, payload, body) VALUES (?, ?, ?)", (kind, json.dumps(payload), body)
            )
            self.bytes += len(body or b"")
        self.count += 1

    def body_of(self, payload: dict[str, Any], body: bytes | None) -> bytes | Path:
        """An entry's request body: its bytes, or the path of its file."""
        return self.bodies / payload["body_file"] if "body_file" in payload else body or b""

    def entries(self, after: int = 0) -> Iterator[tuple[int, str, dict[str, Any], bytes | None]]:
        last = after
        while True:  # in pages, so that a journal of large bodies is not all in memory at once
            rows = self.conn.execute(
                "SELECT seq, kind, payload, body FROM journal WHERE seq > ? ORDER BY seq LIMIT 64", (last,)
            ).fetchall()
            if not rows:
                return
            for seq, kind, payload, body in rows:
                last = seq
                yield seq, kind, json.loads(payload), body

    def last_seq(self) -> int:
        return self.conn.execute("SELECT coalesce(max(seq), 0) FROM journal").fetchone()[0]

    def clear_through(self, seq: int) -> None:
        """Drop the rows up to `seq` (a checkpoint holds them) and their body files."""
        for payload, size in self.conn.execute(
            "SELECT payload, length(body) FROM journal WHERE seq <= ?", (seq,)
        ).fetchall():
            name = json.loads(payload).get("body_file")
            if name:
                path = self.bodies / name
                self.bytes -= path.stat().st_size if path.exists() else 0
                path.unlink(missing_ok=True)
            self.bytes -= size or 0
            self.count -= 1
        self.conn.execute("DELETE FROM journal WHERE seq <= ?", (seq,))
        if not self.count:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.bytes = max(0, self.bytes)

    def close(self) -> None:
        self.conn.close()


# ============================================================================================ moto, patched
_tls = threading.local()


def _thread_rng() -> random.Random:
    rng = getattr(_tls, "rng", None)
    if rng is None:
        rng = _tls.rng = random.Random(secrets.randbits(64))
    return rng


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """moto's `mock_random` draws from a generator seeded with `seed` in this thread while inside."""
    previous = getattr(_tls, "rng", None)
    _tls.rng = random.Random(seed)
    try:
        yield
    finally:
        _tls.rng = previous


class FileBody:
    """The body of one S3 key (or part) in a file of its own under `s3/.bodies/`, written once.

    It stands in for the `SpooledTemporaryFile` of moto's `FakeKey`: `seek(0); truncate(); write(v)` starts a new
    file, so that copies of a key (moto deep-copies keys) can share a file safely."""

    root: Path | None = None
    live: dict[str, int] = {}  # body file name -> open FileBody objects referencing it
    live_lock = threading.Lock()

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        self.closed = False
        self._pos = 0
        self._reader: io.BufferedReader | None = None
        if name:
            self._ref(name)

    # -------------------------------------------------------------------------- references
    def _ref(self, name: str) -> None:
        with FileBody.live_lock:
            FileBody.live[name] = FileBody.live.get(name, 0) + 1

    def _unref(self) -> None:
        if self.name:
            with FileBody.live_lock:
                n = FileBody.live.get(self.name, 0) - 1
                if n > 0:
                    FileBody.live[self.name] = n
                else:
                    FileBody.live.pop(self.name, None)

    @property
    def path(self) -> Path:
        assert FileBody.root is not None and self.name
        return FileBody.root / self.name

    # -------------------------------------------------------------------------- file protocol
    def seek(self, pos: int, whence: int = 0) -> int:
        if whence == 0:
            self._pos = pos
        elif whence == 2:
            self._pos = self.size() + pos
        else:
            self._pos += pos
        return self._pos

    def tell(self) -> int:
        return self._pos

    def size(self) -> int:
        return self.path.stat().st_size if self.name else 0

    def truncate(self, size: int | None = None) -> None:
        if size not in (None, 0):
            raise io.UnsupportedOperation("a body is written once")
        self._close_reader()
        self._unref()
        self.name = None

    def write(self, data: Any) -> int:
        if self.name is not None:
            raise io.UnsupportedOperation("a body is written once")
        name = uuid.uuid4().hex
        tmp = FileBody.root / f"{name}.tmp"
        written = 0
        with tmp.open("wb") as f:
            if isinstance(data, PartsValue):
                for part in data.parts:
                    written += _copy_body(part._value_buffer, f)
            else:
                f.write(data)
                written = len(data)
        self._ref(name)  # live before its file appears (see Persistence._collect_bodies)
        tmp.replace(FileBody.root / name)
        self.name = name
        self._pos = written
        return written

    def read(self, n: int = -1) -> bytes:
        if not self.name:
            return b""
        if self._reader is None:
            self._reader = self.path.open("rb")
        self._reader.seek(self._pos)
        data = self._reader.read() if n is None or n < 0 else self._reader.read(n)
        self._pos += len(data)
        return data

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def close(self) -> None:
        if not self.closed:
            self._close_reader()
            self._unref()
            self.closed = True

    def __reduce__(self) -> Any:
        return (FileBody, (self.name,))

    def __deepcopy__(self, memo: Any) -> FileBody:
        return FileBody(self.name)


def _copy_body(source: Any, dest: Any) -> int:
    if isinstance(source, FileBody) and source.name:
        with source.path.open("rb") as f:
            return _copy_stream(f, dest)
    source.seek(0)
    return _copy_stream(source, dest)


def _copy_stream(src: Any, dest: Any) -> int:
    n = 0
    while chunk := src.read(8 << 20):
        dest.write(chunk)
        n += len(chunk)
    return n


class PartsValue:
    """What `FakeMultipart.complete` returns here instead of the parts joined in memory: `FileBody.write` copies the
    parts' files one after the other."""

    def __init__(self, parts: list[Any]) -> None:
        self.parts = parts
        self._len = sum(p.contentsize for p in parts)

    def __len__(self) -> int:
        return self._len


class LazyBody:
    """A GET's body read from the key's file as the response is sent (bytes-like enough for moto's S3 responses:
    length, slices for ranges, iteration in 1 MiB chunks), instead of the whole object in memory."""

    def __init__(self, path: Path, start: int, end: int) -> None:
        self.path, self.start, self.end = path, start, max(start, end)

    def __len__(self) -> int:
        return self.end - self.start

    def __bool__(self) -> bool:
        return self.end > self.start

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, slice):
            begin, stop, step = item.indices(len(self))
            if step != 1:
                raise ValueError("only contiguous slices")
            return LazyBody(self.path, self.start + begin, self.start + max(begin, stop))
        return bytes(self[item : item + 1])[0]

    def __iter__(self) -> Iterator[bytes]:
        with self.path.open("rb") as f:
            f.seek(self.start)
            left = len(self)
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk

    def __bytes__(self) -> bytes:
        return b"".join(self)


class _TempfileShim:
    """Replaces `tempfile` inside moto's S3 models: keys' buffers become `FileBody` objects."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def SpooledTemporaryFile(self, *args: Any, **kwargs: Any) -> Any:
        if FileBody.root is None:
            return self._real.SpooledTemporaryFile(*args, **kwargs)
        return FileBody()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


_installed: list[bool] = []
_hooks: dict[str, Callable[..., Any]] = {}


def _install_moto_patches() -> None:
    """Patch moto once per process (idempotent). Without a data directory the patches behave like moto."""
    if _installed:
        return
    _installed.append(True)
    from moto.moto_api._internal import mock_random
    from moto.s3 import models as s3_models
    from moto.stepfunctions.parser.backend import execution as sfn_execution

    # ids: one generator per thread; a journaled request seeds its own
    mock_random.random = lambda: _thread_rng().random()
    mock_random.getrandbits = lambda k: _thread_rng().getrandbits(k)

    # S3: bodies as files
    s3_models.tempfile = _TempfileShim(s3_models.tempfile)
    fake_key = s3_models.FakeKey
    original_value = fake_key.value

    def value_get(self: Any) -> Any:
        body = self._value_buffer
        if getattr(_tls, "lazy_get", False) and isinstance(body, FileBody) and body.name:
            return LazyBody(body.path, 0, self.contentsize)
        return original_value.fget(self)

    def value_set(self: Any, new_value: Any) -> None:
        if isinstance(new_value, PartsValue) and not isinstance(self._value_buffer, FileBody):
            new_value = b"".join(p.value for p in new_value.parts)
        original_value.fset(self, new_value)
        if isinstance(self._value_buffer, FileBody):
            _link_latest(self)

    fake_key.value = property(value_get, value_set)

    def key_getstate(self: Any) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["lock"]
        if not isinstance(self._value_buffer, FileBody):
            del state["_value_buffer"]
            try:
                state["value"] = self.value
            except ValueError:
                state["value"] = b""
        return state

    def key_setstate(self: Any, state: dict[str, Any]) -> None:
        self.__dict__.update({k: v for k, v in state.items() if k != "value"})
        self.lock = threading.Lock()
        if "_value_buffer" not in state:
            self._value_buffer = s3_models.tempfile.SpooledTemporaryFile(max_size=self._max_buffer_size)
            original_value.fset(self, state.get("value", b""))

    fake_key.__getstate__ = key_getstate
    fake_key.__setstate__ = key_setstate

    def complete(self: Any, body: Iterable[tuple[int, str]]) -> tuple[Any, str, Any]:
        """moto's `FakeMultipart.complete`, with the parts referenced instead of joined in memory."""
        import codecs

        from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML
        from moto.s3.models import S3_UPLOAD_PART_MIN_SIZE, MultipartChecksumBuilder
        from moto.utilities.utils import md5_hash

        checksum_builder = MultipartChecksumBuilder(
            self.metadata.get("x-amz-checksum-algorithm"), self.metadata.get("x-amz-checksum-type")
        )
        md5s, parts, last = bytearray(), [], None
        for pn, etag in body:
            part = self.parts.get(pn)
            if part is None or part.etag.replace('"', "") != etag.replace('"', ""):
                raise InvalidPart()
            if last is not None and last.contentsize < S3_UPLOAD_PART_MIN_SIZE:
                raise EntityTooSmall()
            md5s.extend(codecs.decode(part.etag.replace('"', ""), "hex"))
            if checksum_builder.checksum_type == "COMPOSITE":
                checksum_builder.addPart(part.value)  # one part in memory at a time
            parts.append(part)
            last = part
        if not parts:
            raise MalformedXML
        full_etag = md5_hash()
        full_etag.update(bytes(md5s))
        if checksum_builder.checksum_type == "COMPOSITE":
            checksum = checksum_builder.build()
        else:  # moto joins the whole object in memory for a full-object checksum: computed over the files instead
            checksum = _full_object_checksum(checksum_builder, parts)
        return PartsValue(parts), f"{full_etag.hexdigest()}-{len(parts)}", checksum

    if hasattr(s3_models.MultipartChecksumBuilder, "__init__"):
        s3_models.FakeMultipart.complete = complete

    from moto.s3.responses import S3Response

    get_object = S3Response.get_object

    def streamed_get_object(self: Any) -> Any:
        _tls.lazy_get = True  # the key's value, in this request, is its file read as the response is sent
        try:
            return get_object(self)
        finally:
            _tls.lazy_get = False

    S3Response.get_object = streamed_get_object

    multipart_init = s3_models.FakeMultipart.__init__

    def multipart_init_seeded(self: Any, *args: Any, **kwargs: Any) -> None:
        multipart_init(self, *args, **kwargs)
        self.id = mock_random.get_random_string(length=43)  # moto draws it from os.urandom: not replayable

    s3_models.FakeMultipart.__init__ = multipart_init_seeded

    # Step Functions: no interpreter during a replay; an execution's end is journaled
    execution_start = sfn_execution.Execution.start

    def start(self: Any) -> None:
        if getattr(_tls, "replaying", False):
            self.exec_worker = self._get_start_execution_worker()
            self.exec_status = sfn_execution.ExecutionStatus.RUNNING
            return
        execution_start(self)

    sfn_execution.Execution.start = start
    terminated = sfn_execution.BaseExecutionWorkerCommunication.terminated

    def on_terminated(self: Any) -> None:
        terminated(self)
        hook = _hooks.get("execution_ended")
        if hook:
            hook(self.execution)

    sfn_execution.BaseExecutionWorkerCommunication.terminated = on_terminated


def _full_object_checksum(builder: Any, parts: list[Any]) -> Any:
    """moto's full-object checksum of a multipart upload, read from the parts' files in chunks."""
    import base64
    import binascii
    import hashlib

    from moto.s3 import utils as s3_utils

    algorithm = builder.checksum_algorithm
    crc_only = algorithm == "CRC32" or (algorithm == "CRC64NVME" and not getattr(s3_utils, "HAS_CRT", False))
    if algorithm == "CRC32C":
        try:
            import crc32c  # noqa: F401 - moto uses it when present: then let moto compute it
        except ImportError:
            crc_only = True
    if not crc_only and algorithm not in ("SHA1", "SHA256"):
        for part in parts:
            builder.addPart(part.value)
        return builder.build()
    digest: Any = hashlib.sha1() if algorithm == "SHA1" else hashlib.sha256() if algorithm == "SHA256" else None  # noqa: S324 - the S3 checksum asked for
    crc = 0
    for part in parts:
        for chunk in _chunks_of(part._value_buffer):
            if digest is not None:
                digest.update(chunk)
            else:
                crc = binascii.crc32(chunk, crc)
    raw = digest.digest() if digest is not None else crc.to_bytes(4, "big")
    return builder.checksum_type, base64.b64encode(raw).decode(), 1


def _chunks_of(body: Any) -> Iterator[bytes]:
    if isinstance(body, FileBody) and body.name:
        with body.path.open("rb") as f:
            while chunk := f.read(8 << 20):
                yield chunk
        return
    body.seek(0)
    while chunk := body.read(8 << 20):
        yield chunk


def _link_latest(key: Any) -> None:
    """`s3/<bucket>/<key>` is a hard link to the newest body of the key (parts have no bucket: not linked)."""
    body = key._value_buffer
    if not key.bucket_name or not body.name or FileBody.root is None:
        return
    target = _visible_path(key.bucket_name, key.name)
    if target is None:
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.link"
        os.link(body.path, tmp)
        tmp.replace(target)
    except OSError as exc:  # a key that cannot be a path (e.g. `a` and `a/b`): visible only through S3
        log.debug("no visible file for s3://%s/%s: %s", key.bucket_name, key.name, exc)


def _visible_path(bucket: str, key: str) -> Path | None:
    assert FileBody.root is not None
    parts = [p for p in key.split("/") if p]
    if not parts or any(p in (".", "..") or (p.startswith(".") and p.endswith(".link")) for p in parts):
        return None
    return FileBody.root.parent / bucket / Path(*parts)


def object_file(bucket: str, key: str, version: str | None = None) -> Path | None:
    """The file holding an S3 object's bytes in this process's local cloud (None when not stored as a file)."""
    from moto.s3.models import s3_backends

    for account in list(s3_backends.values()):
        for backend in list(account.values()):
            try:
                obj = backend.get_object(bucket, key, version_id=version or None)
            except Exception:  # noqa: S112 - another account or partition: look further
                continue
            body = getattr(obj, "_value_buffer", None)
            if isinstance(body, FileBody) and body.name:
                return body.path
    return None


# ================================================================================================ pickling
def _make_lock() -> Any:
    return threading.Lock()


def _make_rlock() -> Any:
    return threading.RLock()


def _make_condition() -> Any:
    return threading.Condition()


def _make_event(flag: bool) -> Any:
    e = threading.Event()
    if flag:
        e.set()
    return e


_LOCK_TYPE = type(threading.Lock())
_RLOCK_TYPE = type(threading.RLock())


class _StatePickler(pickle.Pickler):
    """Locks, conditions, events and threads come back new (released, unset, not running); SSM's parameter dict
    (a `defaultdict` with a lambda) as a plain dict restored by its class."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, _LOCK_TYPE):
            return _make_lock, ()
        if isinstance(obj, _RLOCK_TYPE):
            return _make_rlock, ()
        if isinstance(obj, threading.Condition):
            return _make_condition, ()
        if isinstance(obj, threading.Event):
            return _make_event, (obj.is_set(),)
        if isinstance(obj, threading.Thread):
            return _dead_thread, (obj.name,)
        if type(obj).__name__ == "ParameterDict" and type(obj).__module__.startswith("moto.ssm"):
            return _restore_parameter_dict, (type(obj), obj.region_name, obj.account_id, dict(obj))
        if isinstance(obj, defaultdict) and getattr(obj.default_factory, "__name__", "") == "<lambda>":
            return _nested_defaultdict, (dict(obj),)  # SSM's tags: defaultdict(lambda: defaultdict(dict))
        if type(obj).__name__ == "LimitedSizeDict" and type(obj).__module__.startswith("moto.dynamodb"):
            return _plain_dict_of, (type(obj), dict(obj))  # its __setitem__ re-sizes the whole item: O(n²) loads
        if type(obj).__name__ == "_VersionedKeyStore":
            return _versions_reduce(obj)  # as a dict, it would keep only the newest version of each key
        if isinstance(obj, weakref.WeakValueDictionary):
            return _weak_values, (dict(obj),)  # Lambda's ARN index: its values live elsewhere in the pickle
        if isinstance(obj, io.IOBase) and not isinstance(obj, FileBody):
            return _closed_file, ()
        if type(obj).__module__.startswith("cryptography") and hasattr(obj, "private_bytes"):
            from cryptography.hazmat.primitives import serialization as ser

            pem = obj.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
            return _load_private_key, (pem,)
        return NotImplemented


def _versions_reduce(obj: Any) -> Any:
    """S3's key store maps a key to the list of its versions; `items()` shows only the newest."""
    return _plain_dict_of, (type(obj), {k: dict.__getitem__(obj, k) for k in dict.keys(obj)})


def _plain_dict_of(cls: Any, items: dict[str, Any]) -> Any:
    obj = cls.__new__(cls)
    dict.update(obj, items)
    return obj


def _weak_values(items: dict[str, Any]) -> weakref.WeakValueDictionary:
    return weakref.WeakValueDictionary(items)


def _dict_defaultdict() -> defaultdict:
    return defaultdict(dict)


def _nested_defaultdict(items: dict[str, Any]) -> defaultdict:
    out: defaultdict = defaultdict(_dict_defaultdict)
    out.update(items)
    return out


def _load_private_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return load_pem_private_key(pem, password=None)


def _dead_thread(name: str) -> threading.Thread:
    return threading.Thread(name=f"{name} (before restart)", daemon=True)


def _closed_file() -> Any:
    f = io.BytesIO()
    f.close()
    return f


def _restore_parameter_dict(cls: Any, region_name: str, account_id: str, items: dict[str, Any]) -> Any:
    obj = cls(account_id, region_name)
    obj.update(items)
    return obj


copyreg.pickle(type(threading.local()), lambda _: (threading.local, ()))


def _fast_dispatch_table() -> dict[type, Callable[[Any], Any]]:
    """The same reductions by exact type, looked up in C: `reducer_override` calls Python for every object (seconds
    for a catalog of 10,000 videos); a checkpoint tries this table first, and the override when it fails."""
    import collections

    from moto.dynamodb.models.dynamo_type import LimitedSizeDict
    from moto.s3.utils import _VersionedKeyStore

    def defaultdict_reduce(obj: Any) -> Any:
        if getattr(obj.default_factory, "__name__", "") == "<lambda>":
            return _nested_defaultdict, (dict(obj),)
        return obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)

    table = dict(copyreg.dispatch_table)
    table.update({
        _LOCK_TYPE: lambda _: (_make_lock, ()),
        _RLOCK_TYPE: lambda _: (_make_rlock, ()),
        threading.Condition: lambda _: (_make_condition, ()),
        threading.Event: lambda obj: (_make_event, (obj.is_set(),)),
        threading.Thread: lambda obj: (_dead_thread, (obj.name,)),
        weakref.WeakValueDictionary: lambda obj: (_weak_values, (dict(obj),)),
        LimitedSizeDict: lambda obj: (_plain_dict_of, (type(obj), dict(obj))),
        _VersionedKeyStore: _versions_reduce,
        collections.defaultdict: defaultdict_reduce,
    })  # fmt: skip
    with contextlib.suppress(ImportError):  # moto's KMS and IAM keep private keys (Rust objects)
        from cryptography.hazmat.bindings._rust import openssl as rust_openssl

        for module, name in (("rsa", "RSAPrivateKey"), ("ec", "ECPrivateKey"), ("ed25519", "Ed25519PrivateKey")):
            cls = getattr(getattr(rust_openssl, module, None), name, None)
            if isinstance(cls, type):
                table[cls] = lambda obj: _StatePickler.reducer_override(None, obj)  # type: ignore[arg-type]
    with contextlib.suppress(ImportError):
        from moto.ssm.models import ParameterDict

        table[ParameterDict] = lambda obj: (
            _restore_parameter_dict, (type(obj), obj.region_name, obj.account_id, dict(obj)))  # fmt: skip
    return table


class _FastPickler(pickle.Pickler):
    dispatch_table: dict[type, Callable[[Any], Any]] = {}


def _backend_dicts() -> list[Any]:
    from moto.core.base_backend import BackendDict

    return [b for b in BackendDict._instances if len(b)]


def _live_backend_dict(loaded: Any) -> Any:
    """The module-level `BackendDict` that `loaded` was pickled from (same service, same backend class)."""
    import importlib

    module = importlib.import_module(loaded.backend.__module__)
    for value in vars(module).values():
        if (
            type(value) is type(loaded)
            and value.service_name == loaded.service_name
            and (value.backend is loaded.backend)
        ):
            return value
    raise LookupError(f"no backend dict for {loaded.service_name} in {module.__name__}")


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Millions of small objects made or walked at once: the cyclic collector would run hundreds of times."""

    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


# ============================================================================================== the manager
@dataclasses.dataclass
class Restored:
    checkpoint_loaded: bool = False
    replayed: int = 0
    replay_failures: int = 0
    aborted_executions: list[dict[str, str]] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def anything(self) -> bool:
        """State was restored: a checkpoint, journaled requests, or both (a crash before the first checkpoint)."""
        return self.checkpoint_loaded or self.replayed > 0


class Persistence:
    """Owns the data directory while a local cloud runs on it. Use: `restore(app)` before serving, then serve
    `middleware(app)`; `checkpoint()` whenever; `close()` at a clean stop (a last checkpoint)."""

    def __init__(self, data_dir: str | Path) -> None:
        self.dir = DataDir(data_dir)
        self.dir.lock()
        self.journal = Journal(self.dir.journal)
        self.lock = threading.RLock()  # every journaled request, every checkpoint
        self._dirty_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.checkpoints = 0
        self.last_checkpoint_s = 0.0
        _install_moto_patches()
        FileBody.root = self.dir.bodies
        _hooks["execution_ended"] = self._execution_ended

    # ------------------------------------------------------------------------------------------ restore
    def restore(self, app: Any) -> Restored:
        started = time.perf_counter()
        result = Restored()
        held = 0  # the last journal row the checkpoint holds
        if self.dir.checkpoint.exists():
            held = self._load_checkpoint()
            result.checkpoint_loaded = True
        _tls.replaying = True
        try:
            for seq, kind, payload, body in self.journal.entries(after=held):
                try:
                    with seeded(payload.get("seed", seq)):
                        self._replay(app, kind, payload, body)
                    result.replayed += 1
                except Exception as exc:  # a divergence: say so and go on, the rest is redone by redelivery
                    result.replay_failures += 1
                    log.warning("journal entry %d (%s %s) did not replay: %s", seq, kind, payload.get("action"), exc)
        finally:
            _tls.replaying = False
        result.aborted_executions = self._abort_running_executions()
        self._make_messages_visible()
        if result.replayed or result.aborted_executions:
            self._dirty()  # the background thread checkpoints it soon; the journal keeps it until then
        result.seconds = time.perf_counter() - started
        return result

    def _load_checkpoint(self) -> int:
        """Load `state.pickle` into moto's backends; returns the last journal row it holds."""
        with self.dir.checkpoint.open("rb") as f, _gc_paused():
            state = pickle.load(f)  # noqa: S301 - our own file, in a private directory
            # the millions of objects just made live as long as the process: out of the collector's generations,
            # or its next collections scan them all (they took 1 s each of the botocore clients made next)
            gc.freeze()
        from moto.core.base_backend import BackendDict

        for loaded in state["backends"]:
            live = _live_backend_dict(loaded)
            live.clear()
            dict.update(live, loaded)
            if live not in BackendDict._instances:
                BackendDict._instances.append(live)
        return int(state.get("journal_seq", 0))

    def _replay(self, app: Any, kind: str, payload: dict[str, Any], body: bytes | None) -> None:
        if kind == "http":
            status = _call(app, payload["environ"], self.journal.body_of(payload, body))[0]
            if not 200 <= status < 300:
                raise RuntimeError(f"answered {status} this time")
        elif kind == "sqs-delete":
            _delete_messages(payload["account"], payload["region"], payload["queue"], set(payload["ids"]))
        elif kind == "execution-ended":
            _end_execution(payload)
        else:
            raise ValueError(f"unknown journal entry kind {kind!r}")

    def _abort_running_executions(self) -> list[dict[str, str]]:
        from moto.stepfunctions.parser.api import ExecutionStatus

        aborted = []
        now = datetime.datetime.now(tz=datetime.UTC)
        for execution in _executions():
            if execution.exec_status == ExecutionStatus.RUNNING:
                execution.exec_status = ExecutionStatus.ABORTED
                execution.stop_date = now
                execution.error = "LocalCloudRestarted"
                execution.cause = (
                    f"The local cloud stopped while this batch was running (restarted at {now:%Y-%m-%d %H:%M:%S} "
                    "UTC). Its videos already ingested were finished by their queues; start the batch again for "
                    "the rest (videos already in the catalog are skipped)."
                )
                aborted.append({"arn": execution.exec_arn, "name": execution.name, "cause": execution.cause})
        return aborted

    @staticmethod
    def _make_messages_visible() -> None:
        """Messages in flight when the process died: their consumers are gone, so they are visible at once."""
        from moto.sqs.models import sqs_backends

        for account in sqs_backends.values():
            for backend in account.values():
                for queue in backend.queues.values():
                    for message in queue._messages:
                        message.visible_at = 0.0
                    queue.pending_messages.clear()

    # -------------------------------------------------------------------------------------------- stack
    def save_stack(self, cloud: Any) -> None:
        """What a restart needs to attach to the deployed stack without transforming and wiring it again."""
        r = cloud.resolver
        saved = {
            "digest": cloud._stack_digest,
            "template": cloud.template,
            "outputs": cloud.outputs,
            "resolver": {"physical_ids": r.physical_ids, "parameters": r.parameters, "account_id": r.account_id,
                         "stack_id": r.pseudo["AWS::StackId"]},
        }  # fmt: skip
        tmp = self.dir.path / f"stack-{cloud.stack_name}.json.tmp"
        tmp.write_text(json.dumps(saved, default=str))
        tmp.replace(self.dir.path / f"stack-{cloud.stack_name}.json")

    def saved_stack(self, stack_name: str) -> dict[str, Any]:
        try:
            return json.loads((self.dir.path / f"stack-{stack_name}.json").read_text())
        except (OSError, ValueError):
            return {}

    def kept_stack(self, cloud: Any) -> dict[str, Any] | None:
        """The saved stack, when state was restored and the template and parameters are those it was deployed with
        (else: deploy). It is saved once the deployment's requests are all journaled, so a journal replayed without
        a checkpoint holds it too (a kill -9 before the first checkpoint: deploying again over the replayed
        resources failed)."""
        if not (cloud.restored and cloud.restored.anything):
            return None
        saved = self.saved_stack(cloud.stack_name)
        return saved if saved and saved.get("digest") == cloud.stack_digest() else None

    # --------------------------------------------------------------------------------------- middleware
    def middleware(self, app: Any) -> Callable[..., Any]:
        def durable_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            kind, action = classify(environ)
            if kind == "read":
                return app(environ, start_response)
            body: bytes | Path = _spool_or_read(self.journal, environ, kind)
            if kind == "form":
                action = _action_of(environ, body, action)
                kind = _kind_of(action)
            if kind in {"read", "unjournaled"}:
                return app(environ, start_response)
            with self.lock:
                seed = secrets.randbits(63)
                delete_ids = _message_ids_for_delete(environ, body, action) if kind == "sqs-delete" else None
                with seeded(seed):
                    status, headers, out = _call(app, environ, body)
                if 200 <= status < 300:
                    if kind == "sqs-delete":
                        if delete_ids and delete_ids["ids"]:
                            self.journal.append("sqs-delete", delete_ids)
                    else:
                        saved = {k: environ[k] for k in _ENVIRON_KEYS if isinstance(environ.get(k), str)}
                        saved.update({k: v for k, v in environ.items() if k.startswith("HTTP_") and isinstance(v, str)})
                        self.journal.append("http", {"seed": seed, "action": action, "environ": saved}, body or None)
                    self._dirty()
                elif isinstance(body, Path):
                    body.unlink(missing_ok=True)
            start_response(_status_line(status), headers)
            return [out]

        return durable_app

    def _dirty(self) -> None:
        if self._dirty_since is None:
            self._dirty_since = time.monotonic()

    def _execution_ended(self, execution: Any) -> None:
        payload = {
            "arn": execution.exec_arn,
            "status": str(execution.exec_status.value if execution.exec_status else ""),
            "stop_date": execution.stop_date.isoformat() if execution.stop_date else None,
            "output": execution.output,
            "error": execution.error,
            "cause": execution.cause,
        }
        with self.lock:
            try:
                self.journal.append("execution-ended", json.loads(json.dumps(payload, default=str)))
                self._dirty()
            except sqlite3.ProgrammingError:  # closed: the cloud is stopping
                pass

    # --------------------------------------------------------------------------------------- checkpoints
    def start_background(self) -> None:
        self._thread = threading.Thread(target=self._background, name="persistence-checkpoints", daemon=True)
        self._thread.start()

    def _background(self) -> None:
        while not self._stop.wait(0.5):
            since = self._dirty_since
            due = since is not None and (
                time.monotonic() - since >= CHECKPOINT_EVERY_S or self.journal.bytes > CHECKPOINT_JOURNAL_BYTES
            )
            if due:
                try:
                    self.checkpoint()
                except Exception:
                    log.exception("checkpoint failed (the journal keeps everything; next try in a moment)")

    def checkpoint(self) -> None:
        """Pickle every backend in use into `state.pickle`, drop the journal's rows it holds and the bodies nothing
        refers to any more.

        Writes wait only while the state is forked (copy-on-write, as Redis' BGSAVE): a child process pickles the
        snapshot, the server goes on. Pickled under the lock instead, a checkpoint of 10,000 videos (2-4 s) held
        every write that long, every few seconds. The snapshot names the last journal row it holds: a crash
        between its rename and the rows' deletion replays only the rows after it. Without `os.fork` (Windows), the
        state is pickled under the lock."""
        started = time.perf_counter()
        with self.lock:
            seq = self.journal.last_seq()
            with FileBody.live_lock:
                live_then = set(FileBody.live)  # the bodies the snapshot refers to
            self._dirty_since = None
            pid = _fork() if hasattr(os, "fork") else None
            if pid == 0:  # the child: the snapshot is its memory; only this thread exists here
                code = 1
                try:
                    _write_state(self.dir.checkpoint, seq)
                    code = 0
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(code)
            if pid is None:
                _write_state(self.dir.checkpoint, seq)
        if pid is not None:
            _, status = os.waitpid(pid, 0)
            if status != 0:
                self.dir.checkpoint.with_suffix(".tmp").unlink(missing_ok=True)
                raise RuntimeError(f"the checkpoint's process failed (wait status {status}); the journal keeps all")
        with self.lock:
            self.journal.clear_through(seq)
            self._collect_bodies(live_then)
        self.checkpoints += 1
        self.last_checkpoint_s = time.perf_counter() - started

    def _collect_bodies(self, live_then: set[str]) -> None:
        # Listed before the live set is read: a body written meanwhile (by a write that does not hold `self.lock`,
        # such as moto's backends called in-process) is either not listed, or listed and already counted live
        # (`FileBody.write` counts a body before its file appears). Read first, the live set missed the bodies
        # written during the listing, and their files were removed under their objects.
        names = [path.name for path in self.dir.bodies.iterdir()]
        with FileBody.live_lock:
            live = set(FileBody.live) | live_then
        for name in names:
            if name not in live and not name.endswith(".tmp"):
                (self.dir.bodies / name).unlink(missing_ok=True)
        # visible links whose key is gone or was overwritten by a body that is not the newest
        for path in list(self.dir.s3.rglob("*")):
            if path.is_file() and self.dir.bodies not in path.parents and path.stat().st_nlink == 1:
                path.unlink(missing_ok=True)

    def close(self, final_checkpoint: bool = True) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        if final_checkpoint:
            try:
                self.checkpoint()
            except Exception:
                log.exception("last checkpoint failed; the journal keeps what changed since the one before")
        _hooks.pop("execution_ended", None)
        with self.lock:
            self.journal.close()
        self.dir.unlock()

    def detach(self) -> None:
        """After moto was reset: the next cloud in this process starts from scratch (no bodies kept)."""
        FileBody.root = None

    # ------------------------------------------------------------------------------------- rekognition
    def attach_rekognition(self, server: Any) -> int:
        """Journal the local Rekognition endpoint's jobs; re-run those whose completion was not published.
        Returns how many were re-run."""
        return RekognitionJobs(self, server).attach()


# ============================================================================================ request helpers
def classify(environ: dict[str, Any]) -> tuple[str, str]:
    """("read" | "unjournaled" | "sqs-delete" | "write", action)."""
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "")
    if path.startswith("/moto-api"):
        return "read", path
    if method in ("GET", "HEAD", "OPTIONS"):
        return "read", method
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    action = target.rpartition(".")[2] if target else ""
    if not action and "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        action = "?"  # the query protocol: the action is in the body, read below
    if not action:
        return "write", f"{method} {path}"  # REST protocols: S3, Scheduler
    return "form", action  # the kind follows from the action


def _spool_or_read(journal: Journal, environ: dict[str, Any], kind: str) -> bytes | Path:
    """The request body: small ones as bytes, large ones (REST uploads) streamed to a file of the journal's."""
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    size = int(length) if length else None
    if size is None and not environ.get("wsgi.input_terminated"):
        return b""
    if kind == "write" and (size is None or size >= SPOOL_BYTES):
        return journal.spool(stream, size)
    body = stream.read(size) if size is not None else stream.read()
    environ["wsgi.input"] = io.BytesIO(body)  # for the app, if the request is not journaled after all
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def _action_of(environ: dict[str, Any], body: bytes, action: str) -> str:
    if action == "?":
        return urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
    return action


def _kind_of(action: str) -> str:
    if action in _NOT_JOURNALED:
        return "unjournaled"
    if action in _SQS_DELETES:
        return "sqs-delete"
    if action.startswith(_READ_PREFIXES) and action not in _WRITES_DESPITE_PREFIX:
        return "read"
    return "write"


def _call(app: Any, saved: dict[str, Any], body: bytes | Path) -> tuple[int, list[tuple[str, str]], bytes]:
    """Run one request through the app with `body` (bytes, or a file streamed as the input); returns what it
    answered."""
    with contextlib.ExitStack() as stack:
        if isinstance(body, Path):
            stream, length = stack.enter_context(body.open("rb")), body.stat().st_size
        else:
            stream, length = io.BytesIO(body), len(body)
        environ = dict(saved)
        environ.setdefault("SCRIPT_NAME", "")
        environ.setdefault("SERVER_NAME", "127.0.0.1")
        environ.setdefault("SERVER_PORT", "0")
        environ.setdefault("SERVER_PROTOCOL", "HTTP/1.1")
        environ.setdefault("wsgi.url_scheme", "http")
        environ.update({"wsgi.input": stream, "CONTENT_LENGTH": str(length), "wsgi.errors": sys.stderr,
                        "wsgi.version": (1, 0), "wsgi.multithread": True, "wsgi.multiprocess": False,
                        "wsgi.run_once": False})  # fmt: skip
        environ.pop("HTTP_TRANSFER_ENCODING", None)  # the body is whole now, its length known
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        try:
            result = app(environ, start_response)
            try:
                out = b"".join(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
        finally:
            # The request object werkzeug hangs in the environ refers back to it: a cycle that would keep the
            # body it read (an uploaded part, megabytes) until the next garbage collection. Broken here.
            environ.clear()
    return int(captured["status"].split()[0]), list(captured["headers"]), out


def _status_line(status: int) -> str:
    from http import HTTPStatus

    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _queue_of(url_or_name: str) -> tuple[str, str]:
    """(account, name) from a queue URL `http://host/<account>/<name>`."""
    path = urllib.parse.urlparse(url_or_name).path.strip("/").split("/")
    return (path[-2], path[-1]) if len(path) >= 2 else ("", path[-1])


def _message_ids_for_delete(environ: dict[str, Any], body: bytes, action: str) -> dict[str, Any]:
    """The ids of the messages a DeleteMessage(Batch) names by receipt handle (looked up before it runs)."""
    from moto.sqs.models import sqs_backends

    if environ.get("HTTP_X_AMZ_TARGET"):
        request = json.loads(body or b"{}")
        url = request.get("QueueUrl", "")
        handles = [request["ReceiptHandle"]] if "ReceiptHandle" in request else [
            e["ReceiptHandle"] for e in request.get("Entries", [])]  # fmt: skip
    else:
        form = urllib.parse.parse_qs(body.decode())
        url = form.get("QueueUrl", [""])[0]
        handles = [v[0] for k, v in form.items() if k == "ReceiptHandle" or k.endswith(".ReceiptHandle")]
    account, name = _queue_of(url)
    region = _region_of(environ)
    ids: list[str] = []
    with contextlib.suppress(Exception):
        queue = sqs_backends[account][region].queues[name]
        for message in list(queue._messages):
            if any(message.had_receipt_handle(h) for h in handles):
                ids.append(message.id)
    return {"account": account, "region": region, "queue": name, "ids": ids}


def _region_of(environ: dict[str, Any]) -> str:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    if "Credential=" in auth:
        scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 3:
            return scope[2]
    return os.environ.get("AWS_DEFAULT_REGION", "us-east-1")


def _delete_messages(account: str, region: str, queue_name: str, ids: set[str]) -> None:
    from moto.sqs.models import sqs_backends

    queue = sqs_backends[account][region].queues[queue_name]
    for message in [m for m in queue._messages if m.id in ids]:
        queue.pending_messages.discard(message)
        queue.deleted_messages.update(message.all_receipt_handles)
    queue._messages = [m for m in queue._messages if m.id not in ids]


def _executions() -> Iterator[Any]:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    for account in stepfunctions_parser_backends.values():
        for backend in account.values():
            for machine in backend.state_machines:
                yield from machine.executions


def _end_execution(payload: dict[str, Any]) -> None:
    from moto.stepfunctions.parser.api import ExecutionStatus

    for execution in _executions():
        if execution.exec_arn == payload["arn"]:
            execution.exec_status = ExecutionStatus(payload["status"])
            execution.stop_date = datetime.datetime.fromisoformat(payload["stop_date"]) if payload.get(
                "stop_date") else datetime.datetime.now(tz=datetime.UTC)  # fmt: skip
            execution.output = payload.get("output")
            execution.error = payload.get("error")
            execution.cause = payload.get("cause")
            return
    raise LookupError(f"no execution {payload['arn']}")


# ===================================================================================== the Rekognition jobs
class RekognitionJobs:
    """Wraps a `RekognitionServer` instance: its jobs are written to the journal's database when started, finished
    and published; at attach, the unpublished ones run again under their job id."""

    def __init__(self, persistence: Persistence, server: Any) -> None:
        self.p, self.server = persistence, server
        self.conn = persistence.journal.conn

    def attach(self) -> int:
        from cliplake_localcloud.rekognition.server import Job

        server, conn = self.server, self.conn
        rerun: list[Any] = []
        with self.p.lock:
            rows = conn.execute(
                "SELECT job_id, api, request, status, message, notified, analysis, created FROM rekognition_jobs"
            ).fetchall()
        stored: dict[str, bytes] = {}  # job id -> its pickled analysis, loaded when its results are first read
        for job_id, api, request, status, message, notified, analysis, created in rows:
            job = Job(job_id, api, json.loads(request), status, message, None, created)
            if analysis is not None and notified:
                stored[job_id] = analysis
            elif analysis is not None:  # its completion is published again below: with its results
                with contextlib.suppress(Exception):
                    job.analysis = pickle.loads(analysis)  # noqa: S301 - our own file, in a private directory
            if status == "SUCCEEDED" and job.analysis is None and job_id not in stored:
                job.status = "IN_PROGRESS"  # results lost: analyse again (and publish again)
            server._jobs[job_id] = job
            token = job.request.get("ClientRequestToken")
            if token:
                server._tokens[(api, token)] = job_id
            if not notified or job.status == "IN_PROGRESS":
                rerun.append(job)
        original_run, original_notify = server._run, server._notify
        original_start = server.start_job

        def start_job(api: str, request: dict) -> dict:
            out = original_start(api, request)
            job = server._jobs.get(out["JobId"])
            if job is not None:
                self._save(job, notified=False)
            return out

        def notify(job: Any) -> None:
            self._save(job, notified=False)  # finished: results first, so that a crash now re-publishes only
            original_notify(job)
            self._save(job, notified=True)

        loading = threading.Lock()  # two Get* calls of one job: the second waits for the first's unpickling

        def analysis_of(job: Any) -> Any:
            with loading:
                blob = stored.get(job.job_id)
                if blob is None or job.analysis is not None:
                    return job.analysis
                try:
                    job.analysis = pickle.loads(blob)  # noqa: S301 - our own file, in a private directory
                except Exception as exc:  # e.g. written by another version of the engine: analysed again, now
                    # The job stays SUCCEEDED (its completion was published: its results are being read), so this
                    # read waits for the new analysis; if that fails, this read fails and the next one tries again.
                    log.warning("the results of Rekognition job %s could not be read (%s): analysing the video again",
                                job.job_id, exc)  # fmt: skip
                    job.analysis = server._analyse(job.s3)
                    self._save(job, notified=True)
                stored.pop(job.job_id, None)
                return job.analysis

        server.start_job = start_job
        server._notify = notify
        server._analysis_of = analysis_of
        original_analyse = server._analyse

        def analyse(obj: dict) -> Any:
            """As Rekognition reads S3: the object's own file, without a second copy (else download it)."""
            path = object_file(obj["Bucket"], obj["Name"], obj.get("Version"))
            if path is None:
                return original_analyse(obj)
            kwargs = {"Bucket": obj["Bucket"], "Key": obj["Name"]}
            if obj.get("Version"):
                kwargs["VersionId"] = obj["Version"]
            head = server._client("s3").head_object(**kwargs)
            key = (obj["Bucket"], obj["Name"], head.get("ETag", "") + obj.get("Version", ""))
            return server._cache.get(key, lambda: server.engine.analyse(path))

        server._analyse = analyse
        for job in rerun:
            if job.status == "IN_PROGRESS":
                with server._lock:
                    server._active += 1
                server._pool.submit(original_run, job)
            else:
                with server._lock:
                    server._active += 1

                def publish(job: Any = job) -> None:
                    try:
                        notify(job)
                    finally:
                        with server._lock:
                            server._active -= 1

                server._pool.submit(publish)
        return len(rerun)

    def _save(self, job: Any, notified: bool) -> None:
        analysis = None
        if job.analysis is not None and job.status != "IN_PROGRESS":
            with contextlib.suppress(Exception):
                analysis = pickle.dumps(job.analysis, protocol=pickle.HIGHEST_PROTOCOL)
        with self.p.lock:
            self.conn.execute(
                "INSERT OR REPLACE INTO rekognition_jobs (job_id, api, request, status, message, notified, analysis,"
                " created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (job.job_id, job.api, json.dumps(job.request), job.status, job.message, int(notified), analysis,
                 job.created),
            )  # fmt: skip


# ============================================================================================ checkpoint files
def _fork() -> int:
    """`os.fork()` while other threads run. Safe here: the child only pickles (no lock of theirs is taken: the
    pickler makes new locks) and writes one file, then leaves with `os._exit`."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+: "multi-threaded, use of fork()..."
        return os.fork()


def _write_state(path: Path, seq: int) -> None:
    """Pickle every backend in use into `path` (written aside, then renamed); `seq`: the last journal row held."""
    tmp = path.with_suffix(".tmp")
    for attempt in range(20):  # under the lock in this process, an execution's thread may change its history
        try:
            with tmp.open("wb") as f, _gc_paused():
                state = {"backends": _backend_dicts(), "journal_seq": seq}
                try:
                    if not _FastPickler.dispatch_table:
                        _FastPickler.dispatch_table = _fast_dispatch_table()
                    _FastPickler(f, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
                except (TypeError, AttributeError, pickle.PicklingError) as exc:
                    log.debug("checkpoint with the general pickler (%s)", exc)
                    f.seek(0)
                    f.truncate()
                    _StatePickler(f, protocol=pickle.HIGHEST_PROTOCOL).dump(state)
                f.flush()
                os.fsync(f.fileno())
            break
        except RuntimeError as exc:
            if attempt == 19:
                raise
            log.debug("checkpoint retried: %s", exc)
            time.sleep(0.01)
    tmp.replace(path)


# ================================================================================================ the server
def _without_debug(create_app: Callable[[str], Any]) -> Callable[[str], Any]:
    """moto's service apps, out of Flask's debug mode (moto turns it on). In debug mode Flask gives every request a
    class made for it whose method refers back to the request: a reference cycle that keeps the body the request
    read (an uploaded part, megabytes) until the next garbage collection, which counts objects, not bytes. An
    upload's parts piled up that way: hundreds of MB for a 1 GB video."""

    def create(service: str) -> Any:
        app = create_app(service)
        app.debug = False
        return app

    return create


class MotoServer:
    """moto's server (the app `ThreadedMotoServer` serves), behind the journal when a data directory is given.
    The listening socket reuses its address at once (SO_REUSEADDR), so a restart may take the same port."""

    def __init__(self, host: str, port: int, persistence: Persistence | None = None, config: Any = None) -> None:
        self.host, self.port, self.persistence, self.config = host, port, persistence, config
        self.restored: Restored | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> MotoServer:
        from moto.moto_api._internal.models import moto_api_backend
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        if self.config:
            moto_api_backend.set_config(self.config)
        app: Any = DomainDispatcherApplication(_without_debug(create_backend_app))
        if self.persistence is not None:
            self.restored = self.persistence.restore(app)
            app = self.persistence.middleware(app)
        self._server = make_server(self.host, self.port, app, threaded=True, request_handler=MotoRequestHandler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
