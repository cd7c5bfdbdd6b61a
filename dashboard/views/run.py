"""Run a batch of a campaign, then watch its items move through the stages (fragment refresh)."""

from __future__ import annotations

import streamlit as st

from cliplake.campaigns import DEFAULT_CAMPAIGNS
from dashboard import data, present
from dashboard.views.common import errors_shown, go, show_notice, table

REFRESH_S = 2.0


def render(backend: data.Backend) -> None:
    st.header("Run a batch")
    if backend.batches_deployed:
        _start_form(backend)
    else:
        st.info(
            "The batch state machine is not deployed yet (no `BatchStateMachineArn` stack output): batches "
            "can't be started from here. Videos dropped into the lake still flow through the pipeline."
        )
    st.subheader("Live monitoring")
    watched = st.session_state.get("watch_batch")
    batch = backend.batch(watched) if watched else next(iter(backend.batches(limit=1).items), None)
    if batch is None and not watched:
        st.info("No batch has run yet.")
        return
    batch_id = watched or batch["batch_id"]
    running = _is_running(backend, batch)
    st.fragment(run_every=REFRESH_S if running else None)(_monitor)(backend, batch_id, running)


def _execution_status(backend: data.Backend) -> str:
    arn = st.session_state.get("watch_arn")
    return backend.execution(arn)["status"] if arn else "PENDING"


def _is_running(backend: data.Backend, batch: dict | None) -> bool:
    """A batch without its record yet is running while its execution is."""
    if batch is not None:
        return present.batch_is_running(batch)
    return _execution_status(backend) not in present.TERMINAL_BATCH


def _start_form(backend: data.Backend) -> None:
    campaigns = backend.campaigns() or list(DEFAULT_CAMPAIGNS)
    current = backend.current_campaign()
    with st.form("start"):
        campaign = st.selectbox(
            "Campaign", campaigns, index=campaigns.index(current) if current in campaigns else 0, key="campaign"
        )
        size = st.slider("Batch size", 1, 20, 2, key="batch_size")
        st.caption(f"Current campaign: {current or '—'}; a batch started here becomes the current one.")
        if st.form_submit_button("Start batch", type="primary"):
            started = backend.start_batch(campaign, size)
            st.session_state["watch_batch"] = started["name"]
            st.session_state["watch_arn"] = started["arn"]
            st.success(f"Started {started['name']} ({size} videos of {campaign}).")


def _monitor(backend: data.Backend, batch_id: str, was_running: bool) -> None:
    with errors_shown():
        _monitor_once(backend, batch_id, was_running)


def _monitor_once(backend: data.Backend, batch_id: str, was_running: bool) -> None:
    batch = backend.batch(batch_id)
    if batch is None:  # the execution has not written its record (yet)
        status = _execution_status(backend)
        st.write(f"**{batch_id}**: execution {status.lower()}, no batch record yet.")
        if was_running and status in present.TERMINAL_BATCH:
            st.rerun()
        return
    videos = backend.videos(i["video_id"] for i in batch.get("items", []))
    rows = present.item_rows(batch, videos)
    done = sum(r["stage"] in present.TERMINAL_VIDEO for r in rows)
    st.markdown(f"**{batch_id}** · started {present.short_time(batch.get('started_at'))}")
    cols = st.columns(4)
    cols[0].metric("Status", batch.get("status", ""))
    cols[1].metric("Campaign", batch.get("campaign", ""))
    cols[2].metric("Items done", f"{done}/{len(rows)}")
    cols[3].metric("Failed", sum(r["stage"] == "FAILED" for r in rows))
    st.progress(done / len(rows) if rows else 0.0)
    if not present.batch_is_running(batch):
        show_notice(backend, batch)
    if rows:
        table(rows, column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0, max_value=100)})
    else:
        st.caption("No items planned yet.")
    st.button("Detailed log of this batch", on_click=go, args=("logs",), kwargs={"log_execution": batch_id})
    if was_running and not _is_running(backend, batch):
        st.rerun()  # finished: redraw the whole page once, without the refresh timer
