"""Turn an ``Analysis`` into Rekognition Get* result items (before paging)."""

from __future__ import annotations

from fractions import Fraction

from .engine import Analysis
from .labels import LabelInfo, Taxonomy
from .moderation import labels_for
from .objects import reported
from .shots import Span

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


def _label_series(a: Analysis, catalogue: dict[str, LabelInfo], coco: dict[str, str]) -> dict[str, dict]:
    """name → {"samples": [(ms, confidence, instances)], "step": ms between samples}, ImageNet and COCO merged.

    ImageNet labels come from every label sample, COCO detections (with boxes) from every object sample: where
    both give the same label at the same timestamp, one sample carries the higher confidence and the boxes. A
    detected object's parents (Car → Vehicle, Transportation) get its confidence, without boxes.
    """
    merged: dict[str, dict[int, list]] = {}
    for ms, found in a.labels:
        for name, conf in found.items():
            merged.setdefault(name, {})[ms] = [conf, []]
    object_labels: set[str] = set()
    for ms, detections in a.objects:
        per_label: dict[str, list] = {}
        for d in reported(detections):
            name = coco[d.coco]
            inst = {
                "BoundingBox": {
                    "Width": round(d.width, 6),
                    "Height": round(d.height, 6),
                    "Left": round(d.left, 6),
                    "Top": round(d.top, 6),
                },
                "Confidence": round(d.score * 100, 3),
            }
            entry = per_label.setdefault(name, [0.0, []])
            entry[0] = max(entry[0], d.score * 100)
            entry[1].append(inst)
            for parent in catalogue[name].parents:
                up = per_label.setdefault(parent, [0.0, []])
                up[0] = max(up[0], d.score * 100)
        for name, (conf, instances) in per_label.items():
            object_labels.add(name)
            sample = merged.setdefault(name, {}).setdefault(ms, [0.0, []])
            sample[0] = max(sample[0], conf)
            sample[1] = instances or sample[1]
    out = {}
    for name, by_ms in merged.items():
        step = a.steps_ms["objects"] if name in object_labels else a.steps_ms["labels"]
        out[name] = {"samples": [(ms, c, inst) for ms, (c, inst) in sorted(by_ms.items())], "step": step}
    return out


def label_items(a: Analysis, taxonomy: Taxonomy, request: dict, sort_by: str, aggregate: str) -> list:
    catalogue = taxonomy.labels
    min_conf = request.get("MinConfidence", DEFAULT_MIN_CONFIDENCE)
    general = (request.get("Settings") or {}).get("GeneralLabels") or {}
    items = []
    for name, series in _label_series(a, catalogue, taxonomy.coco).items():
        samples, step = series["samples"], series["step"]
        info = catalogue[name]
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


# ---------------------------------------------------------------- text
DEFAULT_MIN_WORD_CONFIDENCE = 80.0  # Rekognition's default WordFilter.MinConfidence


def _geometry(box, polygon) -> dict:
    return {
        "BoundingBox": {
            "Width": round(box.width, 6),
            "Height": round(box.height, 6),
            "Left": round(box.left, 6),
            "Top": round(box.top, 6),
        },
        "Polygon": [{"X": x, "Y": y} for x, y in polygon],
    }


def _box_polygon(box) -> tuple[tuple[float, float], ...]:
    x0, y0, x1, y1 = box.left, box.top, box.left + box.width, box.top + box.height
    return tuple((round(x, 6), round(y, 6)) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1)))


def _in_regions(box, regions: list[dict]) -> bool:
    """At least half of ``box`` inside one region of interest (a BoundingBox, or a Polygon's bounding box)."""
    if not regions:
        return True
    area = box.width * box.height
    for region in regions:
        if region.get("BoundingBox"):
            r = region["BoundingBox"]
            rx0, ry0 = r.get("Left", 0.0), r.get("Top", 0.0)
            rx1, ry1 = rx0 + r.get("Width", 1.0), ry0 + r.get("Height", 1.0)
        elif region.get("Polygon"):
            xs, ys = [p["X"] for p in region["Polygon"]], [p["Y"] for p in region["Polygon"]]
            rx0, ry0, rx1, ry1 = min(xs), min(ys), max(xs), max(ys)
        else:
            continue
        ix = max(0.0, min(box.left + box.width, rx1) - max(box.left, rx0))
        iy = max(0.0, min(box.top + box.height, ry1) - max(box.top, ry0))
        if area > 0 and ix * iy >= 0.5 * area:
            return True
    return False


def text_items(a: Analysis, request: dict) -> list:
    """TextDetections: per sample, each line (Id n) followed by its words (ParentId = the line's Id).

    ``Filters.WordFilter`` (MinConfidence, default 80; MinBoundingBoxHeight/Width) and
    ``Filters.RegionsOfInterest`` apply to words; a line is kept while at least one of its words is.
    """
    filters = request.get("Filters") or {}
    wf = filters.get("WordFilter") or {}
    min_conf = float(wf.get("MinConfidence", DEFAULT_MIN_WORD_CONFIDENCE))
    min_h, min_w = float(wf.get("MinBoundingBoxHeight", 0.0)), float(wf.get("MinBoundingBoxWidth", 0.0))
    regions = filters.get("RegionsOfInterest") or []
    items = []
    for ms, lines in a.text:
        next_id = 0
        for line in lines:
            words = [
                w
                for w in line.words
                if line.confidence >= min_conf
                and w.box.height >= min_h
                and w.box.width >= min_w
                and _in_regions(w.box, regions)
            ]
            if not words:
                continue
            line_id = next_id
            next_id += 1
            items.append({
                "Timestamp": ms,
                "TextDetection": {
                    "DetectedText": line.text,
                    "Type": "LINE",
                    "Id": line_id,
                    "Confidence": line.confidence,
                    "Geometry": _geometry(line.box, line.polygon),
                },
            })  # fmt: skip
            for w in words:
                items.append({
                    "Timestamp": ms,
                    "TextDetection": {
                        "DetectedText": w.text,
                        "Type": "WORD",
                        "Id": next_id,
                        "ParentId": line_id,
                        "Confidence": line.confidence,
                        "Geometry": _geometry(w.box, _box_polygon(w.box)),
                    },
                })  # fmt: skip
                next_id += 1
    return items
