"""The last batch: videos received and processed, top labels, failures and its log."""

from __future__ import annotations

import streamlit as st

from dashboard import data, present
from dashboard.views import logs
from dashboard.views.common import show_notice, table


def render(backend: data.Backend) -> None:
    st.header("Last execution")
    newest = next(iter(backend.batches(limit=1).items), None)
    batch = backend.batch(newest["batch_id"]) if newest else None  # with its items
    if batch is None:
        st.info(
            "No batch has run yet."
            + ("" if backend.batches_deployed else " (The batch state machine is not deployed yet.)")
        )
        return
    st.subheader(f"{batch['batch_id']} — {batch.get('campaign', '')}")
    cols = st.columns(5)
    cols[0].metric("Status", batch.get("status", ""))
    cols[1].metric("Received", batch.get("received", 0))
    cols[2].metric("Processed", batch.get("processed", 0))
    cols[3].metric("Failed", batch.get("failed", 0))
    cols[4].metric("Duration (s)", present.duration_s(batch.get("started_at"), batch.get("ended_at")) or "—")
    st.caption(
        f"Started {present.short_time(batch.get('started_at'))} by {batch.get('trigger', '?')}, "
        f"batch size {batch.get('batch_size')}, max concurrency {batch.get('max_concurrency')}"
        + (", offline" if batch.get("offline") else "")
    )
    show_notice(backend, batch)
    videos = backend.videos(i["video_id"] for i in batch.get("items", []))
    table(present.item_rows(batch, videos))
    if batch.get("top_labels"):
        st.markdown("**Top labels**")
        table(batch["top_labels"])
    failures = present.batch_failures(batch)
    if failures:
        st.markdown("**Failures**")
        table(failures)
    with st.expander("Execution log"):
        if batch.get("execution_arn"):
            logs.show_execution(backend, batch["execution_arn"])
        else:
            st.caption("This batch record names no execution.")
