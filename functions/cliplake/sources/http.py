"""Small HTTP helpers shared by the source clients: User-Agent, Retry-After, and the one retry policy.

Every source call that may be retried (Wikimedia API, Pixabay API, media downloads) goes through `RetryPolicy`:
one attempt raises `Retryable` for a failure worth another try, carrying the server's own wait (`Retry-After`)
when it gave one; the policy (tenacity) waits that, or an exponential backoff, and gives up after its attempts.
"""

from __future__ import annotations

import email.utils
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import TypeVar
from urllib.parse import urlparse

import requests
import tenacity

log = logging.getLogger(__name__)
T = TypeVar("T")

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


class Retryable(Exception):
    """A failure worth another attempt (network error, HTTP 429/5xx, `maxlag`, a truncated body).

    `retry_after` is the wait the server asked for (`Retry-After` and the like), None when it gave none;
    `status` the HTTP status, if any. `RetryPolicy.call` sets `attempts` on the one it finally gives up with.
    """

    def __init__(self, reason: str, retry_after: float | None = None, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.status = status
        self.attempts = 1


@dataclass(frozen=True)
class RetryPolicy:
    """`retries` more attempts after the first; between them the server's `retry_after` when it gave one,
    else `base_s`, 2 x `base_s`, 4 x `base_s` ... at most `cap_s`. `sleep` is injectable so tests never wait."""

    retries: int
    base_s: float = 1.0
    cap_s: float = 60.0
    sleep: Callable[[float], None] = tenacity.nap.sleep
    name: str = "request"

    def wait_s(self, failure: Retryable, attempt: int) -> float:
        """The wait after the `attempt`-th (1-based) attempt failed with `failure`."""
        if failure.retry_after is not None:
            return failure.retry_after
        return min(self.cap_s, self.base_s * 2 ** (attempt - 1))

    def call(self, attempt: Callable[[], T]) -> T:
        """`attempt()` until it returns or raises anything but `Retryable`; the last `Retryable` is re-raised
        with `attempts` set once the retries are spent."""

        def wait(state: tenacity.RetryCallState) -> float:
            return self.wait_s(state.outcome.exception(), state.attempt_number)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            log.info("%s: %s; retry %d in %.1f s", self.name, state.outcome.exception(), state.attempt_number,
                     state.upcoming_sleep)  # fmt: skip

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retries + 1),
            wait=wait,
            retry=tenacity.retry_if_exception_type(Retryable),
            sleep=self.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except Retryable as exc:
            exc.attempts = retrying.statistics.get("attempt_number", 1)
            raise
