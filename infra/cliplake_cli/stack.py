"""The deployed stack as the operator side sees it: one module for the CLI (`cli.py`, `batchops.py`, `demo.py`,
`status.py`, `lakeops.py`) and the dashboard (`dashboard/data.py`).

- `load_config`: which bucket, table, state machine, topic and campaigns path to use: the CLIPLAKE_* variables
  first, what they leave empty from the stack's outputs (`StackConfig`);
- `start_batch` / `execution_name`: how a batch is started (always named, the documented input);
- the current campaign: `current_campaign` / `make_current`, over the functions' own SSM layout
  (`cliplake.campaigns`, `/cliplake/current-campaign` next to `/cliplake/campaigns`).

Works against the local cloud and a real deployment alike (plain boto3; endpoints from `AWS_ENDPOINT_URL`).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple

import boto3
from botocore.exceptions import ClientError

from cliplake.campaigns import current_campaign_parameter_name, get_current_campaign, set_current_campaign
from cliplake.settings import CatalogSettings, LakeSettings, StackVariables, load_settings

DEFAULT_STACK = "cliplake"
DEFAULT_CAMPAIGNS_PATH = "/cliplake/campaigns"
# Execution name prefix per trigger (the rest are named after their trigger: "smoke", ...).
PREFIX = {"manual": "run", "dashboard": "dash", "schedule": "sched"}


class StackUnreadable(Exception):
    """Neither the CLIPLAKE_* variables nor the stack's outputs name the bucket and the catalog table."""

    def __init__(self, stack: str, reason: str) -> None:
        super().__init__(f"stack {stack!r} not readable and no CLIPLAKE_BUCKET/CLIPLAKE_CATALOG_TABLE set ({reason})")
        self.stack, self.reason = stack, reason


class BatchesNotDeployed(Exception):
    """The stack has no batch state machine (deployed without the batch wrapper, or not readable)."""


@dataclass(frozen=True)
class StackConfig:
    """The resources of one deployment, as the operator tools use them."""

    bucket: str
    table: str
    state_machine_arn: str = ""
    topic_arn: str = ""
    campaigns_path: str = DEFAULT_CAMPAIGNS_PATH
    stack: str = DEFAULT_STACK
    endpoint_url: str = ""

    @property
    def current_campaign_parameter(self) -> str:
        return current_campaign_parameter_name(self.campaigns_path)

    @property
    def batches_deployed(self) -> bool:
        return bool(self.state_machine_arn)

    def require_state_machine(self) -> str:
        if not self.state_machine_arn:
            raise BatchesNotDeployed(
                f"The batch state machine is not deployed yet (stack {self.stack!r} has no BatchStateMachineArn "
                "output, and CLIPLAKE_BATCH_STATE_MACHINE_ARN is not set)."
            )
        return self.state_machine_arn

    def function_settings(self) -> OperatorSettings:
        """Settings with this stack's lake and catalog, for operator commands that run stage logic (`reindex`)."""
        return load_settings(OperatorSettings, bucket=self.bucket, catalog_table=self.table)


class OperatorSettings(LakeSettings, CatalogSettings):
    """What the stage logic an operator command runs needs (`reindex`: the index stage without its idempotency)."""


def from_environment(stack: str = DEFAULT_STACK) -> StackConfig:
    """What the CLIPLAKE_* variables name (read through `cliplake.settings`, the one reader of them)."""
    s = StackVariables()
    return StackConfig(
        bucket=s.bucket,
        table=s.catalog_table,
        state_machine_arn=s.batch_state_machine_arn,
        topic_arn=s.notifications_topic_arn,
        campaigns_path=s.campaigns_parameter_path or DEFAULT_CAMPAIGNS_PATH,
        stack=stack,
    )


def describe_stack(cfn: Any, stack: str) -> tuple[dict[str, str], dict[str, str]]:
    """The stack's (outputs, parameters)."""
    desc = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in desc.get("Outputs", [])}
    return outputs, {p["ParameterKey"]: p["ParameterValue"] for p in desc.get("Parameters", [])}


