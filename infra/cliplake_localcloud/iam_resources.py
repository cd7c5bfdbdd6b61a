"""Resource-aware IAM authorisation for moto: what each request is about, as IAM sees it.

Out of the box moto's authorisation (`moto.core.authorization`) resolves a request's resource only for S3 and SQS
and checks every other request against `"*"`: a statement scoped to a table, topic, parameter, secret or state
machine is then wrongly refused. This module gives moto, per service, the (action, resource) pairs IAM evaluates
for a request, written as a small extension of moto's own hook (`BaseResponse._determine_resource`) so that it can
be proposed upstream:

- DynamoDB: `TableName` -> `table/<name>` (a table ARN is taken as is), with `IndexName` -> `table/<name>/index/<i>`;
  BatchGetItem/BatchWriteItem: every table of `RequestItems`; TransactGetItems/TransactWriteItems: each item as the
  action IAM checks for it (`GetItem`, `PutItem`, `UpdateItem`, `DeleteItem`, `ConditionCheckItem`; IAM has no
  `dynamodb:Transact*` action).
- SNS: `TopicArn` (or `TargetArn`).
- SSM: `Name`, each of `Names`, `Path` -> `parameter<name>`.
- Secrets Manager: `SecretId` by name or ARN -> the secret's ARN (with its random suffix); `Name` on create.
- Step Functions: `stateMachineArn`, `executionArn`; a task token -> the state machine of the execution that issued
  it (an unknown token is left to the API, which answers InvalidToken/TaskDoesNotExist, as AWS validates the token
  before it authorises).

Every pair must be allowed (an explicit Deny anywhere wins), as IAM does for batch requests. Three more gaps of
moto's authorisation are closed here: a role's inline policy created by moto's CloudFormation is kept as a dict,
which moto's policy evaluation cannot read (KeyError); a GET without a body (such as Lambda's
ListFunctions or Scheduler's GetSchedule) had moto's parsed query string, or its headers, signed as its payload, so
its signature never matched;  a denial of a JSON-protocol request is answered in that protocol
(`AccessDeniedException` with IAM's message naming the action and the resource, which botocore then reports as
such) rather than as XML; and presigned S3 URLs (query-string SigV4: `X-Amz-Credential`, `X-Amz-Signature`) are
authenticated and authorised like signed requests, with their expiry, instead of failing with a KeyError; a
multi-object delete (DeleteObjects) is authorised as `s3:DeleteObject` on each of its keys, as IAM does, not on
the bucket (every key must be allowed: AWS would answer the refused keys one by one, moto refuses the request).
Conditions stay as moto evaluates them (`StringEquals` on a few context keys); the static check of the template
(tests/test_iam.py) covers the others (`s3:prefix`, `iam:PassedToService`).

    install()    # before the moto server handles requests; uninstall() restores moto
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlparse

log = logging.getLogger(__name__)

Permission = tuple[str, str]  # (IAM action, resource ARN)
Resolver = Callable[[Any], "list[Permission] | None"]

_TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def _json_body(response: Any) -> dict[str, Any]:
    """The request's parameters (moto's parsed ones when it parsed them, else the JSON body)."""
    params = getattr(response, "params", None)
    if isinstance(params, dict) and params:
        return params
    body = response.body
    if isinstance(body, dict):
        return body
    try:
        body = json.loads(body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _action(response: Any) -> str:
    return f"{response.service_name}:{response._get_action()}"


# ---------------------------------------------------------------------------------------------------- services
def _dynamodb(response: Any) -> list[Permission] | None:
    body, action = _json_body(response), _action(response)
    prefix = f"arn:aws:dynamodb:{response.region}:{response.current_account}:table/"

    def table(name: str, index: str | None = None) -> str:
        arn = name if name.startswith("arn:") else prefix + name
        return f"{arn}/index/{index}" if index else arn

    if "TableName" in body:
        return [(action, table(body["TableName"], body.get("IndexName")))]
    if "RequestItems" in body:  # BatchGetItem, BatchWriteItem
        return [(action, table(name)) for name in body["RequestItems"]]
    if "TransactItems" in body:
        out = []
        for item in body["TransactItems"]:
            for kind, spec in item.items():
                out.append((f"dynamodb:{_TRANSACT_ACTIONS.get(kind, kind)}", table(spec["TableName"])))
        return out
    return None


def _sns(response: Any) -> list[Permission] | None:
    arn = response._get_param("TopicArn") or response._get_param("TargetArn")
    return [(_action(response), arn)] if arn else None


def _ssm(response: Any) -> list[Permission] | None:
    body, action = _json_body(response), _action(response)
    prefix = f"arn:aws:ssm:{response.region}:{response.current_account}:parameter"

    def parameter(name: str) -> str:
        if name.startswith("arn:"):
            return name
        return prefix + (name if name.startswith("/") else "/" + name)

    names = [body["Name"]] if "Name" in body else list(body.get("Names", []))
    if "Path" in body:
        names.append(body["Path"])
    return [(action, parameter(n)) for n in names] or None


def _secretsmanager(response: Any) -> list[Permission] | None:
    from moto.secretsmanager.models import secretsmanager_backends

    body, action = _json_body(response), _action(response)
    ident = body.get("SecretId") or body.get("Name")
    if not ident:
        return None
    if ident.startswith("arn:"):
        return [(action, ident)]
    secret = secretsmanager_backends[response.current_account][response.region].secrets.get(ident)
    region, account = response.region, response.current_account
    arn = getattr(secret, "arn", None) or f"arn:aws:secretsmanager:{region}:{account}:secret:{ident}"
    return [(action, arn)]


def state_machine_of_token(account: str, region: str, token: str) -> str | None:
    """The ARN of the state machine whose execution issued `token` (None: no execution knows it)."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    backend = stepfunctions_parser_backends[account][region]
    for machine in list(backend.state_machines):
        for execution in list(getattr(machine, "executions", [])):
            worker = getattr(execution, "exec_worker", None)
            pool = getattr(getattr(getattr(worker, "env", None), "callback_pool_manager", None), "_pool", {})
            if token in pool:
                return machine.arn
    return None


