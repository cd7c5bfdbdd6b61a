"""The small DynamoDB layer under the catalog's stores: attribute values, one update builder, conditional writes,
cursor paging. It knows no key schema (that is `cliplake.adapters.catalog`'s alone) and no item type.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

_ser, _de = TypeSerializer(), TypeDeserializer()
Key = dict[str, dict[str, str]]
BATCH_WRITE_LIMIT = 25  # BatchWriteItem's limit of requests per call
BATCH_GET_LIMIT = 100  # BatchGetItem's limit of keys per call
UNPROCESSED_RETRIES = 8  # resends of what BatchWriteItem left unprocessed (throttling), with a growing pause


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def to_ddb(value: Any) -> dict[str, Any]:
    """A plain value (floats included) as a DynamoDB attribute value."""
    return _ser.serialize(json.loads(json.dumps(value, default=str), parse_float=Decimal))


def from_ddb(item: Mapping[str, Any]) -> dict[str, Any]:
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


def key(pk: str, sk: str) -> Key:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def item_values(item: Mapping[str, Any]) -> dict[str, Any]:
    """A plain item as DynamoDB attribute values."""
    return {k: to_ddb(v) for k, v in item.items()}


def conditional_failed(err: ClientError) -> bool:
    """Whether `err` is a write's condition (or one of a transaction's conditions) not holding."""
    code = err.response.get("Error", {}).get("Code")
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = err.response.get("CancellationReasons", [])
        return any(r.get("Code") == "ConditionalCheckFailed" for r in reasons) or not reasons
    return False


@dataclass
class Update:
    """One update expression: `SET` fields (by placeholder, any attribute name), raw `SET` clauses, `ADD`,
    `REMOVE`, an optional condition, and the values both refer to. `params()` gives UpdateItem's arguments."""

    sets: dict[str, Any] = field(default_factory=dict)
    clauses: list[str] = field(default_factory=list)
    adds: dict[str, Any] = field(default_factory=dict)
    removes: list[str] = field(default_factory=list)
    condition: str = ""
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        names, values = dict(self.names), {k: to_ddb(v) for k, v in self.values.items()}
        parts, sets, adds = [], list(self.clauses), []
        for i, (name, value) in enumerate(self.sets.items()):
            names[f"#f{i}"], values[f":f{i}"] = name, to_ddb(value)
            sets.append(f"#f{i} = :f{i}")
        for i, (name, value) in enumerate(self.adds.items()):
            names[f"#a{i}"], values[f":a{i}"] = name, to_ddb(value)
            adds.append(f"#a{i} :a{i}")
        if sets:
            parts.append("SET " + ", ".join(sets))
        if adds:
            parts.append("ADD " + ", ".join(adds))
        if self.removes:
            parts.append("REMOVE " + ", ".join(self.removes))
        out: dict[str, Any] = {"UpdateExpression": " ".join(parts)}
        if self.condition:
            out["ConditionExpression"] = self.condition
        if names:
            out["ExpressionAttributeNames"] = names
        if values:
            out["ExpressionAttributeValues"] = values
        return out


@dataclass
class Page:
    """One page of a query: its items (plain values) and the cursor of the next page ("" after the last)."""

    items: list[dict[str, Any]]
    cursor: str = ""


def encode_cursor(last_key: Mapping[str, Any] | None) -> str:
    return base64.urlsafe_b64encode(json.dumps(last_key).encode()).decode() if last_key else ""


def decode_cursor(cursor: str) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as err:
        raise ValueError(f"not a cursor of this catalog: {cursor[:40]!r}") from err


