"""Services: a function builds only the clients it uses, once, all from its own session."""

from __future__ import annotations

import pytest

from cliplake.services import Services, build_services
from cliplake.settings import Settings


class CountingSession:
    def __init__(self) -> None:
        self.made: list[str] = []

    def client(self, service: str, **kwargs: object) -> object:
        self.made.append(service)
        return object()


def test_a_function_builds_only_the_clients_it_uses_once():
    session = CountingSession()
    svc = build_services(Settings(bucket="b", catalog_table="t"), session)  # type: ignore[arg-type]
    assert session.made == []
    assert svc.lake.bucket == "b" and svc.catalog.table == "t" and svc.catalog is svc.catalog
    assert svc.catalog.client is svc.dynamodb  # the catalog's client is the idempotency layer's
    assert session.made == ["s3", "dynamodb"]
    svc.completions.announce  # noqa: B018 (built, not called)
    assert session.made == ["s3", "dynamodb", "sns"]


def test_adapters_given_by_name_are_used_and_unknown_names_refused():
    svc = Services(Settings(), tokens=None)
    assert svc.tokens is None  # no batch wrapper
    with pytest.raises(TypeError, match="unknown services: sns"):
        Services(Settings(), sns=object())


def test_other_settings_keep_the_adapters_built():
    session = CountingSession()
    svc = build_services(Settings(bucket="b"), session)  # type: ignore[arg-type]
    lake = svc.lake
    other = svc.replaced(Settings(bucket="b", single_pass_max_s=60))
    assert other.lake is lake and other.settings.single_pass_max_s == 60 and session.made == ["s3"]
    tokenless = other.replaced(tokens=None)
    assert tokenless.tokens is None and tokenless.lake is lake and tokenless.settings is other.settings
