"""Turn an ``Analysis`` into Rekognition Get* result items (before paging)."""

from __future__ import annotations

from fractions import Fraction

from .engine import Analysis
from .labels import LabelInfo
from .moderation import labels_for
from .shots import Span

PERSON = LabelInfo("Person", (), "Person Description")
DEFAULT_MIN_CONFIDENCE = 50.0
DEFAULT_MIN_SEGMENT_CONFIDENCE = 50.0


def video_metadata(a: Analysis) -> dict:
    i = a.info
    return {
        "Codec": i.codec,
        "DurationMillis": i.duration_ms,
        "Format": i.format,
        "FrameRate": round(float(i.fps), 3),
        "FrameHeight": i.height,
        "FrameWidth": i.width,
        "ColorRange": i.color_range,
    }


def audio_metadata(a: Analysis) -> list[dict]:
    return [
        {"Codec": codec, "DurationMillis": a.info.duration_ms, "SampleRate": rate, "NumberOfChannels": channels}
        for codec, rate, channels in a.info.audio
    ]


# ---------------------------------------------------------------- labels
def _label(info: LabelInfo, confidence: float, instances: list | None = None) -> dict:
    return {
        "Name": info.name,
        "Confidence": round(min(confidence, 100.0), 3),
        "Instances": instances or [],
        "Parents": [{"Name": p} for p in info.parents],
        "Aliases": [],
        "Categories": [{"Name": info.category}],
    }


def _keep(info: LabelInfo, general: dict) -> bool:
    if general.get("LabelInclusionFilters") and info.name not in general["LabelInclusionFilters"]:
        return False
    if info.name in general.get("LabelExclusionFilters", []):
        return False
    cats = general.get("LabelCategoryInclusionFilters")
    if cats and info.category not in cats:
        return False
    return info.category not in general.get("LabelCategoryExclusionFilters", [])


def _label_series(a: Analysis, catalogue: dict[str, LabelInfo]) -> dict[str, list[tuple[int, float, list]]]:
    """name → [(ms, confidence, instances)] over that label's own sample series (all samples)."""
    series: dict[str, list[tuple[int, float, list]]] = {}
    for ms, found in a.labels:
        for name, conf in found.items():
            series.setdefault(name, []).append((ms, conf, []))
    for ms, people in a.people:
        instances = [
            {
                "BoundingBox": {"Width": p.width, "Height": p.height, "Left": p.left, "Top": p.top},
                "Confidence": p.confidence,
            }
            for p in people
        ]
        conf = max((p.confidence for p in people), default=0.0)
        series.setdefault("Person", []).append((ms, conf, instances))
    return series


def label_items(a: Analysis, catalogue: dict[str, LabelInfo], request: dict, sort_by: str, aggregate: str) -> list:
    min_conf = request.get("MinConfidence", DEFAULT_MIN_CONFIDENCE)
    general = (request.get("Settings") or {}).get("GeneralLabels") or {}
    items = []
    for name, samples in _label_series(a, catalogue).items():
        step = a.steps_ms["people" if name == "Person" else "labels"]
        info = PERSON if name == "Person" else catalogue[name]
        if not _keep(info, general):
            continue
        if aggregate == "SEGMENTS":
            for run in _runs(samples, min_conf, step):
                start, end = run[0][0], min(round(run[-1][0] + step), a.info.duration_ms)
                best = max(run, key=lambda s: s[1])
                items.append({
                    "Timestamp": start,
                    "Label": _label(info, best[1]),
                    "StartTimestampMillis": start,
                    "EndTimestampMillis": end,
                    "DurationMillis": end - start,
                })  # fmt: skip
        else:
            items.extend(
                {"Timestamp": ms, "Label": _label(info, conf, inst)} for ms, conf, inst in samples if conf >= min_conf
            )
    if sort_by == "NAME":
        items.sort(key=lambda it: (it["Label"]["Name"], it["Timestamp"]))
    else:
        items.sort(key=lambda it: (it["Timestamp"], -it["Label"]["Confidence"], it["Label"]["Name"]))
    return items


def _runs(samples: list[tuple[int, float, list]], min_conf: float, step: float) -> list[list]:
    """Consecutive samples (no sample missing in between) at or above ``min_conf``: one run per segment."""
    runs, current = [], []
    for s in samples:
        if s[1] < min_conf:
            continue
        if current and s[0] - current[-1][0] > 1.5 * step:
            runs.append(current)
            current = []
        current.append(s)
    if current:
        runs.append(current)
    return runs


