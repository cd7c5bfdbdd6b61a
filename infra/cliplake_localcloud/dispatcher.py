"""What Lambda's SQS event source mappings do, for the local cloud.

For every `AWS::Lambda::EventSourceMapping` the transformed template declares (SAM writes one per SQS event),
one thread long-polls the queue, builds the exact Lambda SQS event, calls the function's handler in-process
with a Lambda-like context and applies the result as Lambda does:

- success: the batch's messages are deleted;
- with `ReportBatchItemFailures`: the reported items are made visible again after a backoff growing with
  their receive count (the queue's redrive policy then moves a poison message to its DLQ), the rest deleted;
  a response naming an unknown item fails the whole batch, as in AWS;
- a handler that raises fails the whole batch.

Each invocation runs with the function's own environment (`environment`: its template variables and its execution
role's credentials), visible to the invoking thread only (see `environ`); the dispatcher's own SQS calls are the
plumbing's (the administrator's).

Lambda leaves failed messages invisible for the queue's whole visibility timeout (up to 6 x the function
timeout); locally the dispatcher shortens that to `Backoff`, so retries happen in seconds.
"""

from __future__ import annotations

import base64
import importlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from cliplake_localcloud import environ
from cliplake_localcloud.template import Resolver, resources_of_type

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]
#: A function's environment for one invocation, and the process-environment keys it must not see.
Environment = Callable[["FunctionSpec"], tuple[dict[str, str], frozenset[str]]]
_SQS_MAX_BATCH = 10
_SYSTEM_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    # FIFO queues and X-Ray, present only when SQS returns them
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
)


@dataclass(frozen=True)
class FunctionSpec:
    """A deployed function as the dispatcher needs it."""

    logical_id: str
    name: str
    arn: str
    handler: str  # "package.module.attribute", as in the template
    timeout_s: int = 3
    memory_mb: int = 128
    environment: dict[str, str] = field(default_factory=dict)
    role_arn: str = ""  # its execution role


@dataclass(frozen=True)
class Mapping:
    """An SQS event source mapping: a queue feeding a function."""

    logical_id: str
    function: FunctionSpec
    queue_url: str
    queue_arn: str
    batch_size: int = 10
    report_batch_item_failures: bool = False
    enabled: bool = True
    max_concurrency: int = 1  # ScalingConfig.MaximumConcurrency; without one, one poller as before


@dataclass(frozen=True)
class Backoff:
    """Visibility timeout (s) given to a failed message: `base * factor ** (receives - 1)`, at most `cap`.

    SQS counts visibility in whole seconds; `base=0` retries at once (fast tests).
    """

    base_s: int = 1
    factor: float = 2.0
    cap_s: int = 30

    def delay(self, receive_count: int) -> int:
        return int(min(self.cap_s, self.base_s * self.factor ** max(0, receive_count - 1)))


def functions_from_template(template: dict[str, Any], resolver: Resolver) -> dict[str, FunctionSpec]:
    """Every `AWS::Lambda::Function` of a transformed template, with its resolved environment."""
    specs = {}
    for lid, res in resources_of_type(template, "AWS::Lambda::Function").items():
        props = res.get("Properties", {})
        env = resolver.resolve(props.get("Environment", {}).get("Variables", {}))
        specs[lid] = FunctionSpec(
            logical_id=lid,
            name=resolver.ref(lid),
            arn=resolver.get_att(lid, "Arn"),
            handler=props["Handler"],
            timeout_s=int(props.get("Timeout", 3)),
            memory_mb=int(props.get("MemorySize", 128)),
            environment={k: str(v) for k, v in env.items()},
            role_arn=str(resolver.resolve(props["Role"])) if props.get("Role") else "",
        )
    return specs


def mappings_from_template(template: dict[str, Any], resolver: Resolver) -> list[Mapping]:
    """The SQS event source mappings of a transformed template (other event sources are ignored)."""
    functions = functions_from_template(template, resolver)
    by_name = {spec.name: spec for spec in functions.values()}
    queues = {resolver.get_att(lid, "Arn"): resolver.ref(lid) for lid in resources_of_type(template, "AWS::SQS::Queue")}
    mappings = []
    for lid, res in resources_of_type(template, "AWS::Lambda::EventSourceMapping").items():
        props = resolver.resolve(res.get("Properties", {}))
        source = props.get("EventSourceArn", "")
        if source not in queues:
            continue
        mappings.append(
            Mapping(
                logical_id=lid,
                function=by_name[props["FunctionName"]],
                queue_url=queues[source],
                queue_arn=source,
                batch_size=int(props.get("BatchSize", 10)),
                report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                enabled=str(props.get("Enabled", True)).lower() != "false",
                max_concurrency=int((props.get("ScalingConfig") or {}).get("MaximumConcurrency", 1)),
            )
        )
    return mappings


