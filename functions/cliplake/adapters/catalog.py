"""The catalog: one DynamoDB table, derived from the lake (delete it, re-index the lake, and it is rebuilt).

This module alone knows the key schema. Items (single-table design), each a model of `cliplake.contracts`:
    pk=VIDEO#<id>    sk=META                 VideoRecord: status, attribution, metadata, jobs (JobState), top labels
    pk=JOB#<jobid>   sk=META                 JobRef: Rekognition job → video (for completions without a JobTag)
    pk=LABEL#<name>  sk=<conf 000.00>#<id>   LabelHit: label search, a label above a confidence, best first
    pk=TEXT#<word>   sk=<id>                 TextHit: text search, the videos whose on-screen text has the word
    pk=STATS         sk=SOURCE#<source>      SourceCounters: raw, processed, failed (each video counted once)
    pk=VIDEO#<id>    sk=TASK                 TaskRecord: the batch item of a video (task token, batch, times)
    pk=VIDEO#<id>    sk=TRANSCODE            a segmented transcode (`cliplake.adapters.transcodes`)
    pk=BATCH#<name>  sk=META                 BatchRecord: one batch (execution name): plan, status, summary
    pk=BATCH#<name>  sk=ITEM#<position>      BatchItemRef: one planned video of the batch, in plan order, and its
                                             outcome (a batch of 1,000 is 1,000 small items, not one over 400 KB)
    pk=SOURCEID#<source>#<id>  sk=META       IngestedRecord: a source's video already ingested (planning de-duplicates)
    pk=HASH#<sha1>   sk=META                 IngestedRecord: content already ingested (planning de-duplicates)
    pk=LIMITS        sk=REKOGNITION_JOBS     Rekognition jobs in flight (back-pressure), held per video in job_slots
Indexes: gsi1 (CAMPAIGN#<campaign>, <created>#<id>; BATCHES, <started>#<batch>) and gsi2 (SOURCE#<source>,
<created>#<id>) list videos and batches newest first without scans.

One store per entity (`Videos`, `Tasks`, `Batches`, `LabelIndex`, `TextIndex`, `Counters`, `JobSlots`, `Ingested`),
all over one `dynamo.Table`; `Catalog` holds them. The stages read and write models through the stores; the
`Catalog` methods returning plain dicts (`get_video`, `get_batch`, `list_videos`...) are the operator side's view.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import boto3
from pydantic import BaseModel

from cliplake.adapters.dynamo import Key, Page, Table, Update, from_ddb, item_values, key, now_iso, to_ddb
from cliplake.contracts import (
    Attribution,
    BatchItemRef,
    BatchRecord,
    IngestedRecord,
    JobKind,
    JobRef,
    JobState,
    JobStatus,
    LabelHit,
    SourceCounters,
    TaskRecord,
    TextHit,
    TextLine,
    VideoRecord,
    VideoStatus,
    VideoSummary,
    text_words,
)

R = TypeVar("R", bound=BaseModel)

__all__ = ["Catalog", "from_ddb", "now_iso", "to_ddb"]

MAX_REASON = 1000  # characters of a readable reason kept in the catalog

# ------------------------------------------------------------------------------------------------ the key schema
META = "META"
LIMITS_KEY = key("LIMITS", "REKOGNITION_JOBS")
BATCHES_INDEX = "BATCHES"  # gsi1pk of every batch record


def video_key(video_id: str) -> Key:
    return key(f"VIDEO#{video_id}", META)


def task_key(video_id: str) -> Key:
    return key(f"VIDEO#{video_id}", "TASK")


def _get_many(table: Table, ids: Sequence[str], key_of: Callable[[str], Key], model: type[R]) -> dict[str, R]:
    """The records of `ids` that exist (keyed by `key_of`), by id: BatchGetItem, 100 a call."""
    by_pk = {key_of(i)["pk"]["S"]: i for i in ids}
    return {by_pk[item["pk"]]: model.model_validate(item) for item in table.batch_get(map(key_of, by_pk.values()))}


def transcode_key(video_id: str) -> Key:
    return key(f"VIDEO#{video_id}", "TRANSCODE")


def job_key(job_id: str) -> Key:
    return key(f"JOB#{job_id}", META)


def batch_key(batch_id: str) -> Key:
    return key(f"BATCH#{batch_id}", META)


BATCH_ITEM = "ITEM#"  # sort key prefix of a batch's items


def batch_pk(batch_id: str) -> str:
    return f"BATCH#{batch_id}"


def batch_item_sk(position: int) -> str:
    return f"{BATCH_ITEM}{position:06d}"


def batch_item_key(batch_id: str, position: int) -> Key:
    return key(batch_pk(batch_id), batch_item_sk(position))


def stats_key(source: str) -> Key:
    return key("STATS", f"SOURCE#{source}")


def label_pk(name: str) -> str:
    return f"LABEL#{name.strip().lower()}"


def label_floor(min_confidence: float) -> str:
    """The lowest label sort key of a confidence: `sk >= label_floor(c)` reads the hits at or above it."""
    return f"{min_confidence:06.2f}"


def label_sk(confidence: float, video_id: str) -> str:
    return f"{label_floor(min(confidence, 100.0))}#{video_id}"


def text_pk(word: str) -> str:
    return f"TEXT#{word}"


def campaign_index(campaign: str) -> str:
    """gsi1pk of a campaign's videos."""
    return f"CAMPAIGN#{campaign}"