def with_outputs(config: StackConfig, outputs: dict[str, str]) -> StackConfig:
    """`config` with what it leaves empty taken from the stack's outputs (the campaigns path: the stack's)."""
    stack = StackVariables.of_outputs(outputs)
    return replace(
        config,
        bucket=config.bucket or stack.bucket,
        table=config.table or stack.catalog_table,
        state_machine_arn=config.state_machine_arn or stack.batch_state_machine_arn,
        topic_arn=config.topic_arn or stack.notifications_topic_arn,
        campaigns_path=stack.campaigns_parameter_path or config.campaigns_path,
    )


def load_config(
    stack: str = DEFAULT_STACK,
    session: boto3.session.Session | None = None,
    client_config: Any = None,
    read_stack: bool = False,
) -> StackConfig:
    """CLIPLAKE_* variables first; what they leave empty comes from the stack's outputs (not read when the
    variables name everything, unless `read_stack`: the dashboard reads it once per process, which also tells it
    at once whether the cloud is reachable). A stack that cannot be read is fine when the variables name the
    bucket and the table (batches are then unavailable); otherwise `StackUnreadable`. Connection and credential
    errors propagate as botocore raises them."""
    cfn = (session or boto3.session.Session()).client("cloudformation", config=client_config)
    config = replace(from_environment(stack), endpoint_url=cfn.meta.endpoint_url)
    if not read_stack and config.bucket and config.table and config.state_machine_arn:
        return config
    try:
        outputs = describe_stack(cfn, stack)[0]
    except ClientError as err:
        if config.bucket and config.table:
            return config
        raise StackUnreadable(stack, str(err)) from err
    config = with_outputs(config, outputs)
    if not (config.bucket and config.table):
        raise StackUnreadable(stack, "it has no MediaBucketName/CatalogTableName outputs")
    return config


# ----------------------------------------------------------------------------------------------------- batches
class StartedBatch(NamedTuple):
    name: str
    arn: str


def execution_name(prefix: str, campaign: str = "", now: datetime | None = None) -> str:
    """`<prefix>-<campaign>-<yyyymmddHHMMSS>-<4 hex>`, within Step Functions' 80 characters and alphabet; the
    batch record is `BATCH#<this name>`."""
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in campaign)[:40]
    parts = [prefix, safe] if safe else [prefix]
    return "-".join([*parts, f"{(now or datetime.now(UTC)):%Y%m%d%H%M%S}", secrets.token_hex(2)])[:80]


def start_batch(
    config: StackConfig,
    campaign: str,
    batch_size: int,
    max_concurrency: int | None = None,
    trigger: str = "manual",
    sfn: Any = None,
) -> StartedBatch:
    """Start a batch execution, always named; its input is the batch wrapper's documented one. An empty
    campaign means the current one; the plan step makes a manual or dashboard campaign current."""
    machine = config.require_state_machine()
    payload: dict[str, Any] = {"campaign": campaign, "batch_size": batch_size, "trigger": trigger}
    if max_concurrency:
        payload["max_concurrency"] = max_concurrency
    name = execution_name(PREFIX.get(trigger, trigger), campaign)
    r = (sfn or boto3.client("stepfunctions")).start_execution(
        stateMachineArn=machine, name=name, input=json.dumps(payload)
    )
    return StartedBatch(name, r["executionArn"])


# ---------------------------------------------------------------------------------------------------- campaigns
def current_campaign(ssm: Any, config: StackConfig) -> str:
    """The campaign a scheduled batch uses ("" when none is set)."""
    return get_current_campaign(ssm, config.campaigns_path)


def make_current(ssm: Any, config: StackConfig, campaign: str) -> None:
    """Make `campaign` the current one (it must be stored or built in: `CampaignNotFound` otherwise)."""
    set_current_campaign(ssm, campaign, config.campaigns_path)
