"""The catalog: one DynamoDB table, derived from the lake (delete it, re-index the lake, and it is rebuilt).

Items (single-table design):
    pk=VIDEO#<id>    sk=META                 one video: status, attribution, metadata, jobs, top labels
    pk=JOB#<jobid>   sk=META                 Rekognition job → video (for completions without a JobTag)
    pk=LABEL#<name>  sk=<conf 000.00>#<id>   label search: query a label above a confidence, best first
    pk=TEXT#<word>   sk=<id>                 text search: the videos whose on-screen text has the word
    pk=STATS         sk=SOURCE#<source>      counters: raw, processed, failed (each video counted once)
    pk=VIDEO#<id>    sk=TASK                 the batch item of a video: task token, batch id, ingest/completion times
    pk=BATCH#<name>  sk=META                 one batch (execution name): plan, status, summary
    pk=SOURCEID#<source>#<id>  sk=META       a source's video already ingested (planning de-duplicates)
    pk=HASH#<sha1>   sk=META                 content already ingested (planning de-duplicates)
    pk=LIMITS        sk=REKOGNITION_JOBS     Rekognition jobs in flight (back-pressure), held per video in job_slots
Indexes: gsi1 (CAMPAIGN#<campaign>, <created>#<id>; BATCHES, <started>#<batch>) and gsi2 (SOURCE#<source>,
<created>#<id>) list videos and batches newest first without scans.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from cliplake.contracts import Attribution, JobKind, TextLine, VideoStatus, VideoSummary, text_words

_ser, _de = TypeSerializer(), TypeDeserializer()
TERMINAL_JOB = {"SUCCEEDED", "FAILED", "ERROR"}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def to_ddb(value: Any) -> dict[str, Any]:
    """A plain value (floats included) as a DynamoDB attribute value."""
    return _ser.serialize(json.loads(json.dumps(value, default=str), parse_float=Decimal))


def from_ddb(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain Python values (numbers back to int or float)."""

    def plain(v: Any) -> Any:
        if isinstance(v, Decimal):
            return int(v) if v == v.to_integral_value() else float(v)
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, list | set):
            return [plain(x) for x in v]
        return v

    return {k: plain(_de.deserialize(v)) for k, v in item.items()}


def _conditional_failed(err: ClientError) -> bool:
    code = err.response.get("Error", {}).get("Code")
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = err.response.get("CancellationReasons", [])
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons) or not reasons
    return False


def video_key(video_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"VIDEO#{video_id}"}, "sk": {"S": "META"}}


LIMITS_KEY = {"pk": {"S": "LIMITS"}, "sk": {"S": "REKOGNITION_JOBS"}}


def stats_key(source: str) -> dict[str, Any]:
    return {"pk": {"S": "STATS"}, "sk": {"S": f"SOURCE#{source}"}}


def label_sk(confidence: float, video_id: str) -> str:
    return f"{min(confidence, 100.0):06.2f}#{video_id}"


def summary_text_words(summary: VideoSummary) -> list[str]:
    """Every searchable word of the video's on-screen text."""
    return sorted({w for line in summary.text for w in text_words(line.text)})


def summary_label_scores(summary: VideoSummary) -> dict[str, float]:
    """Each label's best confidence in the video, rounded as stored."""
    best: dict[str, float] = {}
    for seg in summary.labels:
        best[seg.name] = max(best.get(seg.name, 0.0), round(seg.max_confidence, 2))
    return best


