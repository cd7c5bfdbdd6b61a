"""SSM Parameter Store: the campaigns (`<path>/<name>`) and the current campaign (`current-campaign` next to them)."""

from __future__ import annotations

from botocore.client import BaseClient

from cliplake.campaigns import Campaign, get_current_campaign, load_campaign, set_current_campaign


class Campaigns:
    def __init__(self, client: BaseClient, path: str) -> None:
        self.client = client
        self.path = path

    def current(self) -> str:
        """The campaign a scheduled batch uses ("" when none is set)."""
        return get_current_campaign(self.client, self.path)

    def set_current(self, name: str) -> None:
        set_current_campaign(self.client, name, self.path)

    def load(self, name: str) -> Campaign:
        """The stored campaign, or the built-in one of that name."""
        return load_campaign(self.client, self.path, name)
