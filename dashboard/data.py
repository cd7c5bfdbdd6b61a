"""Every AWS read and write of the dashboard; the pages import this module, never boto3.

The catalog is read through its keys and indexes only (GetItem, BatchGetItem, Query with a Limit), never a
Scan, so a page costs the same with ten videos or ten thousand. Every botocore failure becomes a `DataError`
whose text can be shown as is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from cliplake.adapters.catalog import (
    BATCHES_INDEX,
    Catalog,
    campaign_index,
    from_ddb,
    label_floor,
    label_pk,
    source_index,
    text_pk,
    video_key,
)
from cliplake.adapters.s3 import S3_CONFIG, Lake
from cliplake.campaigns import CampaignNotFound, list_campaigns
from cliplake.contracts import text_words
from cliplake_cli.stack import (
    DEFAULT_STACK,
    BatchesNotDeployed,
    StackConfig,
    StackUnreadable,
    current_campaign,
    make_current,
    start_batch,
)
from cliplake_cli.stack import load_config as stack_config

SOURCES = ("wikimedia", "pixabay", "dropin", "samples")
MAX_PAGES = 20  # filtered queries stop after this many reads and hand back a cursor
_BOTO = BotoConfig(connect_timeout=3, read_timeout=20, retries={"max_attempts": 2, "mode": "standard"})

T = TypeVar("T")


class DataError(Exception):
    """A failure worth showing to the user as is (no traceback)."""


class NotDeployed(DataError):
    """The stack has no such resource yet (e.g. the batch state machine)."""


def _readable(err: Exception) -> str:
    if isinstance(err, EndpointConnectionError):
        return f"The cloud is unreachable ({err.kwargs.get('endpoint_url', 'endpoint')}). Is `cliplake up` running?"
    if isinstance(err, NoCredentialsError):
        return "No AWS credentials found: export AWS_* variables (or what `cliplake up` prints)."
    if isinstance(err, ClientError):
        e = err.response.get("Error", {})
        return f"{err.operation_name} failed: {e.get('Code', 'Error')}: {e.get('Message', '')}".strip()
    return f"AWS error: {err}"


def guarded(fn: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except (BotoCoreError, ClientError) as err:
            raise DataError(_readable(err)) from err

    return wrapper


# ---------------------------------------------------------------------------------------------- config
Config = StackConfig  # the operator side's view of the stack (cliplake_cli.stack), shared with the CLI


def new_session() -> boto3.session.Session:
    return boto3.session.Session()


@guarded
def load_config(stack: str = DEFAULT_STACK, session: boto3.session.Session | None = None) -> Config:
    """CLIPLAKE_* settings first; what they leave empty comes from the stack's outputs."""
    try:
        return stack_config(stack, session or new_session(), client_config=_BOTO, read_stack=True)
    except StackUnreadable as err:
        raise DataError(f"Stack {stack!r} is not readable ({err.reason}).") from err


# ------------------------------------------------------------------------------------------------ pages
@dataclass
class Page:
    """One page of results and the cursor of the next (None: nothing more)."""

    items: list[dict[str, Any]]
    cursor: Any = None