def source_index(source: str) -> str:
    """gsi2pk of a source's videos."""
    return f"SOURCE#{source}"


def video_item_keys(video_id: str, campaign: str, source: str, created_at: str) -> dict[str, str]:
    """The key and index attributes of a video record (listed newest first by campaign and by source)."""
    return {
        "pk": f"VIDEO#{video_id}",
        "sk": META,
        "gsi1pk": campaign_index(campaign),
        "gsi1sk": f"{created_at}#{video_id}",
        "gsi2pk": source_index(source),
        "gsi2sk": f"{created_at}#{video_id}",
    }


def batch_item_keys(batch_id: str, started_at: str) -> dict[str, str]:
    """The key and index attributes of a batch record (listed newest first)."""
    return {"pk": f"BATCH#{batch_id}", "sk": META, "gsi1pk": BATCHES_INDEX, "gsi1sk": f"{started_at}#{batch_id}"}


def label_item_keys(name: str, confidence: float, video_id: str) -> dict[str, str]:
    return {"pk": label_pk(name), "sk": label_sk(confidence, video_id)}


def _ingested_pks(source: str, source_id: str, sha1: str) -> list[str]:
    return [f"SOURCEID#{source}#{source_id}"] + ([f"HASH#{sha1.lower()}"] if sha1 else [])


# ------------------------------------------------------------------------------------------ derived from a summary
def summary_text_words(summary: VideoSummary) -> list[str]:
    """Every searchable word of the video's on-screen text."""
    return sorted({w for line in summary.text for w in text_words(line.text)})


def summary_label_scores(summary: VideoSummary) -> dict[str, float]:
    """Each label's best confidence in the video, rounded as stored."""
    best: dict[str, float] = {}
    for seg in summary.labels:
        best[seg.name] = max(best.get(seg.name, 0.0), round(seg.max_confidence, 2))
    return best


# ---------------------------------------------------------------------------------------------------- the stores
class Counters:
    """Per-source counters (`raw`, `processed`, `failed`), added to in the transaction that changes a video."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def add_one(self, source: str, counter: str) -> dict[str, Any]:
        """The transaction item adding one to a source's counter."""
        return self.table.update_item(stats_key(source), Update(adds={counter: 1}))

    def all(self) -> dict[str, SourceCounters]:
        items = self.table.query_all("pk = :pk", {":pk": "STATS"})
        return {i["sk"].removeprefix("SOURCE#"): SourceCounters.model_validate(i) for i in items}


