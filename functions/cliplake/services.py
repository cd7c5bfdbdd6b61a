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

from cliplake.adapters.catalog import Catalog
from cliplake.adapters.rekognition import Channel, Rekognition
from cliplake.adapters.s3 import Lake
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
    idempotency_config: IdempotencyConfig = field(
        default_factory=lambda: IdempotencyConfig(expires_after_seconds=3600, raise_on_no_idempotency_key=True)
    )
    _persistence: DynamoDBPersistenceLayer | None = None
    _wrapped: dict[Callable[..., Any], Any] = field(default_factory=dict)

    def idempotent(self, fn: F, data_keyword_argument: str) -> F:
        """Wrap a stage function with powertools idempotency, keyed by one of its (model) arguments."""
        if fn not in self._wrapped:
            if self._persistence is None:
                self._persistence = DynamoDBPersistenceLayer(table_name=self.settings.idempotency_table)
            self._wrapped[fn] = idempotent_function(
                fn,
                data_keyword_argument=data_keyword_argument,
                persistence_store=self._persistence,
                config=self.idempotency_config,
            )
        return self._wrapped[fn]


def build_services(settings: Settings) -> Services:
    return Services(
        settings=settings,
        lake=Lake(settings.bucket, boto3.client("s3")),
        catalog=Catalog(settings.catalog_table, boto3.client("dynamodb")),
        rekognition=Rekognition(
            boto3.client("rekognition"),
            min_confidence=settings.min_confidence,
            page_size=settings.result_page_size,
        ),
        channel=Channel(settings.rekognition_topic_arn, settings.rekognition_role_arn),
        sns=boto3.client("sns"),
    )


@lru_cache(maxsize=1)
def get_services() -> Services:
    return build_services(get_settings())