def _stepfunctions(response: Any) -> list[Permission] | None:
    body, action = _json_body(response), _action(response).replace("stepfunctions:", "states:")
    for key in ("stateMachineArn", "executionArn", "mapRunArn", "activityArn"):
        if body.get(key):
            return [(action, body[key])]
    if body.get("taskToken"):
        machine = state_machine_of_token(response.current_account, response.region, body["taskToken"])
        return [(action, machine)] if machine else []  # unknown token: the API answers InvalidToken
    return None


#: SQS's batch actions are authorised as their single-message action (as IAM does: there is no sqs:*Batch action)
_SQS_BATCH = {
    "SendMessageBatch": "SendMessage",
    "DeleteMessageBatch": "DeleteMessage",
    "ChangeMessageVisibilityBatch": "ChangeMessageVisibility",
}


def _sqs(response: Any) -> list[Permission] | None:
    single = _SQS_BATCH.get(response._get_action())
    url = _json_body(response).get("QueueUrl") or ""
    if single is None or not url:
        return None  # moto's own check
    account, name = url.rstrip("/").split("/")[-2:]
    return [(f"sqs:{single}", f"arn:aws:sqs:{response.region}:{account}:{name}")]


#: service name (as moto's responses name it) -> the request's permissions; None from a resolver means "*".
RESOLVERS: dict[str, Resolver] = {
    "sqs": _sqs,
    "dynamodb": _dynamodb,
    "sns": _sns,
    "ssm": _ssm,
    "secretsmanager": _secretsmanager,
    "stepfunctions": _stepfunctions,
}


# ------------------------------------------------------------------------------------------------ the checks
def _deny(response: Any, iam_request: Any, action: str, resource: str) -> None:
    from moto.core.exceptions import AccessDeniedError, JsonRESTError

    principal = iam_request._access_key.arn
    detail = f"{action} on resource: {resource} because no identity-based policy allows the {action} action"
    if "json" in (response.headers.get("Content-Type") or "").lower():
        error = JsonRESTError("AccessDeniedException", f"User: {principal} is not authorized to perform: {detail}")
        error.code = 400
        raise error
    raise AccessDeniedError(user_arn=principal, action=detail)