class Videos:
    """Video records (and the job → video references written with their jobs)."""

    def __init__(self, table: Table, counters: Counters) -> None:
        self.table = table
        self.counters = counters

    def get(self, video_id: str) -> VideoRecord | None:
        item = self.table.get(video_key(video_id))
        return VideoRecord.model_validate(item) if item else None

    def get_many(self, video_ids: Sequence[str]) -> dict[str, VideoRecord]:
        """The records of the videos that exist, by id (BatchGetItem, 100 a call)."""
        return _get_many(self.table, video_ids, video_key, VideoRecord)

    def register(
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
            **video_item_keys(video_id, campaign, source, now),
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
        }
        if batch_id:
            item["batch_id"] = batch_id
        put = self.table.put_item(item, condition="attribute_not_exists(pk)")
        if self.table.transact([put, self.counters.add_one(source, "raw")]):
            return True
        # Known video: a new object version restarts its analysis; the same version changes nothing.
        fresh = {"raw_etag": etag, "bytes": size, "status": VideoStatus.RECEIVED.value, "reason": "", "jobs": {},
                 "updated_at": now, "attribution": attribution.model_dump()}  # fmt: skip
        self.table.update(
            video_key(video_id), Update(sets=fresh, condition="raw_etag <> :etag", values={":etag": etag})
        )
        return False

    def set_status(self, video_id: str, status: VideoStatus, unless: VideoStatus | None = None, **fields: Any) -> bool:
        """Set the status (and fields); with `unless`, leave a video already in that status alone."""
        update = Update(sets={"status": status.value, "updated_at": now_iso(), **fields})
        if unless is not None:
            update.names["#s"], update.values[":unless"] = "status", unless.value
            update.condition = "#s <> :unless"
        return self.table.update(video_key(video_id), update) is not None

    def mark_failed(self, video_id: str, source: str, reason: str) -> bool:
        """FAILED with a readable reason; counted once per video. Returns False if it had already failed."""
        now = now_iso()
        update = Update(
            sets={
                "status": VideoStatus.FAILED.value,
                "reason": reason[:MAX_REASON],
                "updated_at": now,
                "failed_at": now,
            },
            condition="attribute_not_exists(#s) OR #s <> :failed",
            names={"#s": "status"},
            values={":failed": VideoStatus.FAILED.value},
        )
        return self.table.transact(
            [self.table.update_item(video_key(video_id), update), self.counters.add_one(source, "failed")]
        )

    def record_jobs(self, video_id: str, job_ids: dict[JobKind, str], started_at: str) -> None:
        """Remember the started jobs in one transaction; never overwrites what a completion already wrote."""
        update = Update(sets={"jobs_started_at": started_at, "updated_at": started_at})
        for i, (kind, job_id) in enumerate(job_ids.items()):
            update.names[f"#k{i}"] = kind.value
            update.values[f":j{i}"] = JobState(job_id=job_id).model_dump(mode="json")
            update.clauses.append(f"jobs.#k{i} = if_not_exists(jobs.#k{i}, :j{i})")
        items = [self.table.update_item(video_key(video_id), update)]
        for kind, job_id in job_ids.items():
            ref = JobRef(video_id=video_id, kind=kind).item()
            items.append(self.table.put_item({"pk": f"JOB#{job_id}", "sk": META, **ref}))
        self.table.transact(items, conditional=False)

    def complete_job(
        self, video_id: str, kind: JobKind, job_id: str, status: JobStatus, message: str
    ) -> dict[JobKind, JobState]:
        """Record a job's terminal status and return the video's jobs after the update (atomically)."""
        job = JobState(job_id=job_id, status=status, message=message[:MAX_REASON])
        update = Update(
            clauses=["jobs.#k = :job"],
            sets={"updated_at": now_iso()},
            condition="attribute_exists(pk)",
            names={"#k": kind.value},
            values={":job": job.model_dump(mode="json")},
        )
        # A video deleted meanwhile raises (its completion is retried, then dead-lettered).
        after = self.table.update(video_key(video_id), update, new=True, strict=True)
        return VideoRecord.model_validate(after).jobs

    def mark_indexed(self, summary: VideoSummary, summary_key: str, summary_etag: str) -> bool:
        """The video's fields from its summary, INDEXED; counted as processed the first time. Re-indexing the same
        summary changes nothing: returns False then."""
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
            "top_labels": [t.model_dump() for t in summary.top_labels],
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
        k = video_key(summary.video_id)
        first = Update(
            sets={**fields, "updated_at": now, "indexed_at": now}, condition="attribute_not_exists(indexed_at)"
        )
        if self.table.transact([self.table.update_item(k, first), self.counters.add_one(summary.source, "processed")]):
            return True
        again = Update(  # already indexed: only a different summary changes anything
            sets={**fields, "updated_at": now, "indexed_at": now},
            condition="#se <> :etag",
            names={"#se": "summary_etag"},
            values={":etag": summary_etag},
        )
        return self.table.update(k, again) is not None

    def video_for_job(self, job_id: str) -> str | None:
        item = self.table.get(job_key(job_id))
        return JobRef.model_validate(item).video_id if item else None

    def listed(
        self, *, campaign: str | None = None, source: str | None = None, limit: int = 50, cursor: str = ""
    ) -> tuple[list[VideoRecord], str]:
        """Newest first, by campaign or by source (both read an index; no scans), and the next page's cursor."""
        if campaign:
            index, condition, value = "gsi1", "gsi1pk = :v", campaign_index(campaign)
        else:
            index, condition, value = "gsi2", "gsi2pk = :v", source_index(source or "dropin")
        page = self.table.query(condition, {":v": value}, index=index, newest_first=True, limit=limit, cursor=cursor)
        return [VideoRecord.model_validate(i) for i in page.items], page.cursor


