"""The adapters a stage needs, built once per function and credentials (a Lambda container reuses them).

Every client comes from one fresh `boto3.Session` per function, which resolves the credentials of the environment
it is built in: the function's execution role on Lambda, and in the local cloud too (each invocation sees its own
function's environment). Function code never calls `boto3.client(...)`: boto3's default session caches the first
credentials it finds for the whole process. The powertools idempotency layer gets a client of the same session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import boto3
import botocore.session
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.client import BaseClient

from cliplake.adapters.catalog import Catalog
from cliplake.adapters.rekognition import Channel, CompletionTopic, Rekognition
from cliplake.adapters.s3 import S3_CONFIG, Lake
from cliplake.adapters.secrets import Secrets
from cliplake.adapters.ssm import Campaigns
from cliplake.adapters.stepfunctions import TaskTokens
from cliplake.settings import PerEnvironment, Settings, environment_key, get_settings, runtime_identity

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Services:
    settings: Settings
    lake: Lake
    catalog: Catalog
    rekognition: Rekognition
    channel: Channel
    completions: CompletionTopic
    tokens: TaskTokens | None = None
    campaigns: Campaigns | None = None
    secrets: Secrets | None = None
    sqs: BaseClient | None = None  # message visibility (back-off) and the segment queue
    dynamodb: BaseClient | None = None  # the client of the catalog, also given to the idempotency layer
    _idempotent: dict[Callable[..., Any], tuple[IdempotencyConfig, Callable[..., Any]]] = field(default_factory=dict)

    def idempotent(self, fn: F, data_keyword_argument: str, context: LambdaContext | None = None) -> F:
        """`fn` wrapped with powertools idempotency, keyed by one of its (model) arguments.

        Each function gets its own config and persistence layer: powertools configures a layer for the
        function it wraps, so sharing one between functions that run side by side (the local cloud runs
        every function in one process) would file records under the wrong function.
        """
        if fn not in self._idempotent:
            config = IdempotencyConfig(expires_after_seconds=3600, raise_on_no_idempotency_key=True)
            persistence = DynamoDBPersistenceLayer(
                table_name=self.settings.idempotency_table, boto3_client=self.dynamodb or self.catalog.client
            )
            wrapped = idempotent_function(
                fn, data_keyword_argument=data_keyword_argument, persistence_store=persistence, config=config
            )
            self._idempotent[fn] = (config, wrapped)
        config, wrapped = self._idempotent[fn]
        if context is not None:
            config.register_lambda_context(context)
        return wrapped


_SHARED: dict[str, Any] = {}  # botocore's loader of service models, shared by the sessions of this process


def new_session() -> boto3.session.Session:
    """A boto3 session of its own (its own credentials), sharing botocore's loader of service models with the other
    sessions of the process: the models are the same for everyone, and loading them is most of a client's cost."""
    core = botocore.session.Session()
    if "loader" in _SHARED:
        core.register_component("data_loader", _SHARED["loader"])
    else:
        _SHARED["loader"] = core.get_component("data_loader")
    session = boto3.session.Session(botocore_session=core)
    paths = _SHARED["loader"].search_paths  # boto3 appends its own data path for every session: keep one of each
    paths[:] = list(dict.fromkeys(paths))
    return session


def build_services(settings: Settings, session: boto3.session.Session | None = None) -> Services:
    """Every adapter of the stages, with clients of `session` (a new one by default: see the module's docstring)."""
    session = session or new_session()
    dynamodb = session.client("dynamodb")
    return Services(
        settings=settings,
        lake=Lake(settings.bucket, session.client("s3", config=S3_CONFIG)),
        catalog=Catalog(settings.catalog_table, dynamodb),
        rekognition=Rekognition(
            session.client("rekognition"),
            min_confidence=settings.min_confidence,
            page_size=settings.result_page_size,
        ),
        channel=Channel(settings.rekognition_topic_arn, settings.rekognition_role_arn),
        completions=CompletionTopic(settings.rekognition_topic_arn, session.client("sns")),
        tokens=TaskTokens(session.client("stepfunctions")),
        campaigns=Campaigns(session.client("ssm"), settings.campaigns_parameter_path),
        secrets=Secrets(session.client("secretsmanager")),
        sqs=session.client("sqs"),
        dynamodb=dynamodb,
    )


#: The services of the function running in this environment (its settings, its credentials).
get_services = PerEnvironment(lambda: build_services(get_settings()), lambda: (environment_key(), runtime_identity()))
