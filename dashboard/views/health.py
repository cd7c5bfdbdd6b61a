"""Pipeline health: `cliplake status` on a page (the CloudWatch dashboard's figures, read from their sources)."""

from __future__ import annotations

import streamlit as st

from cliplake_cli.status import collect
from dashboard import data
from dashboard.views.common import table


def render(backend: data.Backend) -> None:
    st.header("Pipeline health")
    try:
        status = collect(backend.config, session=backend.session)
    except Exception as err:  # a stack without these outputs, or no permission: say so, keep the page
        st.error(f"Could not read the pipeline's status: {err}")
        return
    cols = st.columns(4)
    cols[0].metric("Messages waiting", sum(q.visible + q.delayed for q in status.queues))
    cols[1].metric("Dead letters", status.dead_letters)
    cols[2].metric("Job slots in use", f"{status.job_slots_in_use} / {status.max_jobs_in_flight}")
    cols[3].metric("Batches running", status.batches.get("RUNNING", 0))
    if status.dead_letters:
        st.warning("Some messages reached a dead-letter queue: a stage gave up on them (see the queue and the logs).")
    st.subheader("Queues")
    table([q.model_dump() for q in status.queues])
    st.subheader("Batches by outcome")
    table([{"status": k.lower(), "executions": v} for k, v in status.batches.items()])
    st.subheader("Videos by source")
    table([{**v.model_dump(), "in_progress": v.in_progress} for v in status.videos])
    if status.alarms:
        st.subheader("Alarms")
        table([{"alarm": n, "state": s} for n, s in sorted(status.alarms.items())])
        st.caption("The local cloud creates the alarms but never evaluates them.")
