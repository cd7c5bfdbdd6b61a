"""Small HTTP helpers shared by the source clients: User-Agent, Retry-After, backoff."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from importlib import metadata
from urllib.parse import urlparse

import requests

PROJECT_URL = "https://github.com/cliplake/cliplake"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class ConfigurationError(RuntimeError):
    """A source is missing configuration it needs to run (for example a contact address)."""


def _version() -> str:
    try:
        return metadata.version("cliplake")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        return "0"


def user_agent(contact_email: str) -> str:
    """A descriptive User-Agent as the Wikimedia policy asks: tool/version (project URL; contact) library."""
    if not contact_email:
        raise ConfigurationError("a contact address is required for the User-Agent (CLIPLAKE_CONTACT_EMAIL)")
    return f"cliplake/{_version()} ({PROJECT_URL}; {contact_email}) python-requests/{requests.__version__}"


def build_session(contact_email: str = "") -> requests.Session:
    """A plain session carrying the descriptive User-Agent (used for API calls and media downloads)."""
    session = requests.Session()
    if contact_email:
        session.headers["User-Agent"] = user_agent(contact_email)
    return session


def is_loopback(url: str) -> bool:
    return (urlparse(url).hostname or "") in LOOPBACK_HOSTS


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Parse a `Retry-After` header: delta-seconds or an HTTP date. None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff_seconds(attempt: int, base: float = 1.0, cap: float = 60.0) -> float:
    """Exponential backoff: base, 2*base, 4*base ... capped."""
    return min(cap, base * (2**attempt))
