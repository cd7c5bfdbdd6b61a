"""The Rekognition Video APIs the endpoint serves, one row each: its Start*/Get* operations, the analysers whose
results it reports (``analysers.ANALYSERS``), and how its Get* response is built from the analysis. The endpoint
(``server``) dispatches on this table only; every API's jobs share one analysis of the video."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import lazy

if TYPE_CHECKING:
    from . import results
    from .engine import Analysis, Engine
else:
    results = lazy(f"{__package__}.results")

Header = Callable[["Engine", dict, dict, "Analysis | None"], dict]  # (engine, Start* request, Get* request, analysis)
Items = Callable[["Analysis", "Engine", dict, dict], list]  # (analysis, engine, Start* request, Get* request)


@dataclass(frozen=True)
class Api:
    start: str  # the Start* operation; a job's `API` (in its completion message) is this name
    get: str
    analysers: tuple[str, ...]  # whose results it reports
    key: str  # the Get* response's list of results (paged)
    header: Header  # the Get* response's other fields (model versions, request metadata)
    items: Items
    metadata_list: bool = False  # VideoMetadata as a list (GetSegmentDetection) rather than one object


def _order(request: dict) -> tuple[str, str]:
    return request.get("SortBy", "TIMESTAMP"), request.get("AggregateBy", "TIMESTAMPS")


def _with_order(request: dict, **versions: str) -> dict:
    sort_by, aggregate = _order(request)
    return {**versions, "GetRequestMetadata": {"SortBy": sort_by, "AggregateBy": aggregate}}


def _labels_header(engine: Engine, _: dict, request: dict, __: Analysis | None) -> dict:
    return _with_order(request, LabelModelVersion=engine.label_version)


def _labels(a: Analysis, engine: Engine, job: dict, request: dict) -> list:
    return results.label_items(a, engine.taxonomy(), job, *_order(request))


def _moderation_header(engine: Engine, _: dict, request: dict, __: Analysis | None) -> dict:
    return _with_order(request, ModerationModelVersion=engine.moderation_version)


def _moderation(a: Analysis, _: Engine, job: dict, request: dict) -> list:
    return results.moderation_items(a, job, *_order(request))


def _segments_header(engine: Engine, job: dict, _: dict, a: Analysis | None) -> dict:
    out: dict = {
        "SelectedSegmentTypes": [
            {"Type": t, "ModelVersion": engine.shot_version if t == "SHOT" else engine.cue_version}
            for t in job["SegmentTypes"]
        ]
    }
    if a is not None:
        out["AudioMetadata"] = results.audio_metadata(a)
    return out


def _segments(a: Analysis, _: Engine, job: dict, __: dict) -> list:
    return results.segment_items(a, job)


def _text_header(engine: Engine, *_: object) -> dict:
    return {"TextModelVersion": engine.text_version}


def _text(a: Analysis, _: Engine, job: dict, __: dict) -> list:
    return results.text_items(a, job)


APIS: tuple[Api, ...] = (
    Api("StartLabelDetection", "GetLabelDetection", ("labels", "objects"), "Labels", _labels_header, _labels),
    Api("StartContentModeration", "GetContentModeration", ("moderation",), "ModerationLabels", _moderation_header,
        _moderation),
    Api("StartSegmentDetection", "GetSegmentDetection", ("shots",), "Segments", _segments_header, _segments,
        metadata_list=True),
    Api("StartTextDetection", "GetTextDetection", ("text",), "TextDetections", _text_header, _text),
)  # fmt: skip
START = {api.start: api for api in APIS}
GET = {api.get: api for api in APIS}