def _permitted(iam_request: Any, action: str, resource: str) -> bool:
    from moto.iam.access_control import IAMPolicy, PermissionResult

    if action == "sts:GetCallerIdentity":
        return True
    permitted = False
    for policy in iam_request._access_key.collect_policies():
        result = IAMPolicy(policy).is_action_permitted(action, resource)
        if result == PermissionResult.DENIED:
            return False
        permitted |= result == PermissionResult.PERMITTED
    return permitted


def _authenticate_and_authorize_normal_action(self: Any, resource: str = "*") -> None:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.iam.access_control import IAMRequest

    resolver = RESOLVERS.get(getattr(self, "service_name", "") or "")
    if resolver is None or ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        return _ORIGINAL["normal"](self, resource)
    permissions = resolver(self)
    if permissions is None:  # nothing resource-specific in the request: moto's own check against "*"
        return _ORIGINAL["normal"](self, resource)
    iam_request = _iam_request(self, IAMRequest)
    iam_request.check_signature()
    for action, arn in permissions:
        if not _permitted(iam_request, action, arn):
            _deny(self, iam_request, action, arn)
    return None


def _iam_request(response: Any, cls: type) -> Any:
    parsed = urlparse(response.uri)
    path = response.raw_path + (f"?{parsed.query}" if parsed.query else "")
    return cls(
        account_id=response.current_account,
        method=response.method,
        path=path,
        data=response.data,
        body=response.raw_body,
        headers=response.headers,
        action=response._get_action(),
    )


# ----------------------------------------------------------------------------------------- presigned S3 URLs
def _presigned(response: Any) -> dict[str, str] | None:
    if "Authorization" in response.headers:
        return None
    query = {k: v[0] if isinstance(v, list) else v for k, v in (getattr(response, "querystring", None) or {}).items()}
    query = query or dict(parse_qsl(urlparse(response.uri).query, keep_blank_values=True))
    if "AWSAccessKeyId" in query and "Signature" in query:  # SigV2: not verified here, refused rather than crash
        query["X-Amz-Credential"] = query["AWSAccessKeyId"] + "/-/-/s3/sigv2"
        return query
    return query if "X-Amz-Credential" in query and "X-Amz-Signature" in query else None


def _check_presigned(response: Any, query: dict[str, str], resource: str) -> None:
    """SigV4 query authentication: the key, the expiry, the signature, then the permission."""
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from moto.iam.access_control import CreateAccessKeyFailure, create_access_key
    from moto.s3.exceptions import S3AccessDeniedError, S3InvalidAccessKeyIdError, S3SignatureDoesNotMatchError

    access_key_id, _, region, service, scope = query["X-Amz-Credential"].split("/", 4)
    if scope == "sigv2":
        log.info("presigned URL in SigV2: refused (only SigV4 query authentication is verified locally)")
        raise S3AccessDeniedError()
    headers = {"X-Amz-Security-Token": query["X-Amz-Security-Token"]} if "X-Amz-Security-Token" in query else {}
    try:
        key = create_access_key(response.current_account, "aws", access_key_id, headers)
    except CreateAccessKeyFailure as exc:
        raise S3InvalidAccessKeyIdError() from exc
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    if time.time() > signed_at + int(query.get("X-Amz-Expires", "3600")):
        raise S3AccessDeniedError()  # AWS: AccessDenied, "Request has expired"
    # moto's S3 writes the operation into the parsed query string ("Action"): not part of the signed URL
    signed = {k: v for k, v in query.items() if k not in {"X-Amz-Signature", "Action"}}
    unsigned = "&".join(f"{k}={quote(v, safe='-_.~')}" for k, v in signed.items())
    host = response.headers.get("Host", "")
    path = quote(unquote(urlparse(response.uri).path), safe="/~")
    request = AWSRequest(method=response.method, url=f"http://{host}{path}?{unsigned}", headers={"host": host})
    request.context["timestamp"] = query["X-Amz-Date"]
    auth = S3SigV4QueryAuth(key.create_credentials(), service, region, expires=int(query.get("X-Amz-Expires", 3600)))
    canonical = auth.canonical_request(request)
    if auth.signature(auth.string_to_sign(request, canonical), request) != query["X-Amz-Signature"]:
        log.info("presigned URL: signature mismatch for %s %s", response.method, path)
        raise S3SignatureDoesNotMatchError()
    action = f"s3:{response._get_action()}" if response._get_action() else "s3:GetObject"

    class _Request:
        _access_key = key

    if not _permitted(_Request, action, resource):
        raise S3AccessDeniedError()


