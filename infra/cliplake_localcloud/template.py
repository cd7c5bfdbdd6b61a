"""The SAM template as data: load it, transform it to CloudFormation offline, resolve its intrinsics.

`infra/template.yaml` is the single description of the system. The tests lint its transform, and the local
cloud deploys the transform to moto and then reads from it whatever moto does not apply itself (bucket
notifications, SNS subscriptions, queue policies, ...), resolving intrinsic functions with `Resolver` over the
stack's physical resources.
"""

from __future__ import annotations

import copy
import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

# aws-sam-translator's Translator counts its own usage with a publisher that does nothing and, once collected,
# logs a warning that those counts were never published: nothing of ours is lost, so that logger stays quiet.
logging.getLogger("samtranslator.metrics.metrics").setLevel(logging.ERROR)

TEMPLATE_PATH = Path(__file__).resolve().parents[1] / "template.yaml"
#: What `sam package` would put in place of a local CodeUri; the transform only needs an s3:// URI.
PLACEHOLDER_CODE_URI = "s3://cliplake-artifacts/functions.zip"
SERVERLESS_FUNCTION = "AWS::Serverless::Function"
SERVERLESS_STATE_MACHINE = "AWS::Serverless::StateMachine"


class _NoPolicyLoader:
    """Managed-policy loader for the translator: offline, so no managed policy names are looked up."""

    def load(self) -> dict[str, str]:
        return {}


def load_template(path: str | Path | None = None) -> dict[str, Any]:
    """Parse a SAM/CloudFormation YAML template, short-form intrinsics (`!Ref`, `!Sub`, ...) included."""
    return yaml_parse(Path(path or TEMPLATE_PATH).read_text(encoding="utf-8"))


def package(
    template: dict[str, Any], code_uri: str = PLACEHOLDER_CODE_URI, base_dir: str | Path | None = None
) -> dict[str, Any]:
    """A copy of `template` whose local `CodeUri`s point at `code_uri` and whose state machines' local
    `DefinitionUri` files are inlined as `Definition` (what `sam package` does, minus the upload)."""
    packaged = copy.deepcopy(template)
    base = Path(base_dir) if base_dir else TEMPLATE_PATH.parent
    for res in packaged.get("Resources", {}).values():
        props = res.get("Properties", {})
        uri = props.get("DefinitionUri")
        if res.get("Type") == SERVERLESS_STATE_MACHINE and isinstance(uri, str) and not uri.startswith("s3://"):
            props["Definition"] = yaml_parse((base / uri).read_text(encoding="utf-8"))
            del props["DefinitionUri"]
    holders = [packaged.get("Globals", {}).get("Function", {})]
    holders += [
        res.get("Properties", {})
        for res in packaged.get("Resources", {}).values()
        if res.get("Type") == SERVERLESS_FUNCTION
    ]
    for props in holders:
        uri = props.get("CodeUri")
        if isinstance(uri, str) and not uri.startswith("s3://"):
            props["CodeUri"] = code_uri
    return packaged


@contextmanager
def _default_region(region: str) -> Iterator[None]:
    """The translator builds a boto3 session at import/translate time and needs a region; never a network."""
    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ.setdefault("AWS_DEFAULT_REGION", region)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)


def transform(
    template: dict[str, Any],
    code_uri: str = PLACEHOLDER_CODE_URI,
    region: str = "us-east-1",
    parameters: dict[str, Any] | None = None,
    base_dir: str | Path | None = None,
) -> dict[str, Any]:
    """SAM -> CloudFormation, offline (aws-sam-translator). The input is not modified."""
    # imported here: a restart on a data directory whose stack is unchanged does not transform (0.3-0.6 s saved)
    from samtranslator.translator.transform import transform as sam_transform

    params = {"AWS::Region": region, **(parameters or {})}
    with _default_region(region):
        return sam_transform(package(template, code_uri, base_dir), params, _NoPolicyLoader())


def resources_of_type(template: dict[str, Any], *types: str) -> dict[str, dict[str, Any]]:
    """`{logical id: resource}` of the template's resources of any of `types`, in template order."""
    return {lid: res for lid, res in template.get("Resources", {}).items() if res.get("Type") in types}


# ------------------------------------------------------------------------------------------- the resolver
class _NoValue:
    """`Ref: AWS::NoValue`: the enclosing key or list item disappears."""


NO_VALUE = _NoValue()
_SUB_RE = re.compile(r"\$\{([^}]+)\}")

