"""SQL: read-only DuckDB queries over the lake's tables (videos, labels), the files Athena reads through Glue."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from cliplake_cli.sql import LakeSQL, QueryError, as_records
from dashboard import data

EXAMPLE = (
    "SELECT campaign, source, status, count(*) AS videos\n"
    "FROM videos\nGROUP BY campaign, source, status\nORDER BY campaign, source, status"
)


def render(backend: data.Backend) -> None:
    st.header("SQL")
    st.caption(
        "DuckDB over the lake's tables `videos` (one row per video, failed ones with their reason) and `labels` "
        "(one row per label segment), partitioned by `source` and `campaign`. Read-only: one SELECT. The same SQL "
        "runs in Athena on AWS (README, 'SQL over the lake')."
    )
    query = st.text_area("Query", value=EXAMPLE, height=180, key="sql_query")
    if not st.button("Run query", key="sql_run", type="primary"):
        return
    engine = LakeSQL(backend.config.bucket, backend.s3)
    try:
        with st.spinner("Querying the lake…"):
            result = engine.query(query)
    except QueryError as err:
        st.error(f"Query refused or failed: {err}")
        return
    finally:
        engine.close()
    rows = as_records(result)
    if rows:
        st.dataframe(pd.DataFrame(rows, columns=result.columns), hide_index=True, width="stretch")
    else:
        st.info("No rows.")
    s = result.stats
    st.caption(
        f"{len(rows)} row(s) · read {s.bytes_read:,} bytes of {s.partitions_opened} partition file(s) · "
        f"{s.objects_fetched} object(s) fetched, {s.listed} listed"
    )
