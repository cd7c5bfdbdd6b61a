"""The adapters a stage needs, built once per function and credentials (a Lambda container reuses them), each on
first use: a function builds only the clients it uses.

Every client comes from one fresh `boto3.Session` per function, which resolves the credentials of the environment
it is built in: the function's execution role on Lambda, and in the local cloud too (each invocation sees its own
function's environment). Function code never calls `boto3.client(...)`: boto3's default session caches the first
credentials it finds for the whole process. The powertools idempotency layer gets a client of the same session.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
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
from cliplake.settings import (
    CampaignsSettings,
    CatalogSettings,
    FunctionSettings,
    IdempotencySettings,
    LakeSettings,
    PerEnvironment,
    RekognitionJobsSettings,
    RekognitionSettings,
    SettingsError,
    environment_key,
    get_settings,
    runtime_identity,
)

F = TypeVar("F", bound=Callable[..., Any])
G = TypeVar("G", bound=FunctionSettings)


class Services:
    """The adapters of a function, each built on first use (a function builds only the clients it uses), all with
    clients of one session. Adapters given by name (tests) are used as they are; `tokens=None` means no batches.
    An adapter needs its group of settings (the lake `LakeSettings`, ...): one the function's settings lack is a
    `SettingsError`, not an adapter of an empty name."""

    def __init__(
        self, settings: FunctionSettings, session: boto3.session.Session | None = None, **given: object
    ) -> None:
        unknown = set(given) - _ADAPTERS
        if unknown:
            raise TypeError(f"unknown services: {', '.join(sorted(unknown))}")
        self.settings = settings
        self._session = session
        self._idempotent: dict[Callable[..., Any], tuple[IdempotencyConfig, Callable[..., Any]]] = {}
        self.__dict__.update(given)  # what cached_property would have built

    def replaced(self, settings: FunctionSettings | None = None, **adapters: object) -> Services:
        """The same services (the adapters built so far, the session) with other settings or adapters."""
        built = {k: v for k, v in self.__dict__.items() if k in _ADAPTERS}
        return Services(settings or self.settings, self._session, **{**built, **adapters})

    def group(self, group: type[G]) -> G:
        """The function's settings as `group` (`svc.group(SegmentsSettings).segment_length_s`)."""
        if not isinstance(self.settings, group):
            raise SettingsError(
                f"{type(self.settings).__name__} has no {group.__name__}: this function does not use it"
            )
        return self.settings

    def _client(self, service: str, **kwargs: Any) -> BaseClient:
        self._session = self._session or new_session()
        return self._session.client(service, **kwargs)

    @cached_property
    def dynamodb(self) -> BaseClient:
        """The client of the catalog, also given to the idempotency layer."""
        return self._client("dynamodb")

    @cached_property
    def lake(self) -> Lake:
        return Lake(self.group(LakeSettings).bucket, self._client("s3", config=S3_CONFIG))

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(self.group(CatalogSettings).catalog_table, self.dynamodb)

    @cached_property
    def rekognition(self) -> Rekognition:
        s = self.group(RekognitionSettings)
        return Rekognition(self._client("rekognition"), min_confidence=s.min_confidence, page_size=s.result_page_size)

    @cached_property
    def channel(self) -> Channel:
        s = self.group(RekognitionJobsSettings)
        return Channel(s.rekognition_topic_arn, s.rekognition_role_arn)

    @cached_property
    def completions(self) -> CompletionTopic:
        return CompletionTopic(self.group(RekognitionJobsSettings).rekognition_topic_arn, self._client("sns"))

    @cached_property
    def tokens(self) -> TaskTokens | None:
        return TaskTokens(self._client("stepfunctions"))

    @cached_property
    def campaigns(self) -> Campaigns:
        path = self.group(CampaignsSettings).campaigns_parameter_path  # checked before a client is made
        return Campaigns(self._client("ssm"), path)

    @cached_property
    def secrets(self) -> Secrets:
        return Secrets(self._client("secretsmanager"))

    @cached_property
    def sqs(self) -> BaseClient:
        """Message visibility (back-off) and the segment queue."""
        return self._client("sqs")

    def idempotent(self, fn: F, data_keyword_argument: str, context: LambdaContext | None = None) -> F:
        """`fn` wrapped with powertools idempotency, keyed by one of its (model) arguments.

        Each function gets its own config and persistence layer: powertools configures a layer for the
        function it wraps, so sharing one between functions that run side by side (the local cloud runs
        every function in one process) would file records under the wrong function.
        """
        if fn not in self._idempotent:
            config = IdempotencyConfig(expires_after_seconds=3600, raise_on_no_idempotency_key=True)
            persistence = DynamoDBPersistenceLayer(
                table_name=self.group(IdempotencySettings).idempotency_table, boto3_client=self.catalog.client
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


def build_services(settings: FunctionSettings, session: boto3.session.Session | None = None) -> Services:
    """The stages' adapters, with clients of `session` (a new one by default: see the module's docstring), each
    built when first used."""
    return Services(settings, session or new_session())


_ADAPTERS = {name for name, value in vars(Services).items() if isinstance(value, cached_property)}


#: The services of the function running in this environment (its settings, validated: `get_services(IndexSettings)`,
#: its credentials). A handler's first call builds them: a missing variable fails the function's start.
get_services: PerEnvironment[Services] = PerEnvironment(
    lambda cls: build_services(get_settings(cls)), lambda: (environment_key(), runtime_identity())
)