class JobSlots:
    """Back-pressure: the Rekognition jobs in flight, bounded, each video holding its share in `job_slots`."""

    def __init__(self, table: Table, videos: Videos) -> None:
        self.table = table
        self.videos = videos

    def acquire(self, video_id: str, jobs: int, bound: int, status: VideoStatus | None = None, **fields: Any) -> bool:
        """Reserve `jobs` of the `bound` Rekognition jobs in flight for a video, once (a video already holding
        its slots gets True again), setting its `status` and `fields` in the same write. False when full: the
        caller backs off, and the video keeps its status."""
        sets = {"job_slots": jobs, **fields} | ({"status": status.value, "updated_at": now_iso()} if status else {})
        hold = Update(sets=sets, condition="attribute_exists(pk) AND attribute_not_exists(job_slots)")
        room = Update(
            adds={"in_flight": jobs},
            condition="attribute_not_exists(in_flight) OR in_flight <= :room",
            values={":room": bound - jobs},
        )
        items = [self.table.update_item(video_key(video_id), hold), self.table.update_item(LIMITS_KEY, room)]
        if self.table.transact(items):
            return True
        video = self.videos.get(video_id)
        return video is not None and video.job_slots is not None

    def release(self, video_id: str, held: int | None) -> bool:
        """Give back the `held` slots of a video (its record's `job_slots`; None: it holds none), once: False when
        it holds none, or no longer holds those (released meanwhile: the write's condition)."""
        if not held:
            return False
        give = Update(removes=["job_slots"], condition="job_slots = :n", values={":n": held})
        items = [
            self.table.update_item(video_key(video_id), give),
            self.table.update_item(LIMITS_KEY, Update(adds={"in_flight": -held})),
        ]
        return self.table.transact(items)

    def in_flight(self) -> int:
        item = self.table.get(LIMITS_KEY)
        return int(item.get("in_flight", 0)) if item else 0


