"""Campaigns: named search queries per source, in SSM Parameter Store (`<path>/<name>`), and the current campaign
(`current-campaign` next to them) a scheduled batch uses. `cliplake.adapters.ssm.Campaigns` is the stages' adapter.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pydantic import BaseModel, Field, field_validator

log = logging.getLogger(__name__)


class Campaign(BaseModel):
    """A named set of search queries per source."""

    name: str
    queries: dict[str, list[str]] = Field(default_factory=dict)
    # Which Rekognition analyses its videos get (a subset of the stack's Features); None: all of the stack's.
    features: list[str] | None = None

    @field_validator("features")
    @classmethod
    def _known_features(cls, value: list[str] | None) -> list[str] | None:
        from cliplake.settings import parse_features

        return None if value is None else parse_features(value)


DEFAULT_CAMPAIGNS: dict[str, dict[str, list[str]]] = {
    "travel": {
        "wikimedia": ["city timelapse", "train journey", "beach waves"],
        "pixabay": ["travel", "city street", "beach"],
    },
    "tech": {
        "wikimedia": ["robot", "computer", "3D printing"],
        "pixabay": ["technology", "robot", "data center"],
    },
    "nature": {
        "wikimedia": ["waterfall", "birds flying", "forest"],
        "pixabay": ["nature", "waterfall", "wildlife"],
    },
}


class CampaignNotFound(LookupError):
    """No parameter and no built-in default for a campaign name."""


def campaign_parameter_name(path: str, name: str) -> str:
    return f"{path.rstrip('/')}/{name}"


def default_campaign(name: str) -> Campaign:
    if name not in DEFAULT_CAMPAIGNS:
        raise CampaignNotFound(f"no campaign {name!r} (built-in: {', '.join(DEFAULT_CAMPAIGNS)})")
    return Campaign(name=name, queries={k: list(v) for k, v in DEFAULT_CAMPAIGNS[name].items()})


def load_campaign(ssm_client: Any, path: str, name: str) -> Campaign:
    """The campaign stored at `<path>/<name>`; the built-in default when the parameter does not exist."""
    try:
        value = ssm_client.get_parameter(Name=campaign_parameter_name(path, name))["Parameter"]["Value"]
    except ssm_client.exceptions.ParameterNotFound:
        log.info("campaign %s not in SSM under %s: using the built-in default", name, path)
        return default_campaign(name)
    data = json.loads(value)
    return Campaign(name=name, queries=data.get("queries", {}))


def seed_default_campaigns(ssm_client: Any, path: str, *, overwrite: bool = False) -> list[str]:
    """Write the built-in campaigns to SSM (existing parameters are kept unless `overwrite`). Returns names written."""
    written = []
    for name, queries in DEFAULT_CAMPAIGNS.items():
        try:
            ssm_client.put_parameter(
                Name=campaign_parameter_name(path, name),
                Value=json.dumps({"queries": queries}),
                Type="String",
                Overwrite=overwrite,
                Description=f"cliplake campaign {name}: search queries per source",
            )
        except ssm_client.exceptions.ParameterAlreadyExists:
            continue
        written.append(name)
    return written


# ----------------------------------------------------------------------------------------- current campaign
CURRENT_CAMPAIGN = "current-campaign"


def current_campaign_parameter_name(path: str) -> str:
    """`/cliplake/current-campaign` for the campaigns path `/cliplake/campaigns` (the one place that says so)."""
    return f"{path.rstrip('/').rsplit('/', 1)[0]}/{CURRENT_CAMPAIGN}"


def list_campaigns(ssm_client: Any, path: str) -> list[str]:
    """The campaign names stored under the campaigns path, sorted."""
    base = path.rstrip("/")
    names: list[str] = []
    for page in ssm_client.get_paginator("get_parameters_by_path").paginate(Path=base, Recursive=False):
        names += [p["Name"].removeprefix(base + "/") for p in page.get("Parameters", [])]
    return sorted(names)


def get_current_campaign(ssm_client: Any, path: str) -> str:
    """The campaign a scheduled batch uses ("" when none is set)."""
    try:
        return ssm_client.get_parameter(Name=current_campaign_parameter_name(path))["Parameter"]["Value"].strip()
    except ssm_client.exceptions.ParameterNotFound:
        return ""


def set_current_campaign(ssm_client: Any, name: str, path: str) -> None:
    """Make `name` the current campaign (it must exist in SSM or be a built-in one)."""
    if name not in DEFAULT_CAMPAIGNS and name not in list_campaigns(ssm_client, path):
        raise CampaignNotFound(f"no campaign {name!r} under {path.rstrip('/')}")
    ssm_client.put_parameter(Name=current_campaign_parameter_name(path), Value=name, Type="String", Overwrite=True)


__all__ = [
    "DEFAULT_CAMPAIGNS",
    "Campaign",
    "CampaignNotFound",
    "current_campaign_parameter_name",
    "get_current_campaign",
    "list_campaigns",
    "load_campaign",
    "seed_default_campaigns",
    "set_current_campaign",
]
