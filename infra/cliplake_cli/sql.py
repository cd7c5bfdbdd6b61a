"""`cliplake sql`: DuckDB over the lake's tables (`cliplake.tables`), the files Athena reads through Glue.

DuckDB reads `media-processed/tables/` through an fsspec filesystem backed by boto3 (`LakeFS`), registered with
DuckDB: nothing is downloaded at run time (no extension). Every query lists the tables' objects afresh, DuckDB
prunes partitions (`source=…/campaign=…/`) on the query's filters, and only the partitions it opens are read:
each is the concatenation, in key order, of its per-video objects, fetched once per ETag and kept in a local
cache, so a second query on an unchanged lake fetches nothing but the listing. `bytes_read` counts what DuckDB
read, to compare a one-campaign query with the whole table.

When the lake lives on disk (the local cloud's data directory keeps every object's newest version as a file at
`<data>/s3/<bucket>/<key>`), `LakeFS` lists and reads those files instead of going through S3: the same bytes,
without listing thousands of objects through moto's API on every query. `local_lake_root` finds that directory.

`direct=True` reads the same objects over S3 with DuckDB's own httpfs extension instead, loaded from the
`duckdb-ext-httpfs` wheel pinned with `duckdb` (one GET per object per query: the reference, slow on many files).

The views `videos` and `labels` have the columns of the Glue tables in `infra/template.yaml` (both derive from
the row models), so the README's queries run unchanged in Athena and here. Queries are read-only: one statement,
a SELECT, with DuckDB's access to local files and the network switched off.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import threading
import types
import typing
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import duckdb
from fsspec.spec import AbstractFileSystem
from pydantic import BaseModel

from cliplake.tables import PARTITIONS, TABLES, TABLES_PREFIX

PROTOCOL = "cliplake"
PART_FILE = "data.json"
EMPTY = "__empty__"
TIMESTAMP_COLUMNS = {"ingested_at"}
_DUCKDB_TYPES = {str: "VARCHAR", int: "BIGINT", float: "DOUBLE", bool: "BOOLEAN"}
_GLUE_TYPES = {str: "string", int: "bigint", float: "double", bool: "boolean"}


class QueryError(ValueError):
    """A query refused (not a single SELECT) or failed in DuckDB: a readable message, nothing changed."""


# ------------------------------------------------------------------------------------------------- columns
def _column_type(model: type[BaseModel], name: str, engine: dict[type, str], timestamp: str, array: str) -> str:
    if name in TIMESTAMP_COLUMNS:
        return timestamp
    annotation = typing.get_type_hints(model)[name]
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        return array.format(engine[item])
    if isinstance(annotation, types.UnionType):
        raise TypeError(f"{model.__name__}.{name}: optional columns are not supported")
    return engine[annotation]


def duckdb_columns(table: str) -> dict[str, str]:
    model = TABLES[table]
    return {n: _column_type(model, n, _DUCKDB_TYPES, "TIMESTAMP", "{}[]") for n in model.model_fields}


def glue_columns(table: str) -> list[dict[str, str]]:
    """The table's columns as `AWS::Glue::Table` `Columns` (what the template must declare)."""
    model = TABLES[table]
    return [
        {"Name": n, "Type": _column_type(model, n, _GLUE_TYPES, "timestamp", "array<{}>")} for n in model.model_fields
    ]


# ---------------------------------------------------------------------------------------------- filesystem
@dataclass(frozen=True)
class Member:
    key: str
    etag: str
    size: int


@dataclass
class Stats:
    bytes_read: int = 0
    objects_fetched: int = 0
    partitions_opened: int = 0
    listed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


class _CountingFile(io.FileIO):
    def __init__(self, path: Path, stats: Stats) -> None:
        super().__init__(path, "rb")
        self._stats = stats

    def readinto(self, buffer: Any) -> int | None:  # type: ignore[override]
        n = super().readinto(buffer)
        self._stats.add(bytes_read=n or 0)
        return n

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        data = super().read(size)
        self._stats.add(bytes_read=len(data or b""))
        return data


