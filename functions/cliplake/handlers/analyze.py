"""Lambda handler of the analyze stage (S3 event via SQS). Thin: parse, call the logic, map the result."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext

from cliplake.adapters.queue import back_off
from cliplake.adapters.rekognition import Backpressure
from cliplake.analyze import AnalyzeResult, analyze_object
from cliplake.contracts import ObjectRef, S3NotificationSqsRecord
from cliplake.lake import LakeKeyError, parse_raw_key
from cliplake.permissions import give_up_when_denied
from cliplake.services import get_services
from cliplake.settings import AnalyzeSettings

logger = Logger(service="analyze")
metrics = Metrics(namespace="cliplake", service="analyze")
SETTINGS = AnalyzeSettings  # its environment (infra/template.yaml gives it exactly these variables)


def record_handler(record: S3NotificationSqsRecord) -> None:
    svc = get_services(SETTINGS)
    analyze = svc.idempotent(analyze_object, "ref")
    for event in record.body.Records:
        ref = ObjectRef.from_event(event)
        try:
            result = AnalyzeResult.model_validate(analyze(svc, ref=ref))
        except Backpressure as err:
            logger.info("Rekognition at its quota, backing off", extra={"key": ref.key, "reason": str(err)})
            metrics.add_metric(name="Backpressure", unit=MetricUnit.Count, value=1)
            back_off(svc.sqs, record)
            raise
        except Exception as err:
            if not give_up_when_denied(svc, _video_id(ref.key), err):
                raise
            metrics.add_metric(name="VideosFailed", unit=MetricUnit.Count, value=1)
            continue
        metrics.add_metric(name=f"Videos{result.outcome.title()}", unit=MetricUnit.Count, value=1)


def _video_id(key: str) -> str | None:
    try:
        return parse_raw_key(key).video_id
    except LakeKeyError:
        return None


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # the services are built at the function's start (a missing variable fails it, named); the context registered
    svc = get_services(SETTINGS)
    svc.idempotent(analyze_object, "ref", context)
    processor = BatchProcessor(event_type=EventType.SQS, model=S3NotificationSqsRecord)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    # once per invocation (a read of its own): the slots in use after this batch
    metrics.add_metric(name="JobSlotsInUse", unit=MetricUnit.Count, value=svc.catalog.jobs_in_flight())
    return response
