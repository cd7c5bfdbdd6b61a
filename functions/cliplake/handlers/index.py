"""Lambda handler of the index stage (S3 event of a `_labels.json` summary via SQS)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext

from cliplake.contracts import ObjectRef, S3NotificationSqsRecord
from cliplake.index import IndexResult, index_summary
from cliplake.services import get_services
from cliplake.settings import IndexSettings

logger = Logger(service="index")
metrics = Metrics(namespace="cliplake", service="index")
SETTINGS = IndexSettings  # its environment (infra/template.yaml gives it exactly these variables)


def record_handler(record: S3NotificationSqsRecord) -> None:
    svc = get_services(SETTINGS)
    index = svc.idempotent(index_summary, "ref")
    for event in record.body.Records:
        ref = ObjectRef.from_event(event)
        result = IndexResult.model_validate(index(svc, ref=ref))
        metrics.add_metric(name=f"Summaries{result.outcome.title()}", unit=MetricUnit.Count, value=1)


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # the services are built at the function's start (a missing variable fails it, named); the context registered
    get_services(SETTINGS).idempotent(index_summary, "ref", context)
    processor = BatchProcessor(event_type=EventType.SQS, model=S3NotificationSqsRecord)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