class LakeFS(AbstractFileSystem):
    """`cliplake://<table>/source=<s>/campaign=<c>/data.json`: one file per partition of a lake table."""

    protocol = PROTOCOL
    cachable = False

    def __init__(self, client: Any, bucket: str, cache_dir: Path, disk_root: Path | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client, self.bucket = client, bucket
        self.disk_root = disk_root  # the bucket's objects as files (the local cloud's data directory), if any
        self.cache_dir = Path(cache_dir) / bucket
        self.stats = Stats()
        self.binding = False
        self._listing: dict[str, dict[str, list[Member]]] = {}
        self._lock = threading.Lock()

    @classmethod
    def _strip_protocol(cls, path: str) -> str:  # type: ignore[override]
        return str(path).removeprefix(f"{PROTOCOL}://").strip("/")

    # -- listing
    def refresh(self) -> None:
        """Forget the listing: the next query lists the lake again."""
        with self._lock:
            self._listing = {}

    def partitions(self, table: str) -> dict[str, list[Member]]:
        with self._lock:
            if table not in self._listing:
                self._listing[table] = self._list(table)
            return self._listing[table]

    def _list(self, table: str) -> dict[str, list[Member]]:
        prefix = f"{TABLES_PREFIX}{table}/"
        parts: dict[str, list[Member]] = {}
        for member in self._objects(prefix):
            rel = member.key[len(prefix) :].split("/")
            if len(rel) != len(PARTITIONS) + 1 or not rel[-1].endswith(".json"):
                continue  # not a table object (a stray file): never read
            if not all(p.startswith(f"{name}=") for p, name in zip(rel, PARTITIONS, strict=False)):
                continue
            parts.setdefault(f"{table}/{'/'.join(rel[:-1])}", []).append(member)
            self.stats.add(listed=1)
        for members in parts.values():
            members.sort(key=lambda m: m.key)
        return parts

    def _objects(self, prefix: str) -> Iterator[Member]:
        """The objects under `prefix`: the files of the lake on disk, else S3's listing."""
        if self.disk_root is None:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield Member(obj["Key"], obj["ETag"].strip('"'), obj["Size"])
            return
        for directory, _, files in os.walk(self.disk_root / prefix):
            rel = Path(directory).relative_to(self.disk_root).as_posix()
            for name in files:
                try:
                    st = os.stat(os.path.join(directory, name))
                except FileNotFoundError:
                    continue  # deleted meanwhile
                # a new version is a new file linked in its place: inode and mtime change with it
                yield Member(f"{rel}/{name}", f"{st.st_ino}-{st.st_mtime_ns}-{st.st_size}", st.st_size)

    # -- what DuckDB calls
    def glob(self, path: str, **kwargs: Any) -> list[str]:  # type: ignore[override]
        table = self._strip_protocol(path).split("/", 1)[0]
        if self.binding:  # creating the views: their schema is given, the listing waits for a query
            return [f"{PROTOCOL}://{self._empty_partition(table)}/{PART_FILE}"]
        parts = sorted(self.partitions(table)) or [self._empty_partition(table)]
        return [f"{PROTOCOL}://{part}/{PART_FILE}" for part in parts]

    def _empty_partition(self, table: str) -> str:
        """A table without objects yet reads as one empty file (DuckDB refuses a pattern that matches nothing)."""
        part = f"{table}/" + "/".join(f"{name}={EMPTY}" for name in PARTITIONS)
        with self._lock:
            if not self.binding:
                self._listing.setdefault(table, {})[part] = []
        return part

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        local = self._assemble(self._strip_protocol(path))
        return {"name": self._strip_protocol(path), "size": local.stat().st_size, "type": "file"}

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:  # type: ignore[override]
        files = self.glob(path)
        return [self.info(f) for f in files] if detail else files

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if "r" not in mode:
            raise PermissionError("the lake's tables are read-only here")
        self.stats.add(partitions_opened=1)
        return _CountingFile(self._assemble(self._strip_protocol(path)), self.stats)

    # -- partitions as local files
    def _assemble(self, path: str) -> Path:
        part = path.removesuffix(f"/{PART_FILE}")
        table = part.split("/", 1)[0]
        members = [] if part.endswith(f"={EMPTY}") else self.partitions(table).get(part)
        if members is None:
            raise FileNotFoundError(path)
        signature = hashlib.sha256("".join(f"{m.key} {m.etag}\n" for m in members).encode()).hexdigest()[:24]
        target = self.cache_dir / "partitions" / part / f"{signature}.json"
        if target.is_file():
            return target
        bodies = self._bodies(members)
        target.parent.mkdir(parents=True, exist_ok=True)
        for old in target.parent.glob("*.json"):
            old.unlink(missing_ok=True)
        tmp = target.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
        with tmp.open("wb") as out:
            for body in bodies:
                try:
                    data = body.read_bytes()  # a table object holds one video's rows: small
                except FileNotFoundError:
                    continue  # deleted since the listing (on disk)
                out.write(data if not data or data.endswith(b"\n") else data + b"\n")
        tmp.replace(target)
        return target

    def _bodies(self, members: list[Member]) -> list[Path]:
        """Each member's body in the cache (content-addressed by key and ETag), fetching the missing ones; on disk,
        the lake's own files."""
        if self.disk_root is not None:
            return [self.disk_root / m.key for m in members]
        paths = [self.cache_dir / "objects" / hashlib.sha256(f"{m.key} {m.etag}".encode()).hexdigest() for m in members]
        missing = [(m, p) for m, p in zip(members, paths, strict=True) if not p.is_file()]

        def fetch(item: tuple[Member, Path]) -> None:
            member, path = item
            body = self.client.get_object(Bucket=self.bucket, Key=member.key)["Body"].read()
            if body and not body.endswith(b"\n"):
                body += b"\n"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{threading.get_ident()}")
            tmp.write_bytes(body)
            tmp.replace(path)

        if missing:
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(fetch, missing))
            self.stats.add(objects_fetched=len(missing))
        return paths


