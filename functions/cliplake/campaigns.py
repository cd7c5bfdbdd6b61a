"""Campaigns in SSM Parameter Store (`/cliplake/campaigns/<name>`, `/cliplake/current-campaign`).

Re-exported from `cliplake.sources.planning` for callers outside the sources package (CLI, dashboard).
"""

from cliplake.sources.planning import (
    DEFAULT_CAMPAIGNS,
    Campaign,
    CampaignNotFound,
    current_campaign_parameter_name,
    get_current_campaign,
    list_campaigns,
    load_campaign,
    seed_default_campaigns,
    set_current_campaign,
)

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