class LambdaContext:
    """The attributes and method of the Python runtime's context object.

    As in the real runtime, `memory_limit_in_mb` is a string (it comes from the environment there).
    """

    def __init__(self, function: FunctionSpec) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = str(function.memory_mb)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline = time.monotonic() + function.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """SQS API shape (`StringValue`, `BinaryValue` bytes) -> Lambda event shape (`stringValue`, base64)."""
    out: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return out


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda passes for a batch of messages received from SQS."""
    records = []
    for m in messages:
        attrs = m.get("Attributes", {})
        record = {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": {k: attrs[k] for k in _SYSTEM_ATTRIBUTES if k in attrs},
            "messageAttributes": {k: _message_attribute(v) for k, v in m.get("MessageAttributes", {}).items()},
            "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": region,
        }
        if "MD5OfMessageAttributes" in m:
            record["md5OfMessageAttributes"] = m["MD5OfMessageAttributes"]
        records.append(record)
    return {"Records": records}


def failed_ids(response: Any, message_ids: list[str], report_batch_item_failures: bool) -> list[str]:
    """Which messages failed, read from the handler's response as Lambda reads it."""
    if not report_batch_item_failures or not isinstance(response, dict):
        return []
    failures = response.get("batchItemFailures") or []
    ids = [f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures]
    if any(i not in message_ids for i in ids):  # Lambda: an empty/unknown identifier fails the whole batch
        return list(message_ids)
    return list(dict.fromkeys(ids))