# ------------------------------------------------------------------------------------------------- queries
@dataclass
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    stats: Stats


def local_lake_root(bucket: str) -> Path | None:
    """`<data>/s3/<bucket>` when this shell is pointed at a local cloud that keeps its lake on disk: its data
    directory (`CLIPLAKE_DATA_DIR`, exported by the local cloud) says it serves the current `AWS_ENDPOINT_URL`."""
    data = os.environ.get("CLIPLAKE_DATA_DIR")
    if not data:
        return None
    root = Path(data).expanduser() / "s3" / bucket
    try:
        served = json.loads((Path(data).expanduser() / "cloud.json").read_text()).get("env", {})
    except (OSError, ValueError):
        return None
    same_cloud = served.get("AWS_ENDPOINT_URL") == os.environ.get("AWS_ENDPOINT_URL")
    return root if same_cloud and root.is_dir() else None


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cliplake" / "tables"


def _httpfs_extension() -> Path:
    import duckdb_ext  # type: ignore[import-not-found]  # the namespace package of duckdb-ext-* wheels

    for root in getattr(duckdb_ext, "__path__", []):
        found = sorted(Path(root).glob(f"extensions/v{duckdb.__version__}/*/httpfs.duckdb_extension"))
        if found:
            return found[0]
    raise QueryError(f"no httpfs extension for DuckDB {duckdb.__version__} (pip install duckdb-ext-httpfs)")


