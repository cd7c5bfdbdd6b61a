"""Lambda handler of the batch tasks (BatchQueue): "plan" and "summarize" messages of the state machine."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from cliplake.batches import parse_batch_task, run_plan, run_summarize
from cliplake.contracts import PlanTask
from cliplake.services import get_services
from cliplake.settings import BatchSettings

logger = Logger(service="batch")
metrics = Metrics(namespace="cliplake", service="batch")
SETTINGS = BatchSettings  # its environment (infra/template.yaml gives it exactly these variables)


def record_handler(record: SQSRecord) -> None:
    svc = get_services(SETTINGS)
    task = parse_batch_task(json.loads(record.body))
    logger.append_keys(batch_id=task.batch_id)
    if isinstance(task, PlanTask):
        output = run_plan(svc, task)
        metrics.add_metric(name="BatchesPlanned", unit=MetricUnit.Count, value=1 if output else 0)
    else:
        summary = run_summarize(svc, task)
        metrics.add_metric(name="BatchVideosProcessed", unit=MetricUnit.Count, value=summary.processed)
        metrics.add_metric(name="BatchVideosFailed", unit=MetricUnit.Count, value=summary.failed)


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    get_services(SETTINGS)  # built at the function's start: a missing variable fails it with the variable's name
    processor = BatchProcessor(event_type=EventType.SQS)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