class Dispatcher:
    """Runs the mappings: one poller thread each, handlers called in-process. A mapping with a ScalingConfig
    `MaximumConcurrency` gets that many pollers, at most `max_pollers` (the machine's cores, at least 2): its
    invocations run in parallel, as Lambda scales an SQS event source up to the cap.

    `handlers` maps a function's logical id to a callable used instead of the template's `Handler`
    (e.g. a stub, or an instrumented wrapper); it can also be changed while running with `set_handler`
    or, scoped, with `override`.
    """

    def __init__(
        self,
        mappings: list[Mapping],
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        handlers: dict[str, Handler] | None = None,
        backoff: Backoff | None = None,
        poll_wait_s: int = 1,
        environment: Environment | None = None,
        max_pollers: int | None = None,
    ) -> None:
        self.mappings = [m for m in mappings if m.enabled]
        self.environment = environment
        self.endpoint_url = endpoint_url
        self.region = region
        self.backoff = backoff or Backoff()
        self.poll_wait_s = poll_wait_s
        self.max_pollers = max(1, max_pollers or max(2, os.cpu_count() or 1))
        self.stats: dict[str, dict[str, int]] = {
            m.function.logical_id: {"invocations": 0, "records": 0, "failures": 0} for m in self.mappings
        }
        self._overrides: dict[str, Handler] = dict(handlers or {})
        self._imported: dict[str, Handler] = {}
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------------------------------ handlers
    def set_handler(self, function_id: str, handler: Handler | None) -> None:
        """Use `handler` for a function (by logical id); `None` restores the template's handler."""
        with self._lock:
            if handler is None:
                self._overrides.pop(function_id, None)
            else:
                self._overrides[function_id] = handler

    @contextmanager
    def override(self, **handlers: Handler) -> Iterator[None]:
        """`with dispatcher.override(AnalyzeFunction=fn): ...` - restores the previous handlers after."""
        with self._lock:
            previous = {k: self._overrides.get(k) for k in handlers}
            self._overrides.update(handlers)
        try:
            yield
        finally:
            for k, v in previous.items():
                self.set_handler(k, v)

    def handler_for(self, function: FunctionSpec) -> Handler:
        with self._lock:
            if function.logical_id in self._overrides:
                return self._overrides[function.logical_id]
            if function.handler not in self._imported:
                module, _, attr = function.handler.rpartition(".")
                self._imported[function.handler] = getattr(importlib.import_module(module), attr)
            return self._imported[function.handler]

    # ----------------------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Import every mapped handler (Lambda's init phase, done once up front), then poll the queues."""
        for mapping in self.mappings:
            self.handler_for(mapping.function)
        self._stop.clear()
        for mapping in self.mappings:
            for i in range(self.pollers(mapping)):
                name = f"esm-{mapping.function.logical_id}" + (f"-{i}" if i else "")
                thread = threading.Thread(target=self._poll, args=(mapping,), name=name, daemon=True)
                thread.start()
                self._threads.append(thread)
        log.info("dispatcher: %d mappings started", len(self._threads))

    def pollers(self, mapping: Mapping) -> int:
        """How many invocations of a mapping may run at once here."""
        return max(1, min(mapping.max_concurrency, self.max_pollers))

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    def busy(self) -> list[str]:
        """The functions being invoked right now."""
        with self._lock:
            return [name for name, n in self._running.items() if n]

    # ---------------------------------------------------------------------------------------- the mapping
    def _client(self) -> Any:
        return boto3.session.Session().client("sqs", region_name=self.region, endpoint_url=self.endpoint_url)

    def _poll(self, mapping: Mapping) -> None:
        sqs = self._client()
        retry_now = False
        while not self._stop.is_set():
            try:
                messages = sqs.receive_message(
                    QueueUrl=mapping.queue_url,
                    MaxNumberOfMessages=min(_SQS_MAX_BATCH, mapping.batch_size),
                    WaitTimeSeconds=0 if retry_now else self.poll_wait_s,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                ).get("Messages", [])
            except Exception:
                if self._stop.is_set():
                    break
                log.exception("dispatcher: receive from %s failed", mapping.queue_url)
                self._stop.wait(1.0)
                continue
            retry_now = False
            if messages:
                failed = self.invoke(mapping, messages, sqs)
                # failures made visible at once are picked up without waiting for the long poll to time out
                retry_now = bool(failed) and self.backoff.base_s == 0

    def invoke(self, mapping: Mapping, messages: list[dict[str, Any]], sqs: Any = None) -> list[str]:
        """Invoke the mapping's function with `messages`, settle them on the queue; returns the failed ids."""
        sqs = sqs or self._client()
        fn = mapping.function
        ids = [m["MessageId"] for m in messages]
        with self._lock:
            self._running[fn.logical_id] = self._running.get(fn.logical_id, 0) + 1
        started = time.perf_counter()
        failed = list(ids)
        try:
            try:
                event = sqs_event(messages, mapping.queue_arn, self.region)
                env, hidden = self.environment(fn) if self.environment else ({}, frozenset())
                with environ.overlay(env, hidden):  # the function's own variables and credentials
                    response = self.handler_for(fn)(event, LambdaContext(fn))
                failed = failed_ids(response, ids, mapping.report_batch_item_failures)
            except Exception:
                log.exception("dispatcher: %s raised; the whole batch of %d fails", fn.logical_id, len(ids))
            self._settle(sqs, mapping, messages, set(failed))
        finally:
            with self._lock:
                self._running[fn.logical_id] -= 1
                stats = self.stats.setdefault(fn.logical_id, {"invocations": 0, "records": 0, "failures": 0})
                stats["invocations"] += 1
                stats["records"] += len(ids)
                stats["failures"] += len(failed)
        log.info(
            "invoke %s batch=%d failures=%d duration_ms=%.1f",
            fn.logical_id,
            len(ids),
            len(failed),
            (time.perf_counter() - started) * 1000,
        )
        return failed

    def _settle(self, sqs: Any, mapping: Mapping, messages: list[dict[str, Any]], failed: set[str]) -> None:
        done = [m for m in messages if m["MessageId"] not in failed]
        retry = [m for m in messages if m["MessageId"] in failed]
        for chunk in _chunks(done):
            sqs.delete_message_batch(
                QueueUrl=mapping.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        for chunk in _chunks(retry):
            entries = [
                {
                    "Id": str(i),
                    "ReceiptHandle": m["ReceiptHandle"],
                    "VisibilityTimeout": self.backoff.delay(int(m["Attributes"].get("ApproximateReceiveCount", 1))),
                }
                for i, m in enumerate(chunk)
            ]
            sqs.change_message_visibility_batch(QueueUrl=mapping.queue_url, Entries=entries)


def _chunks(items: list[Any], size: int = _SQS_MAX_BATCH) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