class LakeSQL:
    """A DuckDB connection with the lake's tables as views."""

    def __init__(
        self,
        bucket: str,
        client: Any | None = None,
        cache_dir: Path | None = None,
        *,
        direct: bool = False,
        endpoint_url: str | None = None,
        disk_root: Path | bool | None = True,
    ) -> None:
        """`disk_root`: the bucket's objects as files; True finds them with `local_lake_root`, None uses S3."""
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,62}", bucket or ""):
            raise QueryError(f"not an S3 bucket name: {bucket!r}")
        self.bucket = bucket
        if disk_root is True:
            disk_root = None if direct else local_lake_root(bucket)
        if client is None and (direct or not disk_root):
            from cliplake.adapters.s3 import s3_client

            client = s3_client()
        self.client = client
        self.fs = LakeFS(self.client, bucket, cache_dir or default_cache_dir(), disk_root or None)
        self.con = duckdb.connect(config={"threads": 2})
        if direct:
            import boto3

            self._httpfs(boto3.session.Session(), endpoint_url or os.environ.get("AWS_ENDPOINT_URL", ""))
            location = f"s3://{bucket}/{TABLES_PREFIX}{{table}}/*/*/*.json"
        else:
            self.con.register_filesystem(self.fs)
            location = f"{PROTOCOL}://{{table}}/*/*/*.json"
            self.fs.binding = True
        for table in TABLES:
            columns = ", ".join(f"'{n}': '{t}'" for n, t in duckdb_columns(table).items())
            view = (  # our table names; the bucket name is checked above
                f"CREATE VIEW {table} AS SELECT * FROM read_json('{location.format(table=table)}', "  # noqa: S608
                f"format = 'newline_delimited', hive_partitioning = true, hive_types_autocast = false, "
                f"timestampformat = '%Y-%m-%d %H:%M:%S', columns = {{{columns}}})"
            )
            self.con.execute(view)
        self.fs.binding = False
        self.con.execute("SET TimeZone = 'UTC'")  # current_date and timestamps in UTC, as in Athena
        # Read-only from here on: no local files, no network but the registered lake, no configuration changes.
        prefix = f"s3://{bucket}/{TABLES_PREFIX}" if direct else f"{PROTOCOL}://"
        # a literal, not a bound list: binding a Python list makes DuckDB import pandas (0.4 s of every command)
        self.con.execute(f"SET allowed_directories = ['{prefix}']")  # our prefix; the bucket name is checked above
        self.con.execute("SET enable_external_access = false")
        self.con.execute("SET lock_configuration = true")

    def _httpfs(self, session: Any, endpoint_url: str) -> None:
        self.con.execute(f"LOAD '{_httpfs_extension()}'")
        creds = session.get_credentials().get_frozen_credentials()
        settings = {
            "s3_region": session.region_name or "us-east-1",
            "s3_access_key_id": creds.access_key,
            "s3_secret_access_key": creds.secret_key,
            "s3_session_token": creds.token or "",
        }
        if endpoint_url:
            url = urlparse(endpoint_url)
            settings |= {"s3_endpoint": url.netloc, "s3_use_ssl": url.scheme == "https", "s3_url_style": "path"}
        for name, value in settings.items():
            self.con.execute(f"SET {name} = ?", [value])

    def query(self, sql: str, *, relist: bool = True) -> Result:
        """Run one SELECT. `relist=False` keeps the previous query's listing (the benchmark times DuckDB alone)."""
        statements = duckdb.extract_statements(sql)
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise QueryError("only one SELECT statement (WITH … SELECT included) is allowed")
        if relist:
            self.fs.refresh()
        self.fs.stats = Stats()
        try:
            cursor = self.con.execute(sql)
            columns = [d[0] for d in cursor.description or []]
            rows = cursor.fetchall()
        except duckdb.Error as err:
            raise QueryError(str(err).splitlines()[0]) from err
        return Result(columns, rows, self.fs.stats)

    def close(self) -> None:
        self.con.close()


# ------------------------------------------------------------------------------------------------- output
def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def as_records(result: Result) -> list[dict[str, Any]]:
    return [dict(zip(result.columns, map(_plain, row), strict=True)) for row in result.rows]


def render_json(result: Result) -> str:
    return json.dumps(as_records(result), ensure_ascii=False, indent=1)


def render_csv(result: Result) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow(["" if v is None else json.dumps(v) if isinstance(v, list) else v for v in map(_plain, row)])
    return buf.getvalue()


def render_table(result: Result, max_width: int = 48) -> str:
    def cell(v: Any) -> str:
        text = "NULL" if v is None else json.dumps(v, ensure_ascii=False) if isinstance(v, list) else str(v)
        return text if len(text) <= max_width else text[: max_width - 1] + "…"

    cells = [[cell(_plain(v)) for v in row] for row in result.rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(result.columns)]
    line = "+".join("-" * (w + 2) for w in widths)
    out = [" | ".join(c.ljust(w) for c, w in zip(result.columns, widths, strict=True)), line]
    out += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    out.append(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")
    return "\n".join(out)