class Tasks:
    """The batch item of each video a batch ingested: its task token, until a stage completes it."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def put(self, video_id: str, token: str, batch_id: str, **fields: Any) -> None:
        """Store the task token of a video's batch item (before its object reaches the lake). A redelivered
        item message writes the same token again; an item already completed keeps its completion."""
        task = TaskRecord(video_id=video_id, task_token=token, batch_id=batch_id, ingest_started_at=now_iso(), **fields)
        self.table.put(
            {**from_ddb(task_key(video_id)), **task.plain()},
            condition="attribute_not_exists(completed_at) OR task_token <> :t",
            values={":t": token},
        )

    def get(self, video_id: str) -> TaskRecord | None:
        item = self.table.get(task_key(video_id))
        return TaskRecord.model_validate(item) if item else None

    def get_many(self, video_ids: Sequence[str]) -> dict[str, TaskRecord]:
        """The batch items of the videos that have one, by video id (BatchGetItem, 100 a call)."""
        return _get_many(self.table, video_ids, task_key, TaskRecord)

    def finish(self, video_id: str, outcome: str, reason: str = "") -> TaskRecord | None:
        """Mark a video's batch item completed, once: returns the item the first time, None afterwards (or
        when the video belongs to no batch)."""
        update = Update(
            sets={"completed_at": now_iso(), "outcome": outcome, "reason": reason[:MAX_REASON]},
            condition="attribute_exists(pk) AND attribute_not_exists(completed_at)",
        )
        item = self.table.update(task_key(video_id), update, new=True)
        return None if item is None else TaskRecord.model_validate(item)

    def reopen(self, video_id: str) -> None:
        """Undo `finish` when the token could not be sent, so a retry completes it."""
        self.table.update(task_key(video_id), Update(removes=["completed_at", "outcome"]))


class Batches:
    """Batch records (the execution name is the batch id), and each batch's planned items as records of their
    own under the batch's partition, read back page by page in plan order."""

    ITEMS_PAGE = 500  # items read per query by `all_items` (DynamoDB also stops a page at 1 MB)

    def __init__(self, table: Table) -> None:
        self.table = table

    def put(self, record: BatchRecord) -> None:
        """Create or replace a batch record (its items are `put_items`'s)."""
        self.table.put({**record.item(), **batch_item_keys(record.batch_id, record.started_at)})

    def update(self, batch_id: str, **fields: Any) -> None:
        self.table.update(batch_key(batch_id), Update(sets=fields))

    def get(self, batch_id: str) -> BatchRecord | None:
        item = self.table.get(batch_key(batch_id))
        return BatchRecord.model_validate(item) if item else None

    def listed(self, limit: int = 25, cursor: str = "") -> tuple[list[BatchRecord], str]:
        """Batches, newest first (gsi1; no scan), and the next page's cursor."""
        page = self.table.query(
            "gsi1pk = :p", {":p": BATCHES_INDEX}, index="gsi1", newest_first=True, limit=limit, cursor=cursor
        )
        return [BatchRecord.model_validate(i) for i in page.items], page.cursor

    def _item_request(self, batch_id: str, item: BatchItemRef) -> dict[str, Any]:
        record = {**item.model_dump(mode="json"), "reason": item.reason[:MAX_REASON]}
        keys = {"pk": batch_pk(batch_id), "sk": batch_item_sk(item.position)}
        return {"PutRequest": {"Item": item_values({**keys, **record})}}

    def put_items(self, batch_id: str, items: Sequence[BatchItemRef]) -> list[BatchItemRef]:
        """The batch's planned items, one record each, numbered in plan order (BatchWriteItem, 25 a call, what
        DynamoDB leaves unprocessed sent again). Writing the plan again (a redelivered Plan task) replaces it:
        records of an earlier plan beyond the new one are deleted. Returns the items with their positions."""
        placed = [it.model_copy(update={"position": n}) for n, it in enumerate(items)]
        stale = [it.position for it in self.all_items(batch_id) if it.position >= len(placed)]
        requests = [self._item_request(batch_id, it) for it in placed]
        requests += [{"DeleteRequest": {"Key": batch_item_key(batch_id, n)}} for n in stale]
        self.table.batch_write(requests)
        return placed

    def record_outcomes(self, batch_id: str, items: Sequence[BatchItemRef]) -> None:
        """Write each item's outcome and reason on its record (the items as `items`/`all_items` read them)."""
        self.table.batch_write(self._item_request(batch_id, it) for it in items)

    def items(self, batch_id: str, limit: int = 100, cursor: str = "") -> tuple[list[BatchItemRef], str]:
        """One page of the batch's items in plan order, and the next page's cursor ("" after the last)."""
        page = self.table.query(
            "pk = :pk AND begins_with(sk, :item)",
            {":pk": batch_pk(batch_id), ":item": BATCH_ITEM},
            limit=limit,
            cursor=cursor,
        )
        return [BatchItemRef.model_validate(i) for i in page.items], page.cursor

    def all_items(self, batch_id: str) -> list[BatchItemRef]:
        """Every item of the batch, in plan order, page after page."""
        found, cursor = [], ""
        while True:
            page, cursor = self.items(batch_id, self.ITEMS_PAGE, cursor)
            found += page
            if not cursor:
                return found


