"""Services and settings: a function builds only the clients it uses, once, all from its own session; its settings
are the groups it needs, each resource required, validated at its start with the missing variable named."""

from __future__ import annotations

import pytest

from cliplake.services import Services, build_services, get_services
from cliplake.settings import (
    AnalyzeSettings,
    CampaignsSettings,
    IndexSettings,
    IngestSettings,
    SettingsError,
    get_settings,
    load_settings,
)

INDEX = {"bucket": "b", "catalog_table": "t", "idempotency_table": "i"}


class CountingSession:
    def __init__(self) -> None:
        self.made: list[str] = []

    def client(self, service: str, **kwargs: object) -> object:
        self.made.append(service)
        return object()


@pytest.fixture
def no_cliplake_env(monkeypatch):
    import os

    for key in [k for k in os.environ if k.startswith("CLIPLAKE_")]:
        monkeypatch.delenv(key)
    get_settings.cache_clear()
    get_services.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()
    get_services.cache_clear()


def test_a_function_builds_only_the_clients_it_uses_once():
    session = CountingSession()
    svc = build_services(IndexSettings(**INDEX), session)  # type: ignore[arg-type]
    assert session.made == []
    assert svc.lake.bucket == "b" and svc.catalog.table == "t" and svc.catalog is svc.catalog
    assert svc.catalog.client is svc.dynamodb  # the catalog's client is the idempotency layer's
    assert session.made == ["s3", "dynamodb"]
    svc.tokens  # noqa: B018 (built, not called)
    assert session.made == ["s3", "dynamodb", "stepfunctions"]


def test_an_adapter_whose_settings_the_function_lacks_is_refused_before_any_client():
    session = CountingSession()
    svc = build_services(IndexSettings(**INDEX), session)  # type: ignore[arg-type]
    for adapter, group in (("completions", "RekognitionJobsSettings"), ("campaigns", "CampaignsSettings")):
        with pytest.raises(SettingsError, match=f"IndexSettings has no {group}"):
            getattr(svc, adapter)
    assert session.made == []


def test_adapters_given_by_name_are_used_and_unknown_names_refused():
    svc = Services(IndexSettings(**INDEX), tokens=None)
    assert svc.tokens is None  # no batch wrapper
    with pytest.raises(TypeError, match="unknown services: sns"):
        Services(IndexSettings(**INDEX), sns=object())


def test_other_settings_keep_the_adapters_built():
    session = CountingSession()
    settings = AnalyzeSettings(**INDEX, rekognition_topic_arn="arn:t", rekognition_role_arn="arn:r",
                               segment_queue_url="https://q")  # fmt: skip
    svc = build_services(settings, session)  # type: ignore[arg-type]
    lake = svc.lake
    other = svc.replaced(settings.model_copy(update={"single_pass_max_s": 60}))
    assert other.lake is lake and other.settings.single_pass_max_s == 60 and session.made == ["s3"]
    tokenless = other.replaced(tokens=None)
    assert tokenless.tokens is None and tokenless.lake is lake and tokenless.settings is other.settings


def test_a_missing_variable_is_named_with_what_it_is(no_cliplake_env):
    no_cliplake_env.setenv("CLIPLAKE_BUCKET", "media")
    no_cliplake_env.setenv("CLIPLAKE_CATALOG_TABLE", "")  # empty counts as not set
    with pytest.raises(SettingsError) as err:
        load_settings(IngestSettings)
    assert str(err.value) == "IngestSettings: CLIPLAKE_CATALOG_TABLE is not set (the DynamoDB catalog table)"
    no_cliplake_env.delenv("CLIPLAKE_BUCKET")
    with pytest.raises(SettingsError, match=r"CLIPLAKE_BUCKET is not set \(the media bucket, the data lake\)"):
        load_settings(IngestSettings)


def test_an_invalid_value_is_named_too(no_cliplake_env):
    for name, value in INDEX.items():
        no_cliplake_env.setenv(f"CLIPLAKE_{name.upper()}", value)
    no_cliplake_env.setenv("CLIPLAKE_REKOGNITION_TOPIC_ARN", "arn:t")
    no_cliplake_env.setenv("CLIPLAKE_REKOGNITION_ROLE_ARN", "arn:r")
    no_cliplake_env.setenv("CLIPLAKE_SEGMENT_QUEUE_URL", "https://q")
    no_cliplake_env.setenv("CLIPLAKE_MAX_JOBS_IN_FLIGHT", "many")
    with pytest.raises(SettingsError, match="CLIPLAKE_MAX_JOBS_IN_FLIGHT='many' is not valid"):
        load_settings(AnalyzeSettings)
    no_cliplake_env.setenv("CLIPLAKE_MAX_JOBS_IN_FLIGHT", "3")
    assert load_settings(AnalyzeSettings).max_jobs_in_flight == 3


def test_a_function_fails_at_its_start_naming_the_variable(no_cliplake_env):
    """The handler builds its services before the first record: a missing variable fails the invocation at once."""
    from cliplake.handlers import batch

    for name, value in INDEX.items():
        no_cliplake_env.setenv(f"CLIPLAKE_{name.upper()}", value)
    no_cliplake_env.setenv("CLIPLAKE_PIXABAY_SECRET_ID", "pixabay")
    with pytest.raises(SettingsError, match=r"CLIPLAKE_CAMPAIGNS_PARAMETER_PATH is not set \(the SSM path"):
        batch.handler({"Records": []}, FakeContext())
    no_cliplake_env.setenv("CLIPLAKE_CAMPAIGNS_PARAMETER_PATH", "/cliplake/campaigns")
    svc = get_services(batch.SETTINGS)  # what the handler's next start builds
    assert svc.group(CampaignsSettings).campaigns_parameter_path == "/cliplake/campaigns"


class FakeContext:
    function_name, memory_limit_in_mb, aws_request_id = "BatchFunction", 512, "req-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:BatchFunction"
