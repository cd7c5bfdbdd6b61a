"""One video: player, label timeline, shots with thumbnails, moderation findings, on-screen text and
attribution."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data, present
from dashboard.views import common
from dashboard.views.common import table


def render(backend: data.Backend) -> None:
    video_id = st.text_input("Video id", key="video_id").strip()
    if not video_id:
        st.header("Video")
        st.info("Pick a video in the Library, or enter its id.")
        return
    video = backend.video(video_id)
    if video is None:
        st.header("Video")
        st.warning(f"No video {video_id} in the catalog.")
        return
    st.header(video.get("filename") or video_id)
    st.caption(
        f"{video.get('status', '')} · {video.get('source', '')} / {video.get('campaign', '')} · "
        f"{video.get('duration_ms', 0) / 1000:.1f} s · {video.get('width', 0)}x{video.get('height', 0)} · "
        f"{video.get('shots', 0)} shots · {video_id}"
    )
    if video.get("status") == "FAILED":
        st.error(f"Failed: {video.get('reason', 'no reason recorded')}")
    media_key = video.get("analysed_key") or video.get("raw_key")
    if media_key:
        st.video(common.url(media_key))
    summary = common.summary(video["summary_key"], video.get("summary_etag", "")) if video.get("summary_key") else None
    _attribution(video, summary)
    if summary is None:
        if video.get("status") != "FAILED":
            st.info("No summary yet: the video has not been analysed.")
        return
    _timeline(summary)
    _shots(video, summary)
    _moderation(summary)
    _text(summary)
    with st.expander("Summary (JSON)"):
        st.json(summary, expanded=False)


def _attribution(video: dict[str, Any], summary: dict[str, Any] | None) -> None:
    credit = (summary or {}).get("credit_line") or video.get("credit_line")
    attribution = (summary or {}).get("attribution") or video.get("attribution") or {}
    st.markdown(f"**Credit:** {credit}" if credit else "**Credit:** —")
    if attribution.get("licence_url"):
        st.caption(f"Licence: [{attribution.get('licence')}]({attribution['licence_url']})")


def _timeline(summary: dict[str, Any]) -> None:
    st.subheader("Labels over time")
    segments = present.label_segments(summary)
    if not segments:
        st.caption("No labels above the confidence threshold.")
        return
    duration = max(summary.get("video", {}).get("duration_ms", 0) / 1000, *(s["end (s)"] for s in segments))
    chart = (
        alt.Chart(pd.DataFrame(segments))
        .mark_bar()
        .encode(
            x=alt.X("start (s):Q", scale=alt.Scale(domain=[0, duration]), title="seconds"),
            x2="end (s):Q",
            y=alt.Y("label:N", title=None),
            color=alt.Color("confidence:Q", scale=alt.Scale(domain=[50, 100], scheme="blues")),
            tooltip=["label", "start (s)", "end (s)", "confidence"],
        )
    )
    st.altair_chart(chart, width="stretch")
    table(summary.get("top_labels", []))


def _shots(video: dict[str, Any], summary: dict[str, Any]) -> None:
    shots = summary.get("shots", [])
    st.subheader(f"Shots ({len(shots)})")
    if not shots:
        st.caption("No shots detected.")
        return
    key = video.get("analysed_key") or video.get("raw_key")
    etag = (summary.get("provenance") or {}).get("raw_etag") or video.get("raw_etag", "")
    times = tuple(present.shot_times_ms(summary))
    images = common.thumbnails(key, etag, times) if key else [None] * len(times)
    cols = st.columns(4)
    for i, (shot, image) in enumerate(zip(shots, images, strict=False)):
        caption = f"#{shot['index']} {shot['start_timecode']} → {shot['end_timecode']}"
        with cols[i % 4]:
            if image:
                st.image(image, caption=caption)
            else:
                st.caption(f"{caption} (no thumbnail)")
    if len(shots) > len(times):
        st.caption(f"Thumbnails of the first {len(times)} shots.")


def _text(summary: dict[str, Any]) -> None:
    st.subheader("Text on screen")
    rows = [
        {
            "text": line["text"],
            "from (s)": round(line["start_ms"] / 1000, 1),
            "to (s)": round(line["end_ms"] / 1000, 1),
            "confidence": round(line["confidence"], 1),
        }
        for line in summary.get("text", [])
    ]
    if rows:
        table(rows)
    else:
        st.info("No text on screen (or text detection is not among this stack's features).")


def _moderation(summary: dict[str, Any]) -> None:
    st.subheader("Moderation")
    rows = present.moderation_rows(summary)
    if rows:
        table(rows)
    else:
        st.success("No moderation findings.")
