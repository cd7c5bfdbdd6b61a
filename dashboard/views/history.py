"""Execution history: the batch records (newest first) and executions without a record yet."""

from __future__ import annotations

import streamlit as st

from dashboard import data, present
from dashboard.views.common import table


def render(backend: data.Backend) -> None:
    st.header("Execution history")
    limit = st.select_slider("Show the latest", [10, 25, 50, 100, 200], value=25, key="history_limit")
    rows = present.batch_rows(backend.batches(limit=limit).items, backend.executions(limit=limit))
    if not backend.batches_deployed:
        st.caption("The batch state machine is not deployed yet: only batch records in the catalog are listed.")
    if not rows:
        st.info("No batch has run yet.")
        return
    table(rows[:limit])
