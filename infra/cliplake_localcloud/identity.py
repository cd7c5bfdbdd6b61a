"""Who calls the local cloud: IAM enforced by moto, an administrator for the plumbing, services assuming roles.

On AWS nothing but a signed request from an IAM principal gets through, and each part of the system runs as its
own principal. Here, likewise:

- `Enforcement` switches moto's own IAM authorisation on (`INITIAL_NO_AUTH_ACTION_COUNT = 0`, process-global, so
  it is restored when the cloud stops) after creating an administrator: an IAM user with an inline `*` policy and
  access keys. The local cloud's plumbing (stack deploy, wiring, dispatcher, scheduler, CLI, dashboard, tests'
  admin clients) signs with those keys; the fixed "testing" keys are refused like any unknown key.
- `ServiceRoles` plays the AWS services that assume roles: Lambda (each function's execution role), Rekognition
  (the job's NotificationChannel.RoleArn), Step Functions (the state machine's role) and EventBridge Scheduler.
  On AWS no administrator could assume those roles (their trust policies name a service principal, not an IAM
  user), so the service's own assumption is done here: the role's trust policy must allow `sts:AssumeRole` by the
  service principal (as AWS checks; conditions on `aws:SourceAccount`/`aws:SourceArn` are evaluated), then
  moto's STS issues the session credentials. Credentials are cached per role and refreshed before they expire.
- `step_functions_under_their_role()` makes moto's Step Functions service integrations (sqs:sendMessage,
  sns:publish, ...) sign with the credentials of the execution's role instead of the fixed keys moto uses.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

log = logging.getLogger(__name__)

ADMIN_USER = "cliplake-local-admin"
ADMIN_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
SESSION_S = 3600
REFRESH_BEFORE_S = 300  # a role's credentials are renewed this long before they expire


class TrustPolicyError(PermissionError):
    """The role's trust policy does not let the service assume it (AWS refuses the same way)."""


@dataclass(frozen=True)
class SessionCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str = ""
    expires_at: float = float("inf")  # epoch seconds

    def env(self) -> dict[str, str]:
        """As the Lambda runtime exports them."""
        out = {"AWS_ACCESS_KEY_ID": self.access_key_id, "AWS_SECRET_ACCESS_KEY": self.secret_access_key}
        if self.session_token:
            out["AWS_SESSION_TOKEN"] = self.session_token
        return out

    def client_kwargs(self) -> dict[str, str]:
        out = {"aws_access_key_id": self.access_key_id, "aws_secret_access_key": self.secret_access_key}
        if self.session_token:
            out["aws_session_token"] = self.session_token
        return out


# ------------------------------------------------------------------------------------------------ enforcement
class Enforcement:
    """Switch moto's IAM authorisation on for this process (moto's settings are process-global) and off again."""

    def __init__(self) -> None:
        self._saved: tuple[Any, int] | None = None

    @staticmethod
    def create_admin(iam_client: Any, account_id: str) -> SessionCredentials:
        """The administrator of the plumbing (call before `enable`, with any keys). A restored cloud (a data
        directory) already has one: its key is reused, so that shells exported by `cliplake env` before a restart
        still reach the cloud after it."""
        with suppress(iam_client.exceptions.EntityAlreadyExistsException):
            iam_client.create_user(UserName=ADMIN_USER)
        iam_client.put_user_policy(
            UserName=ADMIN_USER, PolicyName="AdministratorAccess", PolicyDocument=json.dumps(ADMIN_POLICY)
        )
        from moto.iam.models import iam_backends  # the secret of an existing key: IAM itself never returns it

        user = iam_backends[account_id]["global"].users[ADMIN_USER]
        active = [k for k in user.access_keys if k.status == "Active"]
        if active:
            return SessionCredentials(active[0].access_key_id, active[0].secret_access_key)
        key = iam_client.create_access_key(UserName=ADMIN_USER)["AccessKey"]
        return SessionCredentials(key["AccessKeyId"], key["SecretAccessKey"])

    def enable(self) -> None:
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin

        if self._saved is None:
            self._saved = (settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count)
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        ActionAuthenticatorMixin.request_count = 0

    def disable(self) -> None:
        """Back to what it was before `enable` (moto's default: no authorisation), for in-process `mock_aws` users."""
        if self._saved is None:
            return
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin

        settings.INITIAL_NO_AUTH_ACTION_COUNT, ActionAuthenticatorMixin.request_count = self._saved
        self._saved = None

    @staticmethod
    def enabled() -> bool:
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin

        return ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT


# ---------------------------------------------------------------------------------------------- service roles
def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _condition_holds(conditions: dict[str, Any], context: dict[str, str]) -> bool:
    """The operators trust policies use (`StringEquals`, `StringLike`, `ArnEquals`, `ArnLike`); a key missing from
    the request's context fails the condition, as in IAM. Other operators are refused rather than ignored."""
    for operator, tests in conditions.items():
        like = operator in {"StringLike", "ArnLike"}
        if operator not in {"StringEquals", "StringLike", "ArnEquals", "ArnLike"}:
            return False
        for key, expected in tests.items():
            actual = context.get(key.lower())
            if actual is None:
                return False
            patterns = [str(v) for v in _as_list(expected)]
            if not any(fnmatchcase(actual, p) if like else actual == p for p in patterns):
                return False
    return True