class LabelIndex:
    """Label search: one item per label of a video, sorted by its best confidence."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def write(self, summary: VideoSummary, previous: dict[str, float]) -> None:
        """The summary's labels; a label no longer there, or whose confidence (part of the key) moved, is deleted."""
        vid = summary.video_id
        best = summary_label_scores(summary)
        total: dict[str, int] = {}
        for seg in summary.labels:
            total[seg.name] = total.get(seg.name, 0) + (seg.end_ms - seg.start_ms)
        requests: list[dict[str, Any]] = [
            {"DeleteRequest": {"Key": key(label_pk(name), label_sk(conf, vid))}}
            for name, conf in previous.items()
            if label_sk(best.get(name, -1.0), vid) != label_sk(conf, vid)
        ]
        for name, conf in best.items():
            hit = LabelHit(video_id=vid, name=name, confidence=conf, total_ms=total[name], campaign=summary.campaign,
                           source=summary.source, filename=summary.filename)  # fmt: skip
            item = {**label_item_keys(name, conf, vid), **hit.item()}
            requests.append({"PutRequest": {"Item": {k: to_ddb(v) for k, v in item.items()}}})
        self.table.batch_write(requests)

    def search(self, name: str, min_confidence: float = 0.0, limit: int = 50, cursor: str = "") -> Page:
        """The videos with label `name` at `min_confidence` or above, best first (items: `LabelHit` dumps)."""
        return self.table.query(
            "pk = :pk AND sk >= :low",
            {":pk": label_pk(name), ":low": label_floor(min_confidence)},
            newest_first=True,
            limit=limit,
            cursor=cursor,
        )


class TextIndex:
    """Text search: one item per word of a video's on-screen text, with the first line it appears in."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def write(self, summary: VideoSummary, previous: list[str]) -> None:
        vid = summary.video_id
        first: dict[str, TextLine] = {}
        for line in summary.text:  # sorted by start: the first line a word appears in
            for word in text_words(line.text):
                first.setdefault(word, line)
        requests: list[dict[str, Any]] = [
            {"DeleteRequest": {"Key": key(text_pk(w), vid)}} for w in previous if w not in first
        ]
        for word, line in first.items():
            hit = TextHit(video_id=vid, word=word, line=line.text, start_ms=line.start_ms, confidence=line.confidence,
                          campaign=summary.campaign, source=summary.source, filename=summary.filename)  # fmt: skip
            item = {"pk": text_pk(word), "sk": vid, **hit.item()}
            requests.append({"PutRequest": {"Item": {k: to_ddb(v) for k, v in item.items()}}})
        self.table.batch_write(requests)

    def search(self, word: str, limit: int = 50, cursor: str = "") -> Page:
        """The videos whose on-screen text has ``word`` (any case; its first letters-and-digits word)."""
        words = text_words(word)
        if not words:
            return Page([])
        return self.table.query("pk = :pk", {":pk": text_pk(words[0])}, limit=limit, cursor=cursor)


class Ingested:
    """A source's videos and content hashes already ingested, so later batches do not plan them again."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def mark(self, source: str, source_id: str, sha1: str, video_id: str) -> None:
        record = IngestedRecord(video_id=video_id, source=source, source_id=source_id).item()
        for pk in _ingested_pks(source, source_id, sha1):
            self.table.put({"pk": pk, "sk": META, **record})

    def seen(self, source: str, source_id: str) -> bool:
        return self.table.get(key(_ingested_pks(source, source_id, "")[0], META), projection="pk") is not None

    def seen_hash(self, sha1: str) -> bool:
        return bool(sha1) and self.table.get(key(_ingested_pks("", "", sha1)[-1], META), projection="pk") is not None

    def source_video(self, source: str, source_id: str) -> str | None:
        """The video a source's id was ingested as (`mark`), if any."""
        item = self.table.get(key(_ingested_pks(source, source_id, "")[0], META), projection="video_id")
        return (item or {}).get("video_id")


