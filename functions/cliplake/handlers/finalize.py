"""Lambda handler of the finalize stage (Rekognition completion via SNS → SQS)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from cliplake.contracts import CompletionSqsRecord
from cliplake.finalize import FinalizeResult, finalize_completion
from cliplake.permissions import give_up_when_denied
from cliplake.services import get_services
from cliplake.settings import FinalizeSettings

logger = Logger(service="finalize")
metrics = Metrics(namespace="cliplake", service="finalize")
SETTINGS = FinalizeSettings  # its environment (infra/template.yaml gives it exactly these variables)


def record_handler(record: CompletionSqsRecord) -> None:
    svc = get_services(SETTINGS)
    finalize = svc.idempotent(finalize_completion, "completion")
    try:
        result = FinalizeResult.model_validate(finalize(svc, completion=record.body))
    except Exception as err:
        if not give_up_when_denied(svc, record.body.JobTag or _video_of_job(svc, record.body.JobId), err):
            raise
        metrics.add_metric(name="CompletionsFailed", unit=MetricUnit.Count, value=1)
        return
    metrics.add_metric(name=f"Completions{result.outcome.title()}", unit=MetricUnit.Count, value=1)


def _video_of_job(svc, job_id: str) -> str | None:
    try:
        return svc.catalog.videos.video_for_job(job_id)
    except ClientError:
        return None


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # the services are built at the function's start (a missing variable fails it, named); the context registered
    svc = get_services(SETTINGS)
    svc.idempotent(finalize_completion, "completion", context)
    processor = BatchProcessor(event_type=EventType.SQS, model=CompletionSqsRecord)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    # once per invocation (a read of its own): the slots in use after this batch
    metrics.add_metric(name="JobSlotsInUse", unit=MetricUnit.Count, value=svc.catalog.jobs_in_flight())
    return response