def trust_allows(trust_policy: dict[str, Any], service: str, context: dict[str, str]) -> bool:
    """Whether `service` (e.g. "lambda.amazonaws.com") may `sts:AssumeRole` under this trust policy."""
    allowed = False
    for statement in _as_list(trust_policy.get("Statement", [])):
        actions = _as_list(statement.get("Action", []))
        if not any(fnmatchcase("sts:AssumeRole", a) for a in actions):
            continue
        principal = statement.get("Principal", {})
        services = _as_list(principal.get("Service", [])) if isinstance(principal, dict) else []
        if principal != "*" and service not in services:
            continue
        if not _condition_holds(statement.get("Condition", {}), context):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = True
    return allowed


class ServiceRoles:
    """Session credentials of roles as AWS services obtain them, cached per (role, service) and refreshed."""

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region
        self._cache: dict[tuple[str, str], SessionCredentials] = {}
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.RLock()
        self.assumed = 0  # how many sessions were issued (a test reads it)

    def client(
        self, role_arn: str, service: str, api: str, region: str, endpoint_url: str | None = None, **kw: Any
    ) -> Any:
        """A boto3 client of `api` signing with the role's credentials as `service` assumed it (cached per session)."""
        from cliplake.services import new_session

        creds = self.credentials(role_arn, service)
        key = (creds.access_key_id, api, region, endpoint_url, tuple(sorted(kw)))
        with self._lock:
            client = self._clients.get(key)
        if client is None:
            client = new_session().client(api, region_name=region, endpoint_url=endpoint_url, **kw,
                                          **creds.client_kwargs())  # fmt: skip
            with self._lock:
                client = self._clients.setdefault(key, client)
        return client

    def credentials(self, role_arn: str, service: str, source_arn: str = "") -> SessionCredentials:
        key = (role_arn, service)
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached.expires_at - time.time() > REFRESH_BEFORE_S:
                return cached
            fresh = self._assume(role_arn, service, source_arn)
            self._cache[key] = fresh
            return fresh

    def _assume(self, role_arn: str, service: str, source_arn: str) -> SessionCredentials:
        from moto.iam.models import iam_backends
        from moto.sts.models import sts_backends

        partition = role_arn.split(":")[1] if role_arn.startswith("arn:") else "aws"
        iam = iam_backends[self.account_id][partition]
        try:
            role = iam.get_role_by_arn(role_arn)
        except Exception as exc:
            raise TrustPolicyError(f"{service} cannot assume {role_arn}: no such role") from exc
        document = role.assume_role_policy_document
        trust = json.loads(document) if isinstance(document, str) else document
        context = {"aws:sourceaccount": self.account_id}
        if source_arn:
            context["aws:sourcearn"] = source_arn
        if not trust_allows(trust, service, context):
            raise TrustPolicyError(
                f"{service} is not authorized to perform sts:AssumeRole on {role_arn}: its trust policy does not "
                f"allow the service principal {service}"
            )
        session = service.split(".", maxsplit=1)[0] + "-" + role_arn.rsplit("/", 1)[-1][:40]
        assumed = sts_backends[self.account_id][partition].assume_role(
            region_name=self.region,
            role_session_name=session[:64],
            role_arn=role_arn,
            policy=None,
            duration=SESSION_S,
            external_id=None,
        )
        self.assumed += 1
        expires = assumed.expiration
        expires_at = expires.replace(tzinfo=UTC).timestamp() if isinstance(expires, datetime) else time.time() + 3600
        return SessionCredentials(assumed.access_key_id, assumed.secret_access_key, assumed.session_token, expires_at)


# -------------------------------------------------------------------------------- Step Functions integrations
_SFN_MODULES = [
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    # a Distributed Map's ItemReader (s3:getObject): moto reads the items with the fixed keys too
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval.resource_eval_s3",
]


@contextmanager
def step_functions_under_their_role(roles: ServiceRoles, endpoint_url: str) -> Iterator[None]:
    """moto's Step Functions integrations call the moto server with fixed keys ("ak"/"sk"); under enforcement they
    sign with the execution role's credentials, assumed as states.amazonaws.com, as on AWS."""
    import importlib

    from botocore.config import Config

    config = Config(parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1})

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        role_arn = getattr(state_credentials, "role_arn", "") or ""
        return roles.client(role_arn, "states.amazonaws.com", service, region, endpoint_url, config=config)

    patched = []
    for name in _SFN_MODULES:
        module = importlib.import_module(name)
        if hasattr(module, "boto_client_for"):
            patched.append((module, module.boto_client_for))
            module.boto_client_for = boto_client_for
    try:
        yield
    finally:
        for module, original in patched:
            module.boto_client_for = original
