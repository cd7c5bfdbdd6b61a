"""What every page shares: the backend (cached per process), navigation and the cached lake reads."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from dashboard import data, frames

log = logging.getLogger("cliplake.dashboard")
PAGES = {
    "run": "Run a batch",
    "last": "Last execution",
    "history": "Execution history",
    "logs": "Detailed logs",
    "stats": "Statistics",
    "library": "Library",
    "video": "Video",
    "sql": "SQL",
    "health": "Pipeline health",
}


@st.cache_resource(ttl=120, show_spinner=False)
def backend() -> data.Backend:
    """Built once per process (failures are not cached: the next rerun tries again)."""
    return data.Backend(data.load_config())


def go(page: str, **params: str) -> None:
    """Switch page (use as a button's on_click, so it runs before the page is drawn)."""
    st.session_state["nav"] = PAGES[page]
    for k, v in params.items():
        st.session_state[k] = v


def table(rows: list[dict[str, Any]], **kwargs: Any) -> None:
    st.dataframe(rows, hide_index=True, width="stretch", **kwargs)


@st.cache_data(ttl=600, show_spinner=False, max_entries=256)
def summary(key: str, etag: str) -> dict[str, Any] | None:
    """A video's `_labels.json` (keyed by its ETag too: a new summary is read again)."""
    return backend().summary(key)


@st.cache_data(ttl=3000, show_spinner=False, max_entries=256)
def url(key: str) -> str:
    return backend().url(key, expires_s=3600)


@st.cache_data(ttl=3600, show_spinner="Extracting shot thumbnails…", max_entries=64)
def thumbnails(key: str, etag: str, times_ms: tuple[int, ...]) -> list[bytes | None]:
    """One frame per shot from a downloaded copy of the analysed video (downloaded once per version)."""
    path = frames.local_copy_path(key, etag)
    if not path.exists():
        part = path.with_suffix(".part")
        backend().download(key, part)
        part.replace(path)
    return frames.thumbnails(path, list(times_ms))


@contextmanager
def errors_shown() -> Iterator[None]:
    """Data errors as a message, anything else as one line (the traceback goes to the server log)."""
    try:
        yield
    except data.NotDeployed as err:
        st.info(str(err))
    except data.DataError as err:
        st.error(str(err))
    except Exception as err:
        log.exception("dashboard page failed")
        st.error(f"Unexpected error: {type(err).__name__}: {err}. Details are in the server log.")


def show_notice(backend: data.Backend, batch: dict[str, Any]) -> None:
    """Above a finished batch: why it failed or was aborted (the failing state's error and cause), or why it
    planned nothing."""
    execution, events = None, []
    arn = batch.get("execution_arn")
    if arn and batch.get("status") != "SUCCEEDED":
        try:
            execution = backend.execution(arn)
            if execution.get("status") in {"FAILED", "TIMED_OUT", "ABORTED"}:
                events = backend.history(arn)
        except data.DataError as err:
            log.info("execution %s not readable: %s", arn, err)
    from dashboard import present

    level, text = present.batch_notice(batch, execution, events)
    if level:
        getattr(st, level)(text)
