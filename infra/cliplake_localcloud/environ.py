"""Each function's own environment, in one process: a thread-local overlay of `os.environ`.

On Lambda each function runs in its own process with its own environment: its template variables, the credentials
of its execution role (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) and the runtime's
variables (`AWS_LAMBDA_FUNCTION_NAME`...). The local cloud runs every function in one process, so the dispatcher
gives each invocation its environment as an overlay visible only to the invoking thread: reads of `os.environ`
(boto3's credential and endpoint resolution, pydantic-settings, powertools) in that thread see the function's
values, and keys the local cloud exported for other functions are hidden. Other threads, the plumbing's, see the
process environment (the administrator's keys). Writes always go to the process environment.

    install()                                  # once, by the local cloud
    with overlay({"AWS_ACCESS_KEY_ID": ...}, hidden={"CLIPLAKE_OTHER"}): handler(event, context)
    uninstall()

The overlay is installed by swapping the class of the existing `os.environ` object (every module holding a
reference to it sees the overlay); nothing changes for a thread without an overlay.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

_local = threading.local()
_BASE = type(os.environ)


def _current() -> tuple[Mapping[str, str], frozenset[str]] | None:
    return getattr(_local, "overlay", None)


class _OverlayEnviron(_BASE):  # type: ignore[misc, valid-type]
    def __getitem__(self, key: str) -> str:
        current = _current()
        if current is not None:
            values, hidden = current
            if key in values:
                return values[key]
            if key in hidden:
                raise KeyError(key)
        return _BASE.__getitem__(self, key)

    def __iter__(self) -> Iterator[str]:
        current = _current()
        if current is None:
            yield from _BASE.__iter__(self)
            return
        values, hidden = current
        for key in _BASE.__iter__(self):
            if key not in values and key not in hidden:
                yield key
        yield from values

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def copy(self) -> dict[str, str]:
        return dict(self.items())


def install() -> None:
    if type(os.environ) is _BASE:
        os.environ.__class__ = _OverlayEnviron


def uninstall() -> None:
    if type(os.environ) is _OverlayEnviron:
        os.environ.__class__ = _BASE


@contextmanager
def overlay(values: Mapping[str, str], hidden: frozenset[str] | set[str] = frozenset()) -> Iterator[None]:
    """Within this block, this thread sees `values` over the process environment, without the `hidden` keys."""
    previous = _current()
    _local.overlay = (dict(values), frozenset(hidden))
    try:
        yield
    finally:
        _local.overlay = previous
