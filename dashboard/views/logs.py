"""Detailed logs: one execution's full history as a table and a timeline; the raw JSON in an expander."""

from __future__ import annotations

import json

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data, present
from dashboard.views.common import table


def render(backend: data.Backend) -> None:
    st.header("Detailed logs")
    choices = _choices(backend)
    wanted = st.session_state.get("log_execution", "")
    if wanted and wanted not in choices.values():
        choices = {wanted.rsplit(":", 1)[-1]: _arn(backend, wanted), **choices}
    if not choices:
        st.info(
            "No execution to show yet."
            + ("" if backend.batches_deployed else " The batch state machine is not deployed yet.")
        )
        return
    names = list(choices)
    start = next((i for i, n in enumerate(names) if choices[n] == _arn(backend, wanted) or n == wanted), 0)
    name = st.selectbox("Execution", names, index=start)
    show_execution(backend, choices[name])


def _choices(backend: data.Backend) -> dict[str, str]:
    """name → ARN: the state machine's executions and the catalog's batch records, newest first."""
    out = {e["name"]: e["executionArn"] for e in backend.executions(limit=50)}
    for b in backend.batches(limit=50).items:
        if b.get("execution_arn"):
            out.setdefault(b["batch_id"], b["execution_arn"])
    return out


def _arn(backend: data.Backend, name_or_arn: str) -> str:
    if not name_or_arn or name_or_arn.startswith("arn:"):
        return name_or_arn
    batch = backend.batch(name_or_arn)
    if batch and batch.get("execution_arn"):
        return batch["execution_arn"]
    sm = backend.config.state_machine_arn
    return sm.replace(":stateMachine:", ":execution:") + f":{name_or_arn}" if sm else name_or_arn


def show_execution(backend: data.Backend, arn: str) -> None:
    try:
        execution = backend.execution(arn)
        events = backend.history(arn)
    except data.DataError as err:
        st.warning(f"Execution {arn.rsplit(':', 1)[-1]} can't be read: {err}")
        return
    cols = st.columns(4)
    cols[0].metric("Status", execution["status"])
    cols[1].metric("Events", len(events))
    cols[2].metric("Started", present.short_time(execution.get("startDate")))
    cols[3].metric("Duration (s)", present.duration_s(execution.get("startDate"), execution.get("stopDate")) or "—")
    level, text = present.batch_notice(backend.batch(execution.get("name", "")), execution, events)
    if level:
        getattr(st, level)(text)
    spans = present.state_spans(events)
    if spans:
        chart = (
            alt.Chart(pd.DataFrame(spans))
            .mark_bar()
            .encode(
                x=alt.X("from (s):Q", title="seconds since start"),
                x2="to (s):Q",
                y=alt.Y("state:N", sort=None, title=None),
                tooltip=["state", "from (s)", "duration (s)"],
            )
        )
        st.altair_chart(chart, width="stretch")
    table(present.event_rows(events))
    with st.expander("Raw history (JSON)"):
        st.json(json.dumps({"execution": execution, "events": events}, default=str), expanded=False)