class Catalog:
    def __init__(self, table: str, client: Any | None = None) -> None:
        self.table = table
        self.client = client or boto3.client("dynamodb")

    @staticmethod
    def _write(call: Callable[..., Any], **kwargs: Any) -> Any | None:
        """Run one conditional write (``put_item``, ``update_item``, ``transact_write_items``): its response,
        or None when its condition, or one of a transaction's conditions, does not hold."""
        try:
            return call(**kwargs)
        except ClientError as err:
            if _conditional_failed(err):
                return None
            raise

    def _count(self, source: str, counter: str) -> dict[str, Any]:
        """The transaction item adding one to a per-source counter (`raw`, `processed`, `failed`)."""
        return {
            "Update": {
                "TableName": self.table,
                "Key": stats_key(source),
                "UpdateExpression": "ADD #c :one",
                "ExpressionAttributeNames": {"#c": counter},
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        }

    # ------------------------------------------------------------------------------------------- writes
    def register_video(
        self,
        video_id: str,
        raw_key: str,
        etag: str,
        size: int,
        source: str,
        campaign: str,
        filename: str,
        attribution: Attribution,
        batch_id: str = "",
    ) -> bool:
        """Create the video record and count it as raw, once. Returns False if it was already known.

        A new version of the same key (another ETag) resets the record for a fresh analysis.
        """
        now = now_iso()
        item = {
            "pk": f"VIDEO#{video_id}",
            "sk": "META",
            "video_id": video_id,
            "status": VideoStatus.RECEIVED.value,
            "reason": "",
            "raw_key": raw_key,
            "raw_etag": etag,
            "bytes": size,
            "source": source,
            "campaign": campaign,
            "filename": filename,
            "attribution": attribution.model_dump(),
            "jobs": {},
            "created_at": now,
            "updated_at": now,
            "gsi1pk": f"CAMPAIGN#{campaign}",
            "gsi1sk": f"{now}#{video_id}",
            "gsi2pk": f"SOURCE#{source}",
            "gsi2sk": f"{now}#{video_id}",
        }
        if batch_id:
            item["batch_id"] = batch_id
        put = {
            "Put": {
                "TableName": self.table,
                "Item": {k: to_ddb(v) for k, v in item.items()},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        if self._write(self.client.transact_write_items, TransactItems=[put, self._count(source, "raw")]) is not None:
            return True
        # Known video: a new object version restarts its analysis; the same version changes nothing.
        self._write(
            self.client.update_item,
            TableName=self.table,
            Key=video_key(video_id),
            UpdateExpression="SET raw_etag = :etag, #b = :size, #s = :received, reason = :empty, "
            "jobs = :nojobs, updated_at = :now, attribution = :attr",
            ConditionExpression="raw_etag <> :etag",
            ExpressionAttributeNames={"#s": "status", "#b": "bytes"},
            ExpressionAttributeValues={
                ":etag": to_ddb(etag),
                ":size": to_ddb(size),
                ":received": to_ddb(VideoStatus.RECEIVED.value),
                ":empty": to_ddb(""),
                ":nojobs": {"M": {}},
                ":now": to_ddb(now),
                ":attr": to_ddb(attribution.model_dump()),
            },
        )
        return False

    def set_status(self, video_id: str, status: VideoStatus, unless: VideoStatus | None = None, **fields: Any) -> bool:
        """Set the status (and fields); with `unless`, leave a video already in that status alone."""
        names = {"#s": "status"}
        values = {":s": to_ddb(status.value), ":now": to_ddb(now_iso())}
        sets = ["#s = :s", "updated_at = :now"]
        for i, (name, value) in enumerate(fields.items()):
            names[f"#f{i}"] = name
            values[f":f{i}"] = to_ddb(value)
            sets.append(f"#f{i} = :f{i}")
        condition = {}
        if unless is not None:
            values[":unless"] = to_ddb(unless.value)
            condition = {"ConditionExpression": "#s <> :unless"}
        done = self._write(
            self.client.update_item,
            TableName=self.table,
            Key=video_key(video_id),
            UpdateExpression="SET " + ", ".join(sets),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            **condition,
        )
        return done is not None

    def mark_failed(self, video_id: str, source: str, reason: str) -> bool:
        """FAILED with a readable reason; counted once per video. Returns False if it had already failed."""
        now = now_iso()
        update = {
            "Update": {
                "TableName": self.table,
                "Key": video_key(video_id),
                "UpdateExpression": "SET #s = :failed, reason = :reason, updated_at = :now, failed_at = :now",
                "ConditionExpression": "attribute_not_exists(#s) OR #s <> :failed",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {
                    ":failed": to_ddb(VideoStatus.FAILED.value),
                    ":reason": to_ddb(reason[:1000]),
                    ":now": to_ddb(now),
                },
            }
        }
        done = self._write(self.client.transact_write_items, TransactItems=[update, self._count(source, "failed")])
        return done is not None

    def record_jobs(self, video_id: str, job_ids: dict[JobKind, str], started_at: str) -> None:
        """Remember the started jobs in one transaction; never overwrites what a completion already wrote."""
        names = {f"#k{i}": kind.value for i, kind in enumerate(job_ids)}
        values = {
            f":j{i}": to_ddb({"job_id": job_id, "status": "IN_PROGRESS", "message": ""})
            for i, job_id in enumerate(job_ids.values())
        }
        sets = [f"jobs.#k{i} = if_not_exists(jobs.#k{i}, :j{i})" for i in range(len(job_ids))]
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": video_key(video_id),
                    "UpdateExpression": "SET " + ", ".join([*sets, "jobs_started_at = :now", "updated_at = :now"]),
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": {**values, ":now": to_ddb(started_at)},
                }
            }
        ]
        for kind, job_id in job_ids.items():
            job_item = {"pk": f"JOB#{job_id}", "sk": "META", "video_id": video_id, "kind": kind.value}
            items.append({"Put": {"TableName": self.table, "Item": {k: to_ddb(v) for k, v in job_item.items()}}})
        self.client.transact_write_items(TransactItems=items)

    def complete_job(self, video_id: str, kind: JobKind, job_id: str, status: str, message: str) -> dict:
        """Record a job's terminal status and return the video's jobs after the update (atomically)."""
        job = {"job_id": job_id, "status": status, "message": message[:1000]}
        r = self.client.update_item(
            TableName=self.table,
            Key=video_key(video_id),
            UpdateExpression="SET jobs.#k = :job, updated_at = :now",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#k": kind.value},
            ExpressionAttributeValues={":job": to_ddb(job), ":now": to_ddb(now_iso())},
            ReturnValues="ALL_NEW",
        )
        return from_ddb(r["Attributes"]).get("jobs", {})

    def index_summary(self, summary: VideoSummary, summary_key: str, summary_etag: str) -> bool:
        """Write what label search and the dashboard need. Re-indexing the same summary changes nothing.

        Returns True when the catalog changed.
        """
        vid = summary.video_id
        top = [t.model_dump() for t in summary.top_labels]
        fields = {
            "status": VideoStatus.INDEXED.value,
            "reason": "",
            "summary_key": summary_key,
            "summary_etag": summary_etag,
            "duration_ms": summary.video.duration_ms,
            "width": summary.video.width,
            "height": summary.video.height,
            "codec": summary.video.codec,
            "frame_rate": summary.video.frame_rate,
            "top_labels": top,
            "label_scores": summary_label_scores(summary),
            "shots": len(summary.shots),
            "moderation": sorted({m.name for m in summary.moderation}),
            "credit_line": summary.credit_line,
            "attribution": summary.attribution.model_dump(),
            "analysed_key": summary.provenance.analysed_key,
            "text_words": summary_text_words(summary),
            "text_lines": len(summary.text),
        }
        now = now_iso()
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        values = {f":f{i}": to_ddb(v) for i, v in enumerate(fields.values())}
        values[":now"] = to_ddb(now)
        sets = ", ".join(f"#f{i} = :f{i}" for i in range(len(fields)))
        update = {
            "TableName": self.table,
            "Key": video_key(vid),
            "UpdateExpression": f"SET {sets}, updated_at = :now, indexed_at = :now",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        previous = self.get_video(vid) or {}
        first = [  # first index of this video: count it as processed, once
            {"Update": {**update, "ConditionExpression": "attribute_not_exists(indexed_at)"}},
            self._count(summary.source, "processed"),
        ]
        if self._write(self.client.transact_write_items, TransactItems=first) is None:
            names["#se"] = "summary_etag"  # already indexed: only a different summary changes anything
            values[":etag"] = to_ddb(summary_etag)
            if self._write(self.client.update_item, **update, ConditionExpression="#se <> :etag") is None:
                return False
        self._write_labels(summary, previous.get("label_scores", {}))
        self._write_words(summary, previous.get("text_words", []))
        return True

    def _write_words(self, summary: VideoSummary, previous: list[str]) -> None:
        vid = summary.video_id
        first: dict[str, TextLine] = {}
        for line in summary.text:  # sorted by start: the first line a word appears in
            for word in text_words(line.text):
                first.setdefault(word, line)
        requests: list[dict[str, Any]] = [
            {"DeleteRequest": {"Key": {"pk": {"S": f"TEXT#{w}"}, "sk": {"S": vid}}}} for w in previous if w not in first
        ]
        for word, line in first.items():
            item = {
                "pk": f"TEXT#{word}",
                "sk": vid,
                "video_id": vid,
                "word": word,
                "line": line.text,
                "start_ms": line.start_ms,
                "confidence": line.confidence,
                "campaign": summary.campaign,
                "source": summary.source,
                "filename": summary.filename,
            }
            requests.append({"PutRequest": {"Item": {k: to_ddb(v) for k, v in item.items()}}})
        self._batch_write(requests)

    def _write_labels(self, summary: VideoSummary, previous: dict[str, float]) -> None:
        vid = summary.video_id
        best = summary_label_scores(summary)
        total: dict[str, int] = {}
        for seg in summary.labels:
            total[seg.name] = total.get(seg.name, 0) + (seg.end_ms - seg.start_ms)
        # Stale items: labels no longer in the summary, or whose confidence (part of the key) moved.
        requests: list[dict[str, Any]] = [
            {"DeleteRequest": {"Key": {"pk": {"S": f"LABEL#{name.lower()}"}, "sk": {"S": label_sk(conf, vid)}}}}
            for name, conf in previous.items()
            if label_sk(best.get(name, -1.0), vid) != label_sk(conf, vid)
        ]
        for name, conf in best.items():
            item = {
                "pk": f"LABEL#{name.lower()}",
                "sk": label_sk(conf, vid),
                "video_id": vid,
                "name": name,
                "confidence": conf,
                "total_ms": total[name],
                "campaign": summary.campaign,
                "source": summary.source,
                "filename": summary.filename,
            }
            requests.append({"PutRequest": {"Item": {k: to_ddb(v) for k, v in item.items()}}})
        self._batch_write(requests)

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        """`BatchWriteItem` in chunks of 25 (its limit), retrying what DynamoDB leaves unprocessed."""
        for i in range(0, len(requests), 25):
            pending: dict[str, Any] = {self.table: requests[i : i + 25]}
            while pending:
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems", {})

    # ------------------------------------------------------------------------------------ batch items
    def put_task(self, video_id: str, token: str, batch_id: str, **fields: Any) -> None:
        """Store the task token of a video's batch item (before its object reaches the lake). A redelivered
        item message writes the same token again; an item already completed keeps its completion."""
        item = {"pk": f"VIDEO#{video_id}", "sk": "TASK", "video_id": video_id, "task_token": token,
                "batch_id": batch_id, "ingest_started_at": now_iso(), **fields}  # fmt: skip
        self._write(
            self.client.put_item,
            TableName=self.table,
            Item={k: to_ddb(v) for k, v in item.items()},
            ConditionExpression="attribute_not_exists(completed_at) OR task_token <> :t",
            ExpressionAttributeValues={":t": to_ddb(token)},
        )

    def get_task(self, video_id: str) -> dict[str, Any] | None:
        r = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": f"VIDEO#{video_id}"}, "sk": {"S": "TASK"}}, ConsistentRead=True
        )
        return from_ddb(r["Item"]) if "Item" in r else None

    def finish_task(self, video_id: str, outcome: str, reason: str = "") -> dict[str, Any] | None:
        """Mark a video's batch item completed, once: returns the item the first time, None afterwards (or
        when the video belongs to no batch)."""
        r = self._write(
            self.client.update_item,
            TableName=self.table,
            Key={"pk": {"S": f"VIDEO#{video_id}"}, "sk": {"S": "TASK"}},
            UpdateExpression="SET completed_at = :now, outcome = :o, reason = :r",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(completed_at)",
            ExpressionAttributeValues={
                ":now": to_ddb(now_iso()),
                ":o": to_ddb(outcome),
                ":r": to_ddb(reason[:1000]),
            },
            ReturnValues="ALL_NEW",
        )
        return None if r is None else from_ddb(r["Attributes"])

    def reopen_task(self, video_id: str) -> None:
        """Undo `finish_task` when the token could not be sent, so a retry completes it."""
        self.client.update_item(
            TableName=self.table,
            Key={"pk": {"S": f"VIDEO#{video_id}"}, "sk": {"S": "TASK"}},
            UpdateExpression="REMOVE completed_at, outcome",
        )

    def mark_ingested(self, source: str, source_id: str, sha1: str, video_id: str) -> None:
        """Remember a source's video and its content hash, so later batches do not plan them again."""
        keys = [f"SOURCEID#{source}#{source_id}"] + ([f"HASH#{sha1.lower()}"] if sha1 else [])
        for pk in keys:
            item = {"pk": pk, "sk": "META", "video_id": video_id, "source": source, "source_id": source_id}
            self.client.put_item(TableName=self.table, Item={k: to_ddb(v) for k, v in item.items()})

    def _exists(self, pk: str) -> bool:
        r = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": pk}, "sk": {"S": "META"}}, ProjectionExpression="pk"
        )
        return "Item" in r

    def seen(self, source: str, source_id: str) -> bool:
        return self._exists(f"SOURCEID#{source}#{source_id}")

    def source_video(self, source: str, source_id: str) -> str | None:
        """The video a source's id was ingested as (`mark_ingested`), if any."""
        r = self.client.get_item(
            TableName=self.table,
            Key={"pk": {"S": f"SOURCEID#{source}#{source_id}"}, "sk": {"S": "META"}},
            ProjectionExpression="video_id",
        )
        return r.get("Item", {}).get("video_id", {}).get("S")

    def seen_hash(self, sha1: str) -> bool:
        return bool(sha1) and self._exists(f"HASH#{sha1.lower()}")

    # ---------------------------------------------------------------------------------------- batches
    def put_batch(self, record: dict[str, Any]) -> None:
        """Create or replace a batch record (`batch_id` = the execution name, `started_at` required)."""
        bid = record["batch_id"]
        item = {
            **record,
            "pk": f"BATCH#{bid}",
            "sk": "META",
            "gsi1pk": "BATCHES",
            "gsi1sk": f"{record['started_at']}#{bid}",
        }
        self.client.put_item(TableName=self.table, Item={k: to_ddb(v) for k, v in item.items()})

    def update_batch(self, batch_id: str, **fields: Any) -> None:
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        values = {f":f{i}": to_ddb(v) for i, v in enumerate(fields.values())}
        self.client.update_item(
            TableName=self.table,
            Key={"pk": {"S": f"BATCH#{batch_id}"}, "sk": {"S": "META"}},
            UpdateExpression="SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def get_batch(self, batch_id: str) -> dict[str, Any] | None:
        r = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": f"BATCH#{batch_id}"}, "sk": {"S": "META"}}, ConsistentRead=True
        )
        return from_ddb(r["Item"]) if "Item" in r else None

    def list_batches(self, limit: int = 25) -> list[dict[str, Any]]:
        """Batches, newest first (gsi1 BATCHES; no scan)."""
        r = self.client.query(
            TableName=self.table,
            IndexName="gsi1",
            KeyConditionExpression="gsi1pk = :p",
            ExpressionAttributeValues={":p": {"S": "BATCHES"}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [from_ddb(i) for i in r.get("Items", [])]

    # ------------------------------------------------------------------------------------ back-pressure
    def acquire_job_slots(self, video_id: str, jobs: int, bound: int) -> bool:
        """Reserve `jobs` of the `bound` Rekognition jobs in flight for a video, once (a video already holding
        its slots gets True again). False when full: the caller backs off."""
        items = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": video_key(video_id),
                    "UpdateExpression": "SET job_slots = :n",
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(job_slots)",
                    "ExpressionAttributeValues": {":n": to_ddb(jobs)},
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": LIMITS_KEY,
                    "UpdateExpression": "ADD in_flight :n",
                    "ConditionExpression": "attribute_not_exists(in_flight) OR in_flight <= :room",
                    "ExpressionAttributeValues": {":n": to_ddb(jobs), ":room": to_ddb(bound - jobs)},
                }
            },
        ]
        if self._write(self.client.transact_write_items, TransactItems=items) is not None:
            return True
        return "job_slots" in (self.get_video(video_id) or {})

    def release_job_slots(self, video_id: str) -> bool:
        """Give back a video's slots, once (False when it holds none)."""
        held = (self.get_video(video_id) or {}).get("job_slots")
        if not held:
            return False
        items = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": video_key(video_id),
                    "UpdateExpression": "REMOVE job_slots",
                    "ConditionExpression": "job_slots = :n",
                    "ExpressionAttributeValues": {":n": to_ddb(held)},
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": LIMITS_KEY,
                    "UpdateExpression": "ADD in_flight :minus",
                    "ExpressionAttributeValues": {":minus": to_ddb(-held)},
                }
            },
        ]
        return self._write(self.client.transact_write_items, TransactItems=items) is not None

    def jobs_in_flight(self) -> int:
        r = self.client.get_item(TableName=self.table, Key=LIMITS_KEY, ConsistentRead=True)
        return int(from_ddb(r["Item"]).get("in_flight", 0)) if "Item" in r else 0

    # -------------------------------------------------------------------------------------------- reads
    def get_video(self, video_id: str) -> dict[str, Any] | None:
        r = self.client.get_item(TableName=self.table, Key=video_key(video_id), ConsistentRead=True)
        return from_ddb(r["Item"]) if "Item" in r else None

    def video_for_job(self, job_id: str) -> str | None:
        r = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "META"}}, ConsistentRead=True
        )
        return r["Item"]["video_id"]["S"] if "Item" in r else None

    def videos_by_label(self, name: str, min_confidence: float = 0.0, limit: int = 50) -> list[dict[str, Any]]:
        r = self.client.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND sk >= :low",
            ExpressionAttributeValues={
                ":pk": {"S": f"LABEL#{name.lower()}"},
                ":low": {"S": f"{min_confidence:06.2f}"},
            },
            ScanIndexForward=False,
            Limit=limit,
        )
        return [from_ddb(i) for i in r.get("Items", [])]

    def videos_by_text(self, word: str, limit: int = 50) -> list[dict[str, Any]]:
        """The videos whose on-screen text has ``word`` (any case; its first letters-and-digits word)."""
        words = text_words(word)
        if not words:
            return []
        r = self.client.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"TEXT#{words[0]}"}},
            Limit=limit,
        )
        return [from_ddb(i) for i in r.get("Items", [])]

    def list_videos(
        self, *, campaign: str | None = None, source: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Newest first, by campaign or by source (both read an index; no scans)."""
        if campaign:
            index, pk, value = "gsi1", "gsi1pk", f"CAMPAIGN#{campaign}"
        else:
            index, pk, value = "gsi2", "gsi2pk", f"SOURCE#{source or 'dropin'}"
        r = self.client.query(
            TableName=self.table,
            IndexName=index,
            KeyConditionExpression=f"{pk} = :v",
            ExpressionAttributeValues={":v": {"S": value}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [from_ddb(i) for i in r.get("Items", [])]

    def stats(self) -> dict[str, dict[str, int]]:
        r = self.client.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "STATS"}},
        )
        out = {}
        for item in map(from_ddb, r.get("Items", [])):
            out[item["sk"].removeprefix("SOURCE#")] = {k: int(item.get(k, 0)) for k in ("raw", "processed", "failed")}
        return out
