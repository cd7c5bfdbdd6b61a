"""People: OpenCV's HOG + linear SVM pedestrian detector (Dalal & Triggs; shipped inside OpenCV 4.x).

ImageNet-1k has no person class, so "Person" comes from here. The window scans an image pyramid with
``SCALE`` 1.2 between levels; every window the SVM accepts is kept (``groupThreshold=0``) and overlapping ones
are merged by non-maximum suppression; the SVM margin ``w`` becomes a confidence ``100 / (1 + exp(-2 w))``
and detections under ``MIN_MARGIN`` are dropped. Against OpenCV's usual ``scale=1.05`` with grouping of at
least 2 windows, this is 3.3x faster and finds people on 38 instead of 35 of 80 vtest frames, with no
detection on the cartoon, test-pattern and photo frames checked (README, "Speed").

Limits: upright, mostly unoccluded people at least ~128 px tall in the
analysed frame (≤ 360 px high); seated people, close-ups and crowds are often missed.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import cv2
import numpy as np

MIN_MARGIN = 0.3
NMS_IOU = 0.4
SCALE = 1.2


@dataclass(frozen=True)
class Instance:
    left: float
    top: float
    width: float
    height: float
    confidence: float


class PeopleDetector:
    version = "opencv-hog-default-people-4-s1.2"

    def __init__(self) -> None:
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self._lock = threading.Lock()

    def detect(self, gray: np.ndarray) -> list[Instance]:
        """People in one grey frame (full-range luma: ``decode.Frame.gray``)."""
        h, w = gray.shape[:2]
        if h < 128 or w < 64:
            return []
        with self._lock:
            rects, weights = self._hog.detectMultiScale(
                gray, winStride=(8, 8), padding=(8, 8), scale=SCALE, groupThreshold=0
            )
        if len(rects) == 0:
            return []
        weights = np.asarray(weights, dtype=float).ravel()
        boxes = [list(map(int, r)) for r in rects]
        keep = cv2.dnn.NMSBoxes(boxes, weights.tolist(), MIN_MARGIN, NMS_IOU)
        out = []
        for i in np.asarray(keep).ravel():
            x, y, bw, bh = boxes[i]
            x0, y0 = max(0, x), max(0, y)
            x1, y1 = min(w, x + bw), min(h, y + bh)
            conf = 100.0 / (1.0 + math.exp(-2.0 * weights[i]))
            out.append(Instance(x0 / w, y0 / h, (x1 - x0) / w, (y1 - y0) / h, round(conf, 3)))
        return sorted(out, key=lambda d: -d.confidence)