def _authenticate_and_authorize_s3_action(
    self: Any, bucket_name: str | None = None, key_name: str | None = None
) -> None:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    query = _presigned(self)
    if query is None or ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
        if bucket_name and key_name is None and self.method == "POST" and self.is_delete_keys():
            for key in _deleted_keys(self.body):  # DeleteObjects: IAM checks s3:DeleteObject on each key
                _ORIGINAL["s3"](self, bucket_name, key)
            return None
        return _ORIGINAL["s3"](self, bucket_name, key_name)
    arn = f"{bucket_name or '*'}/{key_name}" if key_name else (bucket_name or "*")
    _check_presigned(self, query, f"arn:aws:s3:::{arn}")
    return None


def _deleted_keys(body: bytes | str) -> list[str]:
    import xmltodict

    objects = xmltodict.parse(body or "<Delete/>").get("Delete", {}) or {}
    objects = objects.get("Object", [])
    return [o["Key"] for o in (objects if isinstance(objects, list) else [objects])]


# ------------------------------------------------------------------------------------------------ policies
def _policy_init(self: Any, policy: Any) -> None:
    """moto's `IAMPolicy.__init__`, also for a policy document that is a dict (CloudFormation-created policies)."""
    if isinstance(policy, dict) and "policy_document" not in policy and "Statement" in policy:
        policy = json.dumps(policy)
    elif isinstance(policy, dict) and isinstance(policy.get("policy_document"), dict):
        policy = json.dumps(policy["policy_document"])
    _ORIGINAL["policy"](self, policy)


def _create_aws_request(self: Any) -> Any:
    """moto's `IAMRequestBase._create_aws_request`, with the empty payload a bodiless GET/HEAD/DELETE signed (moto signs
    its parsed query string, or the headers, in its place)."""
    if not self._body and str(self._method).upper() in {"GET", "HEAD", "DELETE"}:
        saved, self._data = self._data, b""
        try:
            return _ORIGINAL["aws_request"](self)
        finally:
            self._data = saved
    return _ORIGINAL["aws_request"](self)


# ------------------------------------------------------------------------------------------------ install
_ORIGINAL: dict[str, Any] = {}


def install() -> None:
    """Patch moto's authorisation hooks (idempotent)."""
    from moto.core.authorization import ActionAuthenticatorMixin

    if _ORIGINAL:
        return
    from moto.iam.access_control import IAMPolicy, IAMRequestBase

    _ORIGINAL["policy"] = IAMPolicy.__init__
    IAMPolicy.__init__ = _policy_init
    _ORIGINAL["aws_request"] = IAMRequestBase._create_aws_request
    IAMRequestBase._create_aws_request = _create_aws_request
    _ORIGINAL["normal"] = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action
    _ORIGINAL["s3"] = ActionAuthenticatorMixin._authenticate_and_authorize_s3_action
    ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = _authenticate_and_authorize_normal_action
    ActionAuthenticatorMixin._authenticate_and_authorize_s3_action = _authenticate_and_authorize_s3_action


def uninstall() -> None:
    from moto.core.authorization import ActionAuthenticatorMixin

    if not _ORIGINAL:
        return
    ActionAuthenticatorMixin._authenticate_and_authorize_normal_action = _ORIGINAL.pop("normal")
    ActionAuthenticatorMixin._authenticate_and_authorize_s3_action = _ORIGINAL.pop("s3")
    from moto.iam.access_control import IAMPolicy, IAMRequestBase

    IAMPolicy.__init__ = _ORIGINAL.pop("policy")
    IAMRequestBase._create_aws_request = _ORIGINAL.pop("aws_request")
