"""Lambda handler of the segment stage (SegmentQueue): encode one part of a long video, or join its parts.
Thin: parse, call the logic, map the result."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext

from cliplake.adapters.queue import back_off
from cliplake.adapters.rekognition import Backpressure
from cliplake.analyze import analyze_object
from cliplake.contracts import SegmentSqsRecord
from cliplake.media import NetworkError
from cliplake.segments import run_join, run_part
from cliplake.services import get_services
from cliplake.settings import SegmentSettings

logger = Logger(service="segment")
metrics = Metrics(namespace="cliplake", service="segment")
SETTINGS = SegmentSettings  # its environment (infra/template.yaml gives it exactly these variables)
JOIN_LEASE_S = 960  # the function's timeout (900 s) and a margin: a join's claim outlives the invocation


def record_handler(record: SegmentSqsRecord) -> None:
    svc = get_services(SETTINGS)
    task = record.body
    try:
        if task.kind != "join":
            result = run_part(svc, task)
        else:
            result = run_join(svc, task, record.messageId, JOIN_LEASE_S, analyze_object)
    except Backpressure as err:  # the join is done; starting the analysis waits for Rekognition's quota
        logger.info("Rekognition at its quota, backing off", extra={"key": task.raw_key, "reason": str(err)})
        back_off(svc.sqs, record)
        raise
    except NetworkError as err:  # reading the original or the parts failed: redelivered soon, never a verdict
        logger.warning("segment task failed on the network, backing off",
                       extra={"key": task.raw_key, "kind": task.kind, "reason": str(err)})  # fmt: skip
        back_off(svc.sqs, record)
        raise
    logger.info("segment task", extra=result.model_dump())
    metrics.add_metric(name=f"Segments{result.outcome.title()}", unit=MetricUnit.Count, value=1)


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    get_services(SETTINGS)  # built at the function's start: a missing variable fails it with the variable's name
    processor = BatchProcessor(event_type=EventType.SQS, model=SegmentSqsRecord)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
