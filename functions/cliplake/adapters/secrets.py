"""Secrets Manager: the sources' credentials (today the Pixabay API key), read once per use."""

from __future__ import annotations

from botocore.client import BaseClient


class NoSecret(LookupError):
    """No secret id is configured."""


class Secrets:
    def __init__(self, client: BaseClient) -> None:
        self.client = client

    def value(self, secret_id: str) -> str:
        """The secret's string value."""
        if not secret_id:
            raise NoSecret("no secret configured")
        return self.client.get_secret_value(SecretId=secret_id)["SecretString"]
