"""The one retry policy every source call goes through (`cliplake.sources.http.RetryPolicy`)."""

from __future__ import annotations

import pytest

from cliplake.sources.http import Retryable, RetryPolicy, retry_after_seconds


def flaky(failures: list[Exception], result: str = "ok"):
    """A call that raises each of `failures` in turn, then returns `result`; counts its calls."""

    def call() -> str:
        call.count += 1
        if failures:
            raise failures.pop(0)
        return result

    call.count = 0
    return call


def test_the_servers_wait_wins_else_exponential_backoff_capped(sleeper):
    call = flaky([Retryable("HTTP 503", 7.0), Retryable("reset"), Retryable("reset"), Retryable("reset")])

    assert RetryPolicy(4, base_s=2.0, cap_s=5.0, sleep=sleeper).call(call) == "ok"

    assert sleeper.calls == [7.0, 4.0, 5.0, 5.0]  # Retry-After, then 2 x 2^1, 2 x 2^2 capped at 5 (twice)
    assert call.count == 5


def test_gives_up_after_its_retries_with_the_attempt_count(sleeper):
    call = flaky([Retryable("HTTP 429", status=429) for _ in range(5)])

    with pytest.raises(Retryable) as err:
        RetryPolicy(2, sleep=sleeper).call(call)

    assert err.value.attempts == 3 and err.value.status == 429 and call.count == 3
    assert sleeper.calls == [1.0, 2.0]


def test_other_errors_are_not_retried(sleeper):
    call = flaky([ValueError("a 404 is final")])

    with pytest.raises(ValueError, match="a 404 is final"):
        RetryPolicy(3, sleep=sleeper).call(call)

    assert call.count == 1 and sleeper.calls == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [("120", 120.0), ("-3", 0.0), ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0), ("soon", None), (None, None)],
)
def test_retry_after_header(header, expected):
    from datetime import UTC, datetime

    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert retry_after_seconds(header, now=now) == expected
