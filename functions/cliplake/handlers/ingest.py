"""Lambda handler of the batch items (IngestQueue): one message per planned video, carrying its task token."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext

from cliplake.batches import ingest_item
from cliplake.contracts import ItemSqsRecord
from cliplake.services import get_services
from cliplake.settings import IngestSettings

logger = Logger(service="ingest")
metrics = Metrics(namespace="cliplake", service="ingest")
SETTINGS = IngestSettings  # its environment (infra/template.yaml gives it exactly these variables)


def record_handler(record: ItemSqsRecord) -> None:
    outcome = ingest_item(get_services(SETTINGS), record.body)
    metrics.add_metric(name=f"Items{outcome.title()}", unit=MetricUnit.Count, value=1)


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    get_services(SETTINGS)  # built at the function's start: a missing variable fails it with the variable's name
    processor = BatchProcessor(event_type=EventType.SQS, model=ItemSqsRecord)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
