"""cliplake dashboard: run and watch batches, read their logs and statistics, search and play the library.

    cliplake dashboard [--port 8501] [--headless]      (or: streamlit run dashboard/app.py)

Resources come from CLIPLAKE_* variables and the `cliplake` stack's outputs; AWS_* variables (AWS_ENDPOINT_URL
for the local cloud) choose the account, exactly as for the CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # `streamlit run` adds only dashboard/
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dashboard.views import common, health, history, last, library, logs, run, sql, stats, video

RENDER = {
    "run": run.render,
    "last": last.render,
    "history": history.render,
    "logs": logs.render,
    "stats": stats.render,
    "library": library.render,
    "video": video.render,
    "sql": sql.render,
    "health": health.render,
}
SLUG = {label: slug for slug, label in common.PAGES.items()}


def _from_query_params() -> None:
    """Deep links (?page=video&video=<id>, ?page=logs&execution=<name or arn>) on a session's first run."""
    if "nav" in st.session_state:
        return
    q = st.query_params
    st.session_state["nav"] = common.PAGES.get(q.get("page", ""), common.PAGES["run"])
    if q.get("video"):
        st.session_state["video_id"] = q["video"]
    if q.get("execution"):
        st.session_state["log_execution"] = q["execution"]


def main() -> None:
    st.set_page_config(page_title="cliplake", page_icon="🎞️", layout="wide")
    _from_query_params()
    st.sidebar.title("cliplake")
    label = st.sidebar.radio("Page", list(common.PAGES.values()), key="nav")
    slug = SLUG[label]
    st.query_params["page"] = slug
    if slug == "video" and st.session_state.get("video_id"):
        st.query_params["video"] = st.session_state["video_id"]
    else:
        st.query_params.pop("video", None)
    with common.errors_shown():
        backend = common.backend()
        cfg = backend.config
        st.sidebar.caption(f"stack `{cfg.stack}` · table `{cfg.table}` · bucket `{cfg.bucket}` · {cfg.endpoint_url}")
        RENDER[slug](backend)


main()
