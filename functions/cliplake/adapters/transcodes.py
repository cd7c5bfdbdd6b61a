"""The task record of a segmented transcode, in the catalog table, and the segment queue.

    the video's TRANSCODE item (`catalog.transcode_key`): one version (etag) of a video being transcoded in segments:
    its parts, the parts done (a string set, so a redelivered part counts once), who joins and when it did

The join happens exactly once: a join claims the record with a conditional write (a lease as long as the function
may run, renewed only by the same message), and `joined_at` is set once the rendition is in the lake.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from cliplake.adapters.catalog import transcode_key
from cliplake.adapters.dynamo import conditional_failed, from_ddb, now_iso, to_ddb


class Transcodes:
    def __init__(self, table: str, client: Any) -> None:
        self.table = table
        self.client = client

    def get(self, video_id: str) -> dict[str, Any] | None:
        r = self.client.get_item(TableName=self.table, Key=transcode_key(video_id), ConsistentRead=True)
        return from_ddb(r["Item"]) if "Item" in r else None

    def create(self, video_id: str, etag: str, parts: list[str], splits: list[float]) -> bool:
        """The record of this version's transcode, once: False when it exists already (same etag)."""
        item = {
            **from_ddb(transcode_key(video_id)),
            "etag": etag,
            "parts": parts,
            "splits": splits,
            "dispatched": False,
            "created_at": now_iso(),
        }
        try:
            self.client.put_item(
                TableName=self.table,
                Item={k: to_ddb(v) for k, v in item.items()},
                ConditionExpression="attribute_not_exists(pk) OR etag <> :etag",
                ExpressionAttributeValues={":etag": to_ddb(etag)},
            )
        except ClientError as err:
            if conditional_failed(err):
                return False
            raise
        return True

    def mark_dispatched(self, video_id: str, etag: str) -> None:
        self.client.update_item(
            TableName=self.table,
            Key=transcode_key(video_id),
            UpdateExpression="SET dispatched = :t",
            ConditionExpression="etag = :etag",
            ExpressionAttributeValues={":t": {"BOOL": True}, ":etag": to_ddb(etag)},
        )

    def part_done(self, video_id: str, etag: str, part: str) -> dict[str, Any] | None:
        """Add a part to the done set (idempotent); the record after it, None when it belongs to another version."""
        try:
            r = self.client.update_item(
                TableName=self.table,
                Key=transcode_key(video_id),
                UpdateExpression="ADD done :p",
                ConditionExpression="etag = :etag",
                ExpressionAttributeValues={":p": {"SS": [part]}, ":etag": to_ddb(etag)},
                ReturnValues="ALL_NEW",
            )
        except ClientError as err:
            if conditional_failed(err):
                return None
            raise
        return from_ddb(r["Attributes"])

    def claim_join(self, video_id: str, etag: str, owner: str, lease_s: int, now: float) -> bool:
        """Claim the join for `owner` (a message id) for `lease_s`; the same owner may claim again (its message
        redelivered after a crash), another only once the lease ran out. False when joined already or held."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key=transcode_key(video_id),
                UpdateExpression="SET join_owner = :me, join_until = :until",
                ConditionExpression="etag = :etag AND attribute_not_exists(joined_at) AND "
                "(attribute_not_exists(join_until) OR join_until < :now OR join_owner = :me)",
                ExpressionAttributeValues={
                    ":me": to_ddb(owner),
                    ":until": to_ddb(now + lease_s),
                    ":now": to_ddb(now),
                    ":etag": to_ddb(etag),
                },
            )
        except ClientError as err:
            if conditional_failed(err):
                return False
            raise
        return True

    def mark_failed(self, video_id: str, etag: str, reason: str) -> None:
        """This version's transcode will never finish (a part or the join met a verdict on the media): the tasks
        still queued for it skip their work."""
        self.client.update_item(
            TableName=self.table,
            Key=transcode_key(video_id),
            UpdateExpression="SET failed_at = if_not_exists(failed_at, :now), reason = :reason",
            ConditionExpression="etag = :etag",
            ExpressionAttributeValues={":now": to_ddb(now_iso()), ":reason": to_ddb(reason), ":etag": to_ddb(etag)},
        )

    def mark_joined(self, video_id: str, etag: str, size: int) -> None:
        self.client.update_item(
            TableName=self.table,
            Key=transcode_key(video_id),
            UpdateExpression="SET joined_at = if_not_exists(joined_at, :now), rendition_bytes = :size",
            ConditionExpression="etag = :etag",
            ExpressionAttributeValues={":now": to_ddb(now_iso()), ":size": to_ddb(size), ":etag": to_ddb(etag)},
        )


class SegmentQueue:
    """Sends segment tasks (JSON bodies) to the segment queue, ten a request."""

    def __init__(self, url: str, client: Any) -> None:
        self.url = url
        self.client = client

    def send(self, bodies: Iterable[dict[str, Any]]) -> int:
        batch: list[dict[str, Any]] = []
        sent = 0
        for body in bodies:
            batch.append({"Id": str(len(batch)), "MessageBody": json.dumps(body)})
            if len(batch) == 10:
                sent += self._flush(batch)
                batch = []
        if batch:
            sent += self._flush(batch)
        return sent

    def _flush(self, batch: list[dict[str, Any]]) -> int:
        r = self.client.send_message_batch(QueueUrl=self.url, Entries=batch)
        if r.get("Failed"):
            raise RuntimeError(f"{len(r['Failed'])} segment tasks were not queued: {r['Failed'][0].get('Message')}")
        return len(batch)
