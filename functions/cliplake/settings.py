"""Runtime settings: the one place that reads the environment.

Each function's settings are composed of small groups (`LakeSettings`, `CatalogSettings`, ...), the ones it needs
(`AnalyzeSettings`, ...: each handler module names its class as `SETTINGS`). A group's resources are required: a
function whose environment lacks one fails at its start (`load_settings`, the handler's first call) with the name
of the variable, not with `Bucket=""` on its first AWS call. In AWS the values come from the function's own
environment in `infra/template.yaml` (tests/test_template.py checks that each function gets exactly the variables
its class reads, and all it requires); in the local cloud the dispatcher gives each function the same variables,
read from the same template (its own, per invocation). AWS endpoints are not settings: boto3 reads
`AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` itself.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "CLIPLAKE_"


class FunctionSettings(BaseSettings):
    """What every function has; the base of the groups. An empty variable counts as not set."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", env_ignore_empty=True)

    work_dir: str = Field(default="/tmp", description="Scratch space for downloads and transcodes.")


# ------------------------------------------------------------------------------------------------- the groups
class LakeSettings(FunctionSettings):
    bucket: str = Field(description="the media bucket, the data lake")


class CatalogSettings(FunctionSettings):
    catalog_table: str = Field(description="the DynamoDB catalog table")


class IdempotencySettings(FunctionSettings):
    idempotency_table: str = Field(description="the DynamoDB table of powertools idempotency records")


class RekognitionSettings(FunctionSettings):
    """Reading Rekognition Video's results."""

    min_confidence: float = Field(default=50.0, ge=0, le=100, description="Lowest label confidence kept.")
    result_page_size: int = Field(default=1000, ge=1, le=1000, description="MaxResults when reading results.")


class RekognitionJobsSettings(RekognitionSettings):
    """Starting Rekognition Video jobs, which report to the completion topic."""

    rekognition_topic_arn: str = Field(description="the SNS topic Rekognition publishes completions to")
    rekognition_role_arn: str = Field(description="the role Rekognition assumes to publish to the topic")
    max_jobs_in_flight: int = Field(default=12, ge=1, description="Rekognition jobs this stack runs at once.")
    features: str = Field(
        default="labels,moderation,segments,text",
        description="Which Rekognition analyses run (each billed per minute): labels, moderation, segments, text.",
    )

    @property
    def feature_kinds(self) -> list[str]:
        """``features`` as a list, in a fixed order, unknown names refused."""
        return parse_features(self.features)


class SegmentsSettings(FunctionSettings):
    """Long videos: transcoded by a fan-out of segment invocations (SegmentFunction) instead of one analyze run."""

    segment_queue_url: str = Field(description="the queue of the segment tasks, SegmentFunction's")
    single_pass_max_s: float = Field(
        default=600.0, gt=0, description="Longest non-H.264 video analyze transcodes itself; longer ones fan out."
    )
    segment_length_s: float = Field(default=60.0, gt=0, description="Source seconds per segment invocation.")
    max_segments: int = Field(default=100, ge=1, le=1000, description="Most segments per video (fan-out width).")


class DownloadSettings(FunctionSettings):
    """HTTP access to the sources (searches and downloads)."""

    contact_email: str = Field(default="", description="Contact address sent in the Wikimedia User-Agent.")


class SourcesSettings(DownloadSettings):
    """Searching the sources when a batch is planned, and what a batch takes from them."""

    pixabay_secret_id: str = Field(description="the Secrets Manager id holding the Pixabay API key")
    wikimedia_api_url: str = "https://commons.wikimedia.org/w/api.php"
    pixabay_api_url: str = "https://pixabay.com/api/videos/"
    max_height: int = Field(default=720, description="Largest rendition height downloaded from a source.")
    # Long videos are transcoded in segments: these caps only bound a batch's cost (Rekognition takes up to 6 h).
    max_duration_s: float = Field(default=7200.0, description="Longest video a batch takes from a source.")
    max_size_mb: float = Field(default=4096.0, description="Largest video a batch takes from a source.")
    assets_dir: str = Field(default="", description="Bundled sample videos (the offline source); empty on AWS.")
    source_timeout_s: float = Field(default=10.0, gt=0, description="Connect/read timeout of source searches.")


class CampaignsSettings(FunctionSettings):
    campaigns_parameter_path: str = Field(description="the SSM path of the campaigns (e.g. /cliplake/campaigns)")


class BatchesSettings(FunctionSettings):
    """Planning batches (the Step Functions wrapper)."""

    max_batch_size: int = Field(default=1000, ge=1, description="Most videos one batch plans (README: Batches).")
    default_max_concurrency: int = Field(default=5, ge=1, le=40, description="Videos a batch has in flight.")


# ------------------------------------------------------------------------------------------- the functions
class AnalyzeSettings(LakeSettings, CatalogSettings, IdempotencySettings, RekognitionJobsSettings, SegmentsSettings):
    """AnalyzeFunction: probe, transcode or fan out, start the jobs."""


class SegmentSettings(LakeSettings, CatalogSettings, RekognitionJobsSettings, SegmentsSettings):
    """SegmentFunction: encode a part, join the parts, start the jobs."""


class FinalizeSettings(LakeSettings, CatalogSettings, IdempotencySettings, RekognitionSettings):
    """FinalizeFunction: read a completed job's results, write the summary."""


