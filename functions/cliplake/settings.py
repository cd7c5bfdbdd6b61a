"""Runtime settings: the one place that reads the environment.

In AWS the values come from the function's environment in `infra/template.yaml`; in the local cloud the
dispatcher gives each function the same variables, read from the same template (its own, per invocation). AWS
endpoints are not settings: boto3 reads `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` itself.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLIPLAKE_", extra="ignore")

    bucket: str = Field(default="", description="The media bucket (data lake).")
    catalog_table: str = Field(default="", description="DynamoDB catalog table.")
    idempotency_table: str = Field(default="", description="DynamoDB table of powertools idempotency records.")
    rekognition_topic_arn: str = Field(default="", description="SNS topic Rekognition publishes completions to.")
    rekognition_role_arn: str = Field(default="", description="Role Rekognition assumes to publish to the topic.")
    min_confidence: float = Field(default=50.0, ge=0, le=100, description="Lowest label confidence kept.")
    work_dir: str = Field(default="/tmp", description="Scratch space for downloads and transcodes.")
    max_jobs_in_flight: int = Field(default=12, ge=1, description="Rekognition jobs this stack runs at once.")
    result_page_size: int = Field(default=1000, ge=1, le=1000, description="MaxResults when reading results.")
    features: str = Field(
        default="labels,moderation,segments,text",
        description="Which Rekognition analyses run (each billed per minute): labels, moderation, segments, text.",
    )
    # Long videos: transcoded by a fan-out of segment invocations (SegmentFunction) instead of one analyze run.
    segment_queue_url: str = Field(default="", description="Queue of segment tasks (SegmentFunction).")
    single_pass_max_s: float = Field(
        default=600.0, gt=0, description="Longest non-H.264 video analyze transcodes itself; longer ones fan out."
    )
    segment_length_s: float = Field(default=60.0, gt=0, description="Source seconds per segment invocation.")
    max_segments: int = Field(default=100, ge=1, le=1000, description="Most segments per video (fan-out width).")
    # Sources (ingest).
    contact_email: str = Field(default="", description="Contact address sent in the Wikimedia User-Agent.")
    wikimedia_api_url: str = "https://commons.wikimedia.org/w/api.php"
    pixabay_api_url: str = "https://pixabay.com/api/videos/"
    pixabay_secret_id: str = Field(default="", description="Secrets Manager id holding the Pixabay API key.")
    campaigns_parameter_path: str = Field(default="/cliplake/campaigns", description="SSM path of campaigns.")
    max_height: int = Field(default=720, description="Largest rendition height downloaded from a source.")
    # Long videos are transcoded in segments: these caps only bound a batch's cost (Rekognition takes up to 6 h).
    max_duration_s: float = Field(default=7200.0, description="Longest video a batch takes from a source.")
    max_size_mb: float = Field(default=4096.0, description="Largest video a batch takes from a source.")
    assets_dir: str = Field(default="", description="Bundled sample videos (the offline source); empty on AWS.")
    # Batches (the Step Functions wrapper).
    batch_state_machine_arn: str = Field(default="", description="The batch state machine.")
    notifications_topic_arn: str = Field(default="", description="SNS topic of batch summaries and alarms.")
    max_batch_size: int = Field(default=1000, ge=1, description="Most videos one batch plans (README: Batches).")
    default_max_concurrency: int = Field(default=5, ge=1, le=40, description="Videos a batch has in flight.")
    source_timeout_s: float = Field(default=10.0, gt=0, description="Connect/read timeout of source searches.")

    @property
    def feature_kinds(self) -> list[str]:
        """``features`` as a list, in a fixed order, unknown names refused."""
        return parse_features(self.features)

    @property
    def current_campaign_parameter(self) -> str:
        """`/cliplake/current-campaign` next to the campaigns path `/cliplake/campaigns`."""
        parent = self.campaigns_parameter_path.rstrip("/").rsplit("/", 1)[0]
        return f"{parent}/current-campaign"


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
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("CLIPLAKE_")))


class PerEnvironment(Generic[T]):
    """A value built once per environment, like a Lambda container builds it once in its init phase.

    In Lambda the environment of a process never changes, so this is a plain cache of one entry. Where several
    functions share a process (the local cloud gives each its own environment, see its `environ` module), each
    function gets its own value. `cache_clear()` as with `functools.lru_cache`.
    """

    def __init__(self, build: Callable[[], T], key: Callable[[], object], maxsize: int = 32) -> None:
        self._build, self._key, self._maxsize = build, key, maxsize
        self._cache: OrderedDict[object, T] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self) -> T:
        key = self._key()
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        value = self._build()
        with self._lock:
            value = self._cache.setdefault(key, value)
            while len(self._cache) > self._maxsize:
                self._cache.popitem(last=False)
        return value

    def cache_clear(self) -> None:
        with self._lock:
            self._cache.clear()


get_settings = PerEnvironment(Settings, environment_key)
