"""Merge the three Rekognition results of a video into the summary editors read (`<name>_labels.json`)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from cliplake.contracts import (
    API_NAME,
    JobKind,
    JobProvenance,
    LabelSegment,
    ModerationFinding,
    Provenance,
    Shot,
    TechnicalCue,
    TextLine,
    TopLabel,
    VideoMetadata,
    VideoRecord,
    VideoSummary,
)

# Rekognition samples a video about every 500 ms: detections closer than this belong to one segment.
MERGE_GAP_MS = 1000
TOP_LABELS = 10  # labels a summary lists first (a video's, and a batch's in its summary)
TEXT_STEP_MS = 1000  # a line seen at one timestamp only is taken to last one sampling step
TEXT_GAP_MS = 2500  # text sightings closer than this (text is sampled about every second) are one stretch


def _span(item: dict[str, Any]) -> tuple[int, int]:
    ts = int(item.get("Timestamp", 0))
    return int(item.get("StartTimestampMillis", ts)), int(item.get("EndTimestampMillis", ts))


def _names(entries: Iterable[dict[str, Any]] | None) -> list[str]:
    return [e["Name"] for e in entries or [] if "Name" in e]


def label_segments(items: list[dict[str, Any]]) -> list[LabelSegment]:
    """Per-label time segments; TIMESTAMPS results are merged, SEGMENTS results kept (touching ones joined)."""
    by_name: dict[str, list[LabelSegment]] = {}
    for item in sorted(items, key=_span):
        label = item["Label"]
        start, end = _span(item)
        seg = LabelSegment(
            name=label["Name"],
            start_ms=start,
            end_ms=end,
            max_confidence=round(float(label.get("Confidence", 0.0)), 3),
            parents=_names(label.get("Parents")),
            categories=_names(label.get("Categories")),
            aliases=_names(label.get("Aliases")),
            instances=len(label.get("Instances") or []),
        )
        segments = by_name.setdefault(seg.name, [])
        last = segments[-1] if segments else None
        if last and seg.start_ms - last.end_ms <= MERGE_GAP_MS:
            last.end_ms = max(last.end_ms, seg.end_ms)
            last.max_confidence = max(last.max_confidence, seg.max_confidence)
            last.instances = max(last.instances, seg.instances)
        else:
            segments.append(seg)
    out = [s for segs in by_name.values() for s in segs]
    return sorted(out, key=lambda s: (s.start_ms, s.name))


def top_labels(segments: list[LabelSegment], limit: int = TOP_LABELS) -> list[TopLabel]:
    agg: dict[str, TopLabel] = {}
    for s in segments:
        t = agg.setdefault(s.name, TopLabel(name=s.name, max_confidence=0, total_ms=0, segments=0))
        t.max_confidence = max(t.max_confidence, s.max_confidence)
        t.total_ms += max(s.end_ms - s.start_ms, 0)
        t.segments += 1
        t.categories = sorted(set(t.categories) | set(s.categories))
    return sorted(agg.values(), key=lambda t: (-t.max_confidence, -t.total_ms, t.name))[:limit]


def moderation_findings(items: list[dict[str, Any]]) -> list[ModerationFinding]:
    findings: list[ModerationFinding] = []
    for item in sorted(items, key=_span):
        m = item["ModerationLabel"]
        start, end = _span(item)
        prev = next((f for f in reversed(findings) if f.name == m["Name"]), None)
        if prev and start - prev.end_ms <= MERGE_GAP_MS:
            prev.end_ms = max(prev.end_ms, end)
            prev.confidence = max(prev.confidence, round(float(m["Confidence"]), 3))
            continue
        findings.append(
            ModerationFinding(
                name=m["Name"],
                parent_name=m.get("ParentName", ""),
                taxonomy_level=m.get("TaxonomyLevel"),
                confidence=round(float(m["Confidence"]), 3),
                start_ms=start,
                end_ms=end,
            )
        )
    return findings


def shots_and_cues(items: list[dict[str, Any]]) -> tuple[list[Shot], list[TechnicalCue]]:
    shots, cues = [], []
    for seg in items:
        common = {
            "start_ms": int(seg["StartTimestampMillis"]),
            "end_ms": int(seg["EndTimestampMillis"]),
            "start_timecode": seg.get("StartTimecodeSMPTE", ""),
            "end_timecode": seg.get("EndTimecodeSMPTE", ""),
        }
        if seg.get("Type") == "SHOT":
            shot = seg.get("ShotSegment", {})
            shots.append(
                Shot(
                    index=int(shot.get("Index", len(shots))),
                    confidence=round(float(shot.get("Confidence", 0.0)), 3),
                    start_frame=seg.get("StartFrameNumber"),
                    end_frame=seg.get("EndFrameNumber"),
                    **common,
                )
            )
        elif seg.get("Type") == "TECHNICAL_CUE":
            cue = seg.get("TechnicalCueSegment", {})
            cues.append(
                TechnicalCue(type=cue.get("Type", ""), confidence=round(float(cue.get("Confidence", 0.0)), 3), **common)
            )
    return sorted(shots, key=lambda s: s.index), sorted(cues, key=lambda c: c.start_ms)


def text_lines(items: list[dict[str, Any]]) -> list[TextLine]:
    """LINE detections → one entry per line of text and stretch of time it stayed on screen.

    Rekognition reports a line at each sampled timestamp it sees it; sightings of the same text no more than
    ``TEXT_GAP_MS`` apart are one stretch, which ends one sampling step after its last sighting.
    """
    sightings: dict[str, list[tuple[int, float, dict]]] = {}
    for item in items:
        det = item.get("TextDetection") or {}
        if det.get("Type") != "LINE" or not det.get("DetectedText"):
            continue
        box = (det.get("Geometry") or {}).get("BoundingBox") or {}
        sightings.setdefault(det["DetectedText"], []).append(
            (int(item.get("Timestamp", 0)), float(det.get("Confidence", 0.0)), box)
        )
    stamps = sorted({int(i.get("Timestamp", 0)) for i in items})
    steps = [b - a for a, b in itertools.pairwise(stamps) if b > a]
    step = min(steps) if steps else TEXT_STEP_MS
    lines: list[TextLine] = []
    for text, seen in sightings.items():
        seen.sort(key=lambda s: s[0])
        current: TextLine | None = None
        for ts, conf, box in seen:
            if current is not None and ts - current.end_ms <= TEXT_GAP_MS:
                current.end_ms = ts + step
                current.confidence = max(current.confidence, round(conf, 3))
                continue
            current = TextLine(text=text, start_ms=ts, end_ms=ts + step, confidence=round(conf, 3), box=box)
            lines.append(current)
    return sorted(lines, key=lambda t: (t.start_ms, t.text))


def video_metadata(results: dict[JobKind, dict[str, Any]]) -> VideoMetadata:
    meta: Any = results.get(JobKind.LABELS, {}).get("VideoMetadata") or results.get(JobKind.SEGMENTS, {}).get(
        "VideoMetadata"
    )
    if isinstance(meta, list):
        meta = meta[0] if meta else {}
    meta = meta or {}
    return VideoMetadata(
        codec=meta.get("Codec", ""),
        format=meta.get("Format", ""),
        duration_ms=int(meta.get("DurationMillis", 0)),
        frame_rate=float(meta.get("FrameRate", 0.0)),
        width=int(meta.get("FrameWidth", 0)),
        height=int(meta.get("FrameHeight", 0)),
        color_range=meta.get("ColorRange", ""),
    )


_MODEL_VERSION_KEY = {
    JobKind.LABELS: "LabelModelVersion",
    JobKind.MODERATION: "ModerationModelVersion",
    JobKind.TEXT: "TextModelVersion",
}


def _model_version(kind: JobKind, result: dict[str, Any]) -> str:
    if kind is JobKind.SEGMENTS:
        return ",".join(f"{t['Type']}:{t.get('ModelVersion', '')}" for t in result.get("SelectedSegmentTypes", []))
    return result.get(_MODEL_VERSION_KEY[kind], "")


def build_summary(
    video: VideoRecord | Mapping[str, Any], results: dict[JobKind, dict[str, Any]], bucket: str, now_iso: str
) -> VideoSummary:
    """`video` is the catalog record; `results` every page of each job, merged."""
    if not isinstance(video, VideoRecord):
        video = VideoRecord.model_validate(dict(video))
    segments = label_segments(results.get(JobKind.LABELS, {}).get("Labels", []))
    shots, cues = shots_and_cues(results.get(JobKind.SEGMENTS, {}).get("Segments", []))
    attribution = video.attribution.model_copy(deep=True)
    if video.transcoded:
        note = f"transcoded from {video.original_codec or 'the original codec'} to H.264 for analysis"
        if note not in attribution.modifications:
            attribution.modifications.append(note)
    jobs = video.jobs
    return VideoSummary(
        video_id=video.video_id,
        bucket=bucket,
        raw_key=video.raw_key,
        source=video.source,
        campaign=video.campaign,
        filename=video.filename,
        video=video_metadata(results),
        labels=segments,
        top_labels=top_labels(segments),
        moderation=moderation_findings(results.get(JobKind.MODERATION, {}).get("ModerationLabels", [])),
        text=text_lines(results.get(JobKind.TEXT, {}).get("TextDetections", [])),
        shots=shots,
        technical_cues=cues,
        attribution=attribution,
        credit_line=attribution.credit_line(),
        provenance=Provenance(
            raw_key=video.raw_key,
            raw_etag=video.raw_etag,
            analysed_key=video.analysed_key or video.raw_key,
            transcoded=video.transcoded,
            original_codec=video.original_codec,
            jobs={
                kind: JobProvenance(
                    job_id=jobs[kind].job_id if kind in jobs else result.get("JobId", ""),
                    status=result.get("JobStatus", ""),
                    api=API_NAME[kind],
                    model_version=_model_version(kind, result),
                )
                for kind, result in results.items()
            },
            analysis_started_at=video.analysis_started_at,
            summary_written_at=now_iso,
        ),
    )