class IndexSettings(LakeSettings, CatalogSettings, IdempotencySettings):
    """IndexFunction: index a summary into the catalog and the lake's tables."""


class BatchSettings(LakeSettings, CatalogSettings, CampaignsSettings, SourcesSettings, BatchesSettings):
    """BatchFunction: plan a batch from a campaign and the sources, summarize it."""


class IngestSettings(LakeSettings, CatalogSettings, DownloadSettings):
    """IngestFunction: stream one planned video into the lake."""


class StackVariables(BaseSettings):
    """What the operator tools (CLI, dashboard) read of the CLIPLAKE_* variables: each optional, as what one leaves
    empty comes from the stack's output of the same resource (`OUTPUTS`; `cliplake_cli.stack.load_config`). The
    local cloud exports them from the same table. Not a function's settings."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", env_ignore_empty=True)

    bucket: str = ""
    catalog_table: str = ""
    batch_state_machine_arn: str = ""
    notifications_topic_arn: str = ""
    campaigns_parameter_path: str = ""

    #: the stack output each field stands for
    OUTPUTS: ClassVar[dict[str, str]] = {
        "bucket": "MediaBucketName",
        "catalog_table": "CatalogTableName",
        "batch_state_machine_arn": "BatchStateMachineArn",
        "notifications_topic_arn": "NotificationsTopicArn",
        "campaigns_parameter_path": "CampaignsParameterPath",
    }

    @classmethod
    def of_outputs(cls, outputs: dict[str, str]) -> StackVariables:
        """The values the stack's outputs give (not the environment's)."""
        return cls.model_construct(**{f: outputs.get(o, "") for f, o in cls.OUTPUTS.items()})

    def environment(self) -> dict[str, str]:
        """As variables (`CLIPLAKE_BUCKET`, ...), the empty ones left out."""
        return {variable(f): v for f, v in self.model_dump().items() if v}


S = TypeVar("S", bound=FunctionSettings)


class SettingsError(RuntimeError):
    """A function's environment lacks a variable its settings require, or has one that is not valid."""


def variable(field: str) -> str:
    """The environment variable of a settings field: `bucket` → `CLIPLAKE_BUCKET`."""
    return f"{PREFIX}{field.upper()}"


def variables(cls: type[FunctionSettings]) -> tuple[frozenset[str], frozenset[str]]:
    """The variables `cls` reads, and those of them it requires."""
    fields = cls.model_fields
    return (
        frozenset(variable(name) for name in fields),
        frozenset(variable(name) for name, f in fields.items() if f.is_required()),
    )


def load_settings(cls: type[S], **values: Any) -> S:
    """`cls` from the environment (and `values`), or a `SettingsError` naming each missing or invalid variable:
    "CLIPLAKE_BUCKET is not set (the media bucket, the data lake)"."""
    try:
        return cls(**values)
    except ValidationError as err:
        problems = []
        for error in err.errors():
            name = str(error["loc"][0]) if error["loc"] else ""
            field = cls.model_fields.get(name)
            if field is None:
                problems.append(error["msg"])
            elif error["type"] == "missing":
                problems.append(f"{variable(name)} is not set ({field.description})")
            else:
                problems.append(f"{variable(name)}={error.get('input')!r} is not valid: {error['msg']}")
        raise SettingsError(f"{cls.__name__}: {'; '.join(problems)}") from None


FEATURES = ("labels", "moderation", "segments", "text")


def parse_features(value: str | list[str]) -> list[str]:
    """``"labels, text"`` or ``["labels", "text"]`` → ``["labels", "text"]``; at least one, all known."""
    names = [v.strip().lower() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    unknown = sorted(set(names) - set(FEATURES))
    if unknown or not names:
        raise ValueError(f"features must be a non-empty subset of {', '.join(FEATURES)}; got {value!r}")
    return [f for f in FEATURES if f in names]


T = TypeVar("T")


def runtime_identity() -> tuple[str, str]:
    """Who this code runs as: the Lambda function's name and the access key of its credentials (the execution role's
    session in Lambda; both change only when the runtime's environment does)."""
    return os.environ.get("AWS_LAMBDA_FUNCTION_NAME", ""), os.environ.get("AWS_ACCESS_KEY_ID", "")


def environment_key() -> tuple[tuple[str, str], ...]:
    """The part of the environment the settings are made of (`CLIPLAKE_*`)."""
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(PREFIX)))


class PerEnvironment(Generic[T]):
    """A value built once per environment (and arguments), like a Lambda container builds it once in its init phase.

    In Lambda the environment of a process never changes, so this is a plain cache of one entry per argument. Where
    several functions share a process (the local cloud gives each its own environment, see its `environ` module),
    each function gets its own value. `cache_clear()` as with `functools.lru_cache`.
    """

    def __init__(self, build: Callable[..., T], key: Callable[[], object], maxsize: int = 32) -> None:
        self._build, self._key, self._maxsize = build, key, maxsize
        self._cache: OrderedDict[object, T] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, *args: Any) -> T:
        key = (args, self._key())
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        value = self._build(*args)
        with self._lock:
            value = self._cache.setdefault(key, value)
            while len(self._cache) > self._maxsize:
                self._cache.popitem(last=False)
        return value

    def cache_clear(self) -> None:
        with self._lock:
            self._cache.clear()


#: A function's settings in this environment, validated: `get_settings(AnalyzeSettings)`.
get_settings: PerEnvironment[Any] = PerEnvironment(load_settings, environment_key)
