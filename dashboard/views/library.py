"""Library: search videos by label (above a confidence) or a word of their on-screen text, campaign and source;
page through; open one."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard import data
from dashboard.views.common import go, table

PAGE_SIZES = (10, 25, 50, 100)


def render(backend: data.Backend) -> None:
    st.header("Library")
    c1, c0, c2, c3, c4 = st.columns([3, 2, 2, 2, 2])
    label = c1.text_input("Label", key="lib_label", placeholder="e.g. Dog (empty: newest videos)").strip()
    text = c0.text_input("Text on screen", key="lib_text", placeholder="a word").strip()
    campaign = c2.text_input("Campaign", key="lib_campaign", placeholder="any").strip()
    sources = ["any", *backend.sources()]
    source = c3.selectbox("Source", sources, key="lib_source")
    size = c4.selectbox("Per page", PAGE_SIZES, index=1, key="lib_size")
    min_conf = st.slider("Minimum confidence (%)", 0, 100, 50, key="lib_min_conf", disabled=not label)

    filters = (label, min_conf if label else 0, text, campaign, source, size)
    if st.session_state.get("lib_filters") != filters:
        st.session_state.update(lib_filters=filters, lib_cursors=[None], lib_page=0)
    cursors, page_no = st.session_state["lib_cursors"], st.session_state["lib_page"]
    page = backend.search(
        label=label,
        min_confidence=min_conf if label else 0,
        campaign=campaign,
        source="" if source == "any" else source,
        limit=size,
        cursor=cursors[page_no],
        text=text,
    )
    if page.cursor and len(cursors) == page_no + 1:
        cursors.append(page.cursor)
    if not page.items:
        st.info(_empty_message(backend, label, campaign, source, page_no))
        return
    by_key = bool(label or text)  # label and text hits are index items: their video records are read too
    records = backend.videos(v["video_id"] for v in page.items) if by_key else {}
    rows = [_row(hit, records.get(hit["video_id"], hit), bool(label)) for hit in page.items]
    if text and not label:
        for row, hit in zip(rows, page.items, strict=True):
            row["text"] = f"{hit.get('line', '')} ({hit.get('start_ms', 0) / 1000:.1f} s)"
    table(rows, column_config={"open": st.column_config.LinkColumn("open", display_text="open")})

    nav = st.columns([1.2, 1.2, 3, 4, 1.6])
    nav[0].button("◀ Prev", disabled=page_no == 0, on_click=_turn, args=(-1,))
    nav[1].button("Next ▶", disabled=page.cursor is None, on_click=_turn, args=(1,))
    nav[2].caption(f"Page {page_no + 1}, {len(rows)} videos")
    ids = [r["video id"] for r in rows]
    names = {r["video id"]: f"{r['file']} ({r['video id']})" for r in rows}
    chosen = nav[3].selectbox("Video", ids, format_func=names.get, key="lib_pick", label_visibility="collapsed")
    nav[4].button("Open video", type="primary", on_click=go, args=("video",), kwargs={"video_id": chosen})


def _turn(step: int) -> None:
    st.session_state["lib_page"] = max(0, st.session_state["lib_page"] + step)


def _row(hit: dict[str, Any], video: dict[str, Any], by_label: bool) -> dict[str, Any]:
    row = {
        "file": video.get("filename") or hit.get("filename", ""),
        "campaign": video.get("campaign") or hit.get("campaign", ""),
        "source": video.get("source") or hit.get("source", ""),
        "status": video.get("status", ""),
        "duration (s)": round(video.get("duration_ms", 0) / 1000, 1) if video.get("duration_ms") else None,
        "top labels": ", ".join(t["name"] for t in video.get("top_labels", [])[:5]),
        "video id": hit["video_id"],
        "open": f"?page=video&video={hit['video_id']}",
    }
    if by_label:
        row = {"confidence": hit.get("confidence"), **row}
    return row


def _empty_message(backend: data.Backend, label: str, campaign: str, source: str, page_no: int) -> str:
    if page_no:
        return "No more videos."
    if not (label or campaign or source != "any") and not backend.stats():
        return "The catalog is empty: drop videos with `cliplake drop FILE --campaign NAME` or run a batch."
    return "No video matches these filters."