# ---------------------------------------------------------------- moderation
def moderation_items(a: Analysis, request: dict, sort_by: str, aggregate: str) -> list:
    min_conf = request.get("MinConfidence", DEFAULT_MIN_CONFIDENCE)
    per_name: dict[tuple[str, str, int], list] = {}
    items = []
    for ms, score in a.moderation:
        for label in labels_for(score):
            if label["Confidence"] < min_conf:
                continue
            if aggregate == "SEGMENTS":
                key = (label["Name"], label["ParentName"], label["TaxonomyLevel"])
                per_name.setdefault(key, []).append((ms, label["Confidence"], []))
            else:
                items.append({"Timestamp": ms, "ModerationLabel": label})
    step = a.steps_ms["moderation"]
    for (name, parent, level), samples in per_name.items():
        for run in _runs(samples, min_conf, step):
            start, end = run[0][0], min(round(run[-1][0] + step), a.info.duration_ms)
            label = {"Confidence": max(r[1] for r in run), "Name": name, "ParentName": parent, "TaxonomyLevel": level}
            items.append({
                "Timestamp": start,
                "ModerationLabel": label,
                "StartTimestampMillis": start,
                "EndTimestampMillis": end,
                "DurationMillis": end - start,
            })  # fmt: skip
    if sort_by == "NAME":
        items.sort(key=lambda it: (it["ModerationLabel"]["Name"], it["Timestamp"]))
    else:
        items.sort(key=lambda it: (it["Timestamp"], it["ModerationLabel"]["TaxonomyLevel"]))
    return items


# ---------------------------------------------------------------- segments
def smpte(frame: int, fps: Fraction) -> str:
    """SMPTE timecode of ``frame``; drop-frame (``;``) for 29.97/59.94 fps as Rekognition does."""
    nominal = round(float(fps))
    drop = fps.denominator == 1001 and nominal in (30, 60)
    if drop:
        d = nominal // 15  # frames dropped per minute: 2 at 29.97, 4 at 59.94
        per10 = nominal * 600 - d * 9
        per1 = nominal * 60 - d
        tens, rem = divmod(frame, per10)
        frame += d * 9 * tens + (d * ((rem - d) // per1) if rem > d else 0)
    ff = frame % nominal
    s = frame // nominal
    sep = ";" if drop else ":"
    return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}{sep}{ff:02d}"


def _segment(a: Analysis, span: Span) -> dict:
    fps = a.info.fps
    n = span.end - span.start + 1
    start_ms, end_ms = a.ms(span.start), a.ms(span.end + 1)
    return {
        "StartTimestampMillis": start_ms,
        "EndTimestampMillis": end_ms,
        "DurationMillis": end_ms - start_ms,
        "StartTimecodeSMPTE": smpte(span.start, fps),
        "EndTimecodeSMPTE": smpte(span.end + 1, fps),
        "DurationSMPTE": smpte(n, fps),
        "StartFrameNumber": span.start,
        "EndFrameNumber": span.end,
        "DurationFrames": n,
    }


def segment_items(a: Analysis, request: dict) -> list:
    types = request.get("SegmentTypes", [])
    filters = request.get("Filters") or {}
    shot_min = (filters.get("ShotFilter") or {}).get("MinSegmentConfidence", DEFAULT_MIN_SEGMENT_CONFIDENCE)
    cue_min = (filters.get("TechnicalCueFilter") or {}).get("MinSegmentConfidence", DEFAULT_MIN_SEGMENT_CONFIDENCE)
    items = []
    if "SHOT" in types:
        for index, span in enumerate(a.shots):
            if span.confidence >= shot_min:
                seg = {"Type": "SHOT", **_segment(a, span)}
                seg["ShotSegment"] = {"Index": index, "Confidence": span.confidence}
                items.append(seg)
    if "TECHNICAL_CUE" in types:
        for span in a.cues:
            if span.confidence >= cue_min:
                seg = {"Type": "TECHNICAL_CUE", **_segment(a, span)}
                seg["TechnicalCueSegment"] = {"Type": span.kind, "Confidence": span.confidence}
                items.append(seg)
    items.sort(key=lambda s: (s["StartTimestampMillis"], s["Type"]))
    return items
