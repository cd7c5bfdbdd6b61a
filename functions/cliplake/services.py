"""The adapters a stage needs, built once per process from the settings (a Lambda container reuses them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeVar

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from cliplake.adapters.catalog import Catalog
from cliplake.adapters.rekognition import Channel, Rekognition
from cliplake.adapters.s3 import Lake, s3_client
from cliplake.adapters.stepfunctions import TaskTokens
from cliplake.settings import Settings, get_settings

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Services:
    settings: Settings
    lake: Lake
    catalog: Catalog
    rekognition: Rekognition
    channel: Channel
    sns: Any
    tokens: TaskTokens | None = None
    ssm: Any = None
    secrets: Any = None
    sqs: Any = None
    _idempotent: dict[Callable[..., Any], tuple[IdempotencyConfig, Any]] = field(default_factory=dict)

    def idempotent(self, fn: F, data_keyword_argument: str, context: LambdaContext | None = None) -> F:
        """`fn` wrapped with powertools idempotency, keyed by one of its (model) arguments.

        Each function gets its own config and persistence layer: powertools configures a layer for the
        function it wraps, so sharing one between functions that run side by side (the local cloud runs
        every function in one process) would file records under the wrong function.
        """
        if fn not in self._idempotent:
            config = IdempotencyConfig(expires_after_seconds=3600, raise_on_no_idempotency_key=True)
            persistence = DynamoDBPersistenceLayer(table_name=self.settings.idempotency_table)
            wrapped = idempotent_function(
                fn, data_keyword_argument=data_keyword_argument, persistence_store=persistence, config=config
            )
            self._idempotent[fn] = (config, wrapped)
        config, wrapped = self._idempotent[fn]
        if context is not None:
            config.register_lambda_context(context)
        return wrapped


def build_services(settings: Settings) -> Services:
    return Services(
        settings=settings,
        lake=Lake(settings.bucket, s3_client()),
        catalog=Catalog(settings.catalog_table, boto3.client("dynamodb")),
        rekognition=Rekognition(
            boto3.client("rekognition"),
            min_confidence=settings.min_confidence,
            page_size=settings.result_page_size,
        ),
        channel=Channel(settings.rekognition_topic_arn, settings.rekognition_role_arn),
        sns=boto3.client("sns"),
        tokens=TaskTokens(boto3.client("stepfunctions")),
        ssm=boto3.client("ssm"),
        secrets=boto3.client("secretsmanager"),
        sqs=boto3.client("sqs"),
    )


@lru_cache(maxsize=1)
def get_services() -> Services:
    return build_services(get_settings())
