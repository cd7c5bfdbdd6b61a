"""Statistics: counts by source (the catalog's counters), failures by reason and activity over time."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import data, present
from dashboard.views.common import table

RECENT = 500  # videos per source read for the reasons and the timeline


def render(backend: data.Backend) -> None:
    st.header("Statistics")
    stats = backend.stats()
    if not stats:
        st.info("The catalog is empty: no video has been received yet.")
        return
    counts = pd.DataFrame.from_dict(stats, orient="index")[["raw", "processed", "failed"]]
    counts.index.name = "source"
    cols = st.columns(3)
    for col, what in zip(cols, ("raw", "processed", "failed"), strict=True):
        col.metric(what.capitalize(), int(counts[what].sum()))
    st.subheader("By source")
    st.bar_chart(counts, stack=False)

    recent = [v for src in stats for v in backend.recent_outcomes(src, RECENT)]
    batches = backend.batches(limit=100).items
    st.subheader("Failures by reason")
    reasons = present.failure_reasons(recent, batches)
    if reasons:
        st.bar_chart(pd.DataFrame(reasons).set_index("reason"), horizontal=True)
        table(reasons)
    else:
        st.success("No failures.")
    st.subheader("Over time")
    days = present.outcomes_by_day(recent)
    if days:
        st.bar_chart(pd.DataFrame(days).set_index("day"), stack=False)
    if batches:
        rows = [
            {"started": present.short_time(b.get("started_at")), "processed": b.get("processed", 0),
             "failed": b.get("failed", 0)}
            for b in batches
        ]  # fmt: skip
        per_batch = pd.DataFrame(rows).set_index("started")
        st.caption("Per batch")
        st.bar_chart(per_batch)
    st.caption(f"Reasons and days are read from the newest {RECENT} videos of each source (no table scan).")