# ---------------------------------------------------------------------------------------------------- the catalog
class Catalog:
    """The stores of one catalog table through one client."""

    def __init__(self, table: str, client: Any | None = None) -> None:
        self.table = table
        self.client = client or boto3.client("dynamodb")
        self.db = Table(table, self.client)
        self.counters = Counters(self.db)
        self.videos = Videos(self.db, self.counters)
        self.slots = JobSlots(self.db, self.videos)
        self.tasks = Tasks(self.db)
        self.batches = Batches(self.db)
        self.labels = LabelIndex(self.db)
        self.text = TextIndex(self.db)
        self.ingested = Ingested(self.db)

    def index_summary(self, summary: VideoSummary, summary_key: str, summary_etag: str) -> bool:
        """Write what label search and the dashboard need. Re-indexing the same summary changes nothing.

        Returns True when the catalog changed.
        """
        previous = self.videos.get(summary.video_id)
        if not self.videos.mark_indexed(summary, summary_key, summary_etag):
            return False
        self.labels.write(summary, previous.label_scores if previous else {})
        self.text.write(summary, previous.text_words if previous else [])
        return True

    # Planning's view (`sources.planning.CatalogView`)
    def seen(self, source: str, source_id: str) -> bool:
        return self.ingested.seen(source, source_id)

    def seen_hash(self, sha1: str) -> bool:
        return self.ingested.seen_hash(sha1)

    # ---------------------------------------------------------- the operator side's view: stored attributes as dicts
    def get_video(self, video_id: str) -> dict[str, Any] | None:
        video = self.videos.get(video_id)
        return video.plain() if video else None

    def get_task(self, video_id: str) -> dict[str, Any] | None:
        task = self.tasks.get(video_id)
        return task.plain() if task else None

    def get_batch(self, batch_id: str) -> dict[str, Any] | None:
        """The batch record with its planned items (`items`, in plan order, with their outcomes once summarised)."""
        batch = self.batches.get(batch_id)
        if batch is None:
            return None
        plain, items = batch.plain(), self.batches.all_items(batch_id)
        if items or "items" not in plain:  # a record written before items had their own keeps its list
            plain["items"] = [i.model_dump(mode="json") for i in items]
        return plain

    def list_batches(self, limit: int = 25) -> list[dict[str, Any]]:
        return [b.plain() for b in self.batches.listed(limit)[0]]

    def list_videos(
        self, *, campaign: str | None = None, source: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        return [v.plain() for v in self.videos.listed(campaign=campaign, source=source, limit=limit)[0]]

    def videos_by_label(self, name: str, min_confidence: float = 0.0, limit: int = 50) -> list[dict[str, Any]]:
        return self.labels.search(name, min_confidence, limit).items

    def videos_by_text(self, word: str, limit: int = 50) -> list[dict[str, Any]]:
        return self.text.search(word, limit).items

    def stats(self) -> dict[str, dict[str, int]]:
        return {source: c.model_dump() for source, c in self.counters.all().items()}

    def jobs_in_flight(self) -> int:
        return self.slots.in_flight()