# GetAtt over a physical id: (resource type, attribute) -> f(physical id, resolver).
_ATTRS: dict[tuple[str, str], Callable[[str, Resolver], str]] = {
    ("AWS::SQS::Queue", "Arn"): lambda p, r: r.arn("sqs", p.rstrip("/").rsplit("/", 1)[-1]),
    ("AWS::SQS::Queue", "QueueName"): lambda p, r: p.rstrip("/").rsplit("/", 1)[-1],
    ("AWS::SQS::Queue", "QueueUrl"): lambda p, r: p,
    ("AWS::SNS::Topic", "TopicArn"): lambda p, r: p,
    ("AWS::SNS::Topic", "TopicName"): lambda p, r: p.rsplit(":", 1)[-1],
    ("AWS::S3::Bucket", "Arn"): lambda p, r: f"arn:{r.partition}:s3:::{p}",
    ("AWS::S3::Bucket", "DomainName"): lambda p, r: f"{p}.s3.amazonaws.com",
    ("AWS::S3::Bucket", "RegionalDomainName"): lambda p, r: f"{p}.s3.{r.region}.amazonaws.com",
    ("AWS::DynamoDB::Table", "Arn"): lambda p, r: r.arn("dynamodb", f"table/{p}"),
    ("AWS::Lambda::Function", "Arn"): lambda p, r: r.arn("lambda", f"function:{p}"),
    ("AWS::StepFunctions::StateMachine", "Arn"): lambda p, r: p,
    ("AWS::StepFunctions::StateMachine", "Name"): lambda p, r: p.rsplit(":", 1)[-1],
    ("AWS::Events::Rule", "Arn"): lambda p, r: r.arn("events", f"rule/{p.rsplit('|', 1)[-1]}"),
    ("AWS::IAM::Role", "Arn"): lambda p, r: f"arn:{r.partition}:iam::{r.account_id}:role{r.role_path(p)}{p}",
}


class Resolver:
    """Evaluates CloudFormation intrinsics of a deployed template over its stack's physical resource ids.

    Supports Ref (resources, parameters, pseudo parameters), Fn::GetAtt (the attributes in `_ATTRS`),
    Fn::Sub, Fn::Join, Fn::Select, Fn::Split, Fn::FindInMap, Fn::If / Condition (Fn::Equals, Not, And, Or).
    """

    def __init__(
        self,
        template: dict[str, Any],
        physical_ids: dict[str, str],
        parameters: dict[str, str] | None = None,
        *,
        region: str,
        account_id: str,
        stack_name: str,
        stack_id: str = "",
        partition: str = "aws",
    ) -> None:
        self.template = template
        self.physical_ids = physical_ids
        self.region, self.account_id, self.partition = region, account_id, partition
        declared = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
        self.parameters = {**declared, **(parameters or {})}
        self.pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": account_id,
            "AWS::StackName": stack_name,
            "AWS::StackId": stack_id,
            "AWS::Partition": partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }

    # --- helpers used by the attribute table
    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account_id}:{resource}"

    def role_path(self, physical_id: str) -> str:
        for lid, res in resources_of_type(self.template, "AWS::IAM::Role").items():
            if self.physical_ids.get(lid) == physical_id:
                return res.get("Properties", {}).get("Path", "/")
        return "/"

    # --- intrinsics
    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical_ids:
            return self.physical_ids[name]
        raise KeyError(f"Ref to unknown or undeployed {name!r}")

    def get_att(self, logical_id: str, attribute: str) -> str:
        rtype = self.template["Resources"][logical_id]["Type"]
        try:
            fn = _ATTRS[(rtype, attribute)]
        except KeyError:
            raise KeyError(f"Fn::GetAtt {logical_id}.{attribute} ({rtype}) is not supported") from None
        return fn(self.physical_ids[logical_id], self)

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template.get("Conditions", {})[name]))

    def _sub(self, text: str, variables: dict[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".", 1)[0] in self.template.get("Resources", {}):
                return self.get_att(*name.split(".", 1))
            return str(self.ref(name))

        return _SUB_RE.sub(one, text)

    def resolve(self, value: Any) -> Any:
        """`value` with every intrinsic function evaluated (a new object)."""
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
                return self.get_att(logical_id, self.resolve(attribute))
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                return self._sub(text, self.resolve(variables))
            if key == "Fn::Join":
                sep, items = arg
                return self.resolve(sep).join(str(i) for i in self.resolve(items))
            if key == "Fn::Select":
                index, items = self.resolve(arg)
                return items[int(index)]
            if key == "Fn::Split":
                sep, text = self.resolve(arg)
                return text.split(sep)
            if key == "Fn::FindInMap":
                name, top, second = self.resolve(arg)
                return self.template["Mappings"][name][top][second]
            if key == "Fn::If":
                name, if_true, if_false = arg
                return self.resolve(if_true if self.condition(name) else if_false)
            if key == "Fn::Equals":
                left, right = self.resolve(arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(arg))
            if key == "Fn::Or":
                return any(self.resolve(arg))
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                raise NotImplementedError(f"{key} is not supported by the local resolver")
        out = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}