@dataclass
class Backend:
    config: Config
    session: boto3.session.Session = field(default_factory=new_session)

    def __post_init__(self) -> None:
        self.ddb = self.session.client("dynamodb", config=_BOTO)
        self.s3 = self.session.client("s3", config=_BOTO.merge(S3_CONFIG))  # presigned player URLs: SigV4
        self.catalog = Catalog(self.config.table, self.ddb)
        self.lake = Lake(self.config.bucket, self.s3)
        self._sfn: Any = None
        self._ssm: Any = None

    @property
    def sfn(self) -> Any:
        self._sfn = self._sfn or self.session.client("stepfunctions", config=_BOTO)
        return self._sfn

    @property
    def ssm(self) -> Any:
        self._ssm = self._ssm or self.session.client("ssm", config=_BOTO)
        return self._ssm

    @property
    def batches_deployed(self) -> bool:
        return self.config.batches_deployed

    # ------------------------------------------------------------------------------------- catalog
    def _query(self, limit: int, cursor: Any = None, **kwargs: Any) -> Page:
        """Query until `limit` items passed the filter or MAX_PAGES reads; exact cursor for the next page."""
        items: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            args = {"TableName": self.config.table, "Limit": limit - len(items), **kwargs}
            if cursor:
                args["ExclusiveStartKey"] = cursor
            r = self.ddb.query(**args)
            items += [from_ddb(i) for i in r.get("Items", [])]
            cursor = r.get("LastEvaluatedKey")
            if not cursor or len(items) >= limit:
                break
        return Page(items, cursor)

    @guarded
    def batches(self, limit: int = 25, cursor: Any = None) -> Page:
        """Batch records, newest first (gsi1 BATCHES)."""
        return self._query(
            limit,
            cursor,
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :p",
            ExpressionAttributeValues={":p": {"S": BATCHES_INDEX}},
            ScanIndexForward=False,
        )

    @guarded
    def batch(self, batch_id: str) -> dict[str, Any] | None:
        """A batch record with its planned items (records of their own under the batch, read by pages)."""
        return self.catalog.get_batch(batch_id)

    @guarded
    def video(self, video_id: str) -> dict[str, Any] | None:
        return self.catalog.get_video(video_id)

    @guarded
    def videos(self, video_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Video records by id (BatchGetItem, 100 at a time); unknown ids are left out."""
        ids = list(dict.fromkeys(video_ids))
        found: dict[str, dict[str, Any]] = {}
        for i in range(0, len(ids), 100):
            keys = [video_key(v) for v in ids[i : i + 100]]
            pending: dict[str, Any] = {self.config.table: {"Keys": keys}}
            while pending:
                r = self.ddb.batch_get_item(RequestItems=pending)
                for item in r.get("Responses", {}).get(self.config.table, []):
                    rec = from_ddb(item)
                    found[rec["video_id"]] = rec
                pending = r.get("UnprocessedKeys") or {}
        return found

    @guarded
    def search(
        self,
        *,
        label: str = "",
        min_confidence: float = 0.0,
        campaign: str = "",
        source: str = "",
        limit: int = 25,
        cursor: Any = None,
        text: str = "",
    ) -> Page:
        """Videos by label (best first), else by a word of their on-screen text, else by campaign or source
        (newest first); other filters applied to what the key condition reads, never a scan."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        filters = []
        for attr, value in (("campaign", campaign), ("source", source)):
            if value:
                names[f"#{attr}"], values[f":{attr}"] = attr, {"S": value}
                filters.append(f"#{attr} = :{attr}")
        words = text_words(text) if text and not label else []
        if label:
            values |= {":pk": {"S": label_pk(label)}, ":low": {"S": label_floor(min_confidence)}}
            query = {"KeyConditionExpression": "pk = :pk AND sk >= :low"}
        elif words:
            values[":pk"] = {"S": text_pk(words[0])}
            query = {"KeyConditionExpression": "pk = :pk"}
        elif campaign:
            values[":pk"] = {"S": campaign_index(campaign)}
            query = {"IndexName": "gsi1", "KeyConditionExpression": "gsi1pk = :pk"}
            filters = [f for f in filters if "campaign" not in f]
            names.pop("#campaign")
            values.pop(":campaign")
        elif source:
            return self._by_source(source, limit, cursor)
        else:
            return self._newest_of_all_sources(limit, cursor or {})
        if filters:
            query |= {"FilterExpression": " AND ".join(filters), "ExpressionAttributeNames": names}
        return self._query(limit, cursor, ScanIndexForward=False, ExpressionAttributeValues=values, **query)

    def _by_source(self, source: str, limit: int, cursor: Any) -> Page:
        return self._query(
            limit,
            cursor,
            IndexName="gsi2",
            KeyConditionExpression="gsi2pk = :pk",
            ExpressionAttributeValues={":pk": {"S": source_index(source)}},
            ScanIndexForward=False,
        )

    def _newest_of_all_sources(self, limit: int, cursors: dict[str, Any]) -> Page:
        """Newest first across sources: one limited query per source, merged; the cursor is one per source
        (None once a source is exhausted)."""
        taken: list[dict[str, Any]] = []
        pages = {}
        for src in self.sources(with_videos=True):
            if src in cursors and cursors[src] is None:
                continue
            pages[src] = self._by_source(src, limit, cursors.get(src))
            taken += pages[src].items
        taken.sort(key=lambda v: v.get("gsi2sk", ""), reverse=True)
        taken = taken[:limit]
        next_cursors = dict(cursors)
        for src, page in pages.items():
            mine = [v for v in taken if v.get("source") == src]
            if len(mine) < len(page.items):  # resume after the last item shown
                last = mine[-1] if mine else None
                next_cursors[src] = _gsi2_key(last) if last else cursors.get(src)
            else:
                next_cursors[src] = page.cursor
        more = any(c is not None for c in next_cursors.values())
        return Page(taken, next_cursors if more else None)

    @guarded
    def stats(self) -> dict[str, dict[str, int]]:
        return self.catalog.stats()

    def sources(self, with_videos: bool = False) -> list[str]:
        """Known sources (from the counters, plus the usual ones unless `with_videos`)."""
        stats = self.stats()
        if with_videos:
            return sorted(s for s, c in stats.items() if c.get("raw"))
        return sorted(set(SOURCES) | set(stats))

    @guarded
    def recent_outcomes(self, source: str, limit: int = 500) -> list[dict[str, Any]]:
        """The newest `limit` videos of a source, only the fields the statistics need."""
        return self._query(
            limit,
            IndexName="gsi2",
            KeyConditionExpression="gsi2pk = :pk",
            ExpressionAttributeValues={":pk": {"S": source_index(source)}},
            ExpressionAttributeNames={"#s": "status", "#src": "source"},
            ProjectionExpression="video_id, #s, reason, created_at, indexed_at, failed_at, #src",
            ScanIndexForward=False,
        ).items

    # ---------------------------------------------------------------------------------------- lake
    @guarded
    def summary(self, key: str) -> dict[str, Any] | None:
        return self.lake.get_json(key)

    @guarded
    def url(self, key: str, expires_s: int = 3600) -> str:
        return self.lake.presigned_url(key, expires_s)

    @guarded
    def download(self, key: str, path: Path) -> Path:
        return self.lake.download(key, path)

    # ------------------------------------------------------------------------------------ campaigns
    @guarded
    def campaigns(self) -> list[str]:
        return list_campaigns(self.ssm, self.config.campaigns_path)

    @guarded
    def current_campaign(self) -> str:
        return current_campaign(self.ssm, self.config)

    # -------------------------------------------------------------------------------------- batches
    @guarded
    def start_batch(self, campaign: str, batch_size: int, max_concurrency: int = 5) -> dict[str, str]:
        """Make `campaign` current and start a batch of it; returns the execution's name and ARN."""
        try:
            self.config.require_state_machine()
            make_current(self.ssm, self.config, campaign)
            started = start_batch(self.config, campaign, batch_size, max_concurrency, "dashboard", self.sfn)
        except BatchesNotDeployed as err:
            raise NotDeployed(str(err)) from err
        except CampaignNotFound as err:
            raise DataError(str(err)) from err
        return started._asdict()

    @guarded
    def executions(self, limit: int = 50) -> list[dict[str, Any]]:
        """The state machine's executions, newest first ([] when it is not deployed)."""
        if not self.batches_deployed:
            return []
        r = self.sfn.list_executions(stateMachineArn=self.config.state_machine_arn, maxResults=limit)
        return sorted(r.get("executions", []), key=lambda e: e["startDate"], reverse=True)

    @guarded
    def execution(self, arn: str) -> dict[str, Any]:
        return self.sfn.describe_execution(executionArn=arn)

    @guarded
    def history(self, arn: str, max_events: int = 5000) -> list[dict[str, Any]]:
        """An execution's events in order (at most `max_events`)."""
        events: list[dict[str, Any]] = []
        args: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
        while len(events) < max_events:
            r = self.sfn.get_execution_history(**args)
            events += r.get("events", [])
            if not r.get("nextToken"):
                break
            args["nextToken"] = r["nextToken"]
        return events[:max_events]


def _gsi2_key(item: dict[str, Any]) -> dict[str, Any]:
    return {k: {"S": item[k]} for k in ("pk", "sk", "gsi2pk", "gsi2sk")}