class Table:
    """One DynamoDB table through one client: the calls the stores make, conditional ones answering False/None
    when their condition does not hold."""

    def __init__(self, name: str, client: Any) -> None:
        self.name = name
        self.client = client

    @staticmethod
    def attempt(call: Callable[..., Any], **kwargs: Any) -> Any | None:
        """Run one conditional write: its response, or None when its condition (or a transaction's) does not hold."""
        try:
            return call(**kwargs)
        except ClientError as err:
            if conditional_failed(err):
                return None
            raise

    def get(self, k: Key, *, consistent: bool = True, projection: str = "") -> dict[str, Any] | None:
        extra = {"ProjectionExpression": projection} if projection else {"ConsistentRead": consistent}
        r = self.client.get_item(TableName=self.name, Key=k, **extra)
        return from_ddb(r["Item"]) if "Item" in r else None

    def put(self, item: Mapping[str, Any], condition: str = "", values: Mapping[str, Any] | None = None) -> bool:
        extra: dict[str, Any] = {"ConditionExpression": condition} if condition else {}
        if values:
            extra["ExpressionAttributeValues"] = {k: to_ddb(v) for k, v in values.items()}
        return self.attempt(self.client.put_item, TableName=self.name, Item=item_values(item), **extra) is not None

    def update(self, k: Key, update: Update, *, new: bool = False, strict: bool = False) -> dict[str, Any] | None:
        """The item after the update (`new`) or {} when it was made; None when its condition did not hold (raises
        then when `strict`)."""
        extra = {"ReturnValues": "ALL_NEW"} if new else {}
        call = self.client.update_item
        params = {"TableName": self.name, "Key": k, **update.params(), **extra}
        r = call(**params) if strict else self.attempt(call, **params)
        if r is None:
            return None
        return from_ddb(r.get("Attributes", {})) if new else {}

    def update_item(self, k: Key, update: Update) -> dict[str, Any]:
        """A transaction's Update item."""
        return {"Update": {"TableName": self.name, "Key": k, **update.params()}}

    def put_item(self, item: Mapping[str, Any], condition: str = "") -> dict[str, Any]:
        """A transaction's Put item."""
        put: dict[str, Any] = {"TableName": self.name, "Item": item_values(item)}
        if condition:
            put["ConditionExpression"] = condition
        return {"Put": put}

    def transact(self, items: list[dict[str, Any]], *, conditional: bool = True) -> bool:
        """Write `items` at once; False when one of their conditions did not hold (`conditional`), else raises."""
        if not conditional:
            self.client.transact_write_items(TransactItems=items)
            return True
        return self.attempt(self.client.transact_write_items, TransactItems=items) is not None

    def batch_write(self, requests: Iterable[dict[str, Any]], pause_s: float = 0.05) -> None:
        """`BatchWriteItem` in chunks of 25, sending what DynamoDB leaves unprocessed again (`_until_processed`)."""
        pending_all = list(requests)

        def write(pending: dict[str, Any]) -> dict[str, Any]:
            return self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

        for i in range(0, len(pending_all), BATCH_WRITE_LIMIT):
            self._until_processed(write, {self.name: pending_all[i : i + BATCH_WRITE_LIMIT]}, pause_s)

    def batch_get(self, keys: Iterable[Key], pause_s: float = 0.05) -> list[dict[str, Any]]:
        """The items of `keys` that exist (strongly consistent), by `BatchGetItem` 100 keys a call, asking again
        for what DynamoDB leaves unprocessed (`_until_processed`)."""
        unique = list({json.dumps(k, sort_keys=True): k for k in keys}.values())  # a repeated key is refused
        found: list[dict[str, Any]] = []

        def read(pending: dict[str, Any]) -> dict[str, Any]:
            r = self.client.batch_get_item(RequestItems=pending)
            found.extend(from_ddb(item) for item in r.get("Responses", {}).get(self.name, []))
            return r.get("UnprocessedKeys") or {}

        for i in range(0, len(unique), BATCH_GET_LIMIT):
            chunk = {self.name: {"Keys": unique[i : i + BATCH_GET_LIMIT], "ConsistentRead": True}}
            self._until_processed(read, chunk, pause_s)
        return found

    def _until_processed(
        self, send: Callable[[dict[str, Any]], dict[str, Any]], pending: dict[str, Any], pause_s: float
    ) -> None:
        """`send` what is pending until DynamoDB leaves nothing unprocessed (`send` returns what it left), again
        after a pause that doubles (capped at 1 s); raises when some is still left after `UNPROCESSED_RETRIES`
        resends."""
        for attempt in range(UNPROCESSED_RETRIES + 1):
            if attempt:
                time.sleep(min(pause_s * 2 ** (attempt - 1), 1.0))
            pending = send(pending)
            if not pending:
                return
        left = pending.get(self.name, [])
        count = len(left.get("Keys", [])) if isinstance(left, dict) else len(left)
        raise RuntimeError(f"DynamoDB left {count} request(s) unprocessed after {UNPROCESSED_RETRIES} resends")

    def query(
        self,
        condition: str,
        values: Mapping[str, str],
        *,
        index: str = "",
        newest_first: bool = False,
        limit: int | None = None,
        cursor: str = "",
    ) -> Page:
        """One page of a query (`values`: placeholders → string values); its cursor continues it."""
        params: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": {k: {"S": v} for k, v in values.items()},
        }
        if index:
            params["IndexName"] = index
        if newest_first:
            params["ScanIndexForward"] = False
        if limit is not None:
            params["Limit"] = limit
        start = decode_cursor(cursor)
        if start:
            params["ExclusiveStartKey"] = start
        r = self.client.query(**params)
        return Page([from_ddb(i) for i in r.get("Items", [])], encode_cursor(r.get("LastEvaluatedKey")))

    def query_all(self, condition: str, values: Mapping[str, str], **kwargs: Any) -> list[dict[str, Any]]:
        """Every item of a query, page after page."""
        items, cursor = [], ""
        while True:
            page = self.query(condition, values, cursor=cursor, **kwargs)
            items += page.items
            cursor = page.cursor
            if not cursor:
                return items
