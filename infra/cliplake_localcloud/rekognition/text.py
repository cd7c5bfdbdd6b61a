"""Text on screen: RapidOCR 1.4.4 (PP-OCRv4 mobile detection and recognition, ONNX, inside the wheel).

Per text sample the detector (DBNet, the frame's longer side at most ``DET_SIDE`` px) *screens* the frame: no
box, no text, and nothing else runs (the cheap case). Boxes are *read* only where the text changed: a box over
the same place (IoU >= 0.7) and the same pixels (mean absolute difference of its grey pixels < ``SAME_PIXELS``)
as one of the previous sample's boxes reuses that box's line, so a caption is read once however long it stays,
and a clock in the corner costs one small crop per sample. A read crops each box from the frame with a margin
(a quarter of the box height) and scales it to 48 px high (the recogniser's input height) before recognition:
on the 360 px analysis frames this reads word spaces that RapidOCR's own crops lose.

Lines below ``MIN_SCORE`` are dropped. Words: a line's text split on spaces, each word's box the share of the
line box its characters take (the recogniser gives no reliable word positions for Latin text); a word's
confidence is its line's.

The model paths are pinned to the files in the installed wheel (``MODELS``, checked by SHA-256 at load), so
RapidOCR never looks elsewhere or downloads.
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

MIN_SCORE = 0.5
SAME_BOX_IOU = 0.7
SAME_PIXELS = 6.0
DET_SIDE = 320
REC_HEIGHT = 48
MODELS = {
    "det": ("ch_PP-OCRv4_det_infer.onnx", "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"),
    "rec": ("ch_PP-OCRv4_rec_infer.onnx", "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"),
}


@dataclass(frozen=True)
class Box:
    left: float  # fractions of the frame
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class TextWord:
    text: str
    box: Box


@dataclass(frozen=True)
class TextLine:
    text: str
    confidence: float  # percent
    box: Box
    polygon: tuple[tuple[float, float], ...]  # four corners, fractions, clockwise from top-left
    words: tuple[TextWord, ...]


def model_dir() -> Path:
    import rapidocr_onnxruntime

    return Path(rapidocr_onnxruntime.__file__).parent / "models"


def model_paths(check: bool = True) -> dict[str, Path]:
    """The pinned model files of the installed wheel; ``check`` verifies their SHA-256."""
    paths = {}
    for key, (name, digest) in MODELS.items():
        path = model_dir() / name
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: install rapidocr-onnxruntime==1.4.4 (make setup)")
        if check and hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise RuntimeError(f"{path} is not the model this engine was checked with (sha256 differs)")
        paths[key] = path
    return paths


def split_words(text: str, box: Box) -> tuple[TextWord, ...]:
    """Words of a line with boxes in proportion to their characters' share of the line."""
    n = len(text)
    if n == 0:
        return ()
    words, start = [], 0
    for token in text.split(" "):
        if token:
            left = box.left + box.width * start / n
            words.append(TextWord(token, Box(left, box.top, box.width * len(token) / n, box.height)))
        start += len(token) + 1
    return tuple(words)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ax0, ay0, ax1, ay1 = a
    bx0, by0, bx1, by1 = b
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / union if union > 0 else 0.0


class TextReader:
    """RapidOCR's detector and recogniser with pinned models; ``screen()`` gives a per-video reader."""

    version = "rapidocr-1.4.4-ppocrv4-mobile"

    def __init__(self, threads: int = 1) -> None:
        from rapidocr_onnxruntime.ch_ppocr_det import TextDetector
        from rapidocr_onnxruntime.main import DEFAULT_CFG_PATH, RapidOCR, UpdateParameters, read_yaml, update_model_path

        paths = model_paths()
        # RapidOCR's own configuration (its defaults, these overrides), for the two stages used: the orientation
        # classifier never runs (frames are upright), and the recogniser (23 MB, and as much again at its first
        # read) is loaded by the first box to read, so a video without text never holds it
        self._config = UpdateParameters()(
            update_model_path(read_yaml(DEFAULT_CFG_PATH)),
            det_model_path=str(paths["det"]),
            rec_model_path=str(paths["rec"]),
            intra_op_num_threads=threads,
            inter_op_num_threads=1,
            det_limit_type="max",  # with "max" RapidOCR never shrinks a frame under 960 px: detect() does
        )
        self._det = TextDetector(self._config["Det"])
        self._sorted_boxes = RapidOCR.sorted_boxes  # RapidOCR's reading order (a static method)
        self._rec = None
        self._lock = threading.Lock()  # RapidOCR's pre/post-processing objects keep per-call state

    def _recogniser(self):
        """RapidOCR's recogniser, loaded at its first use (under the lock)."""
        if self._rec is None:
            from rapidocr_onnxruntime.ch_ppocr_rec import TextRecognizer

            self._rec = TextRecognizer(self._config["Rec"])
        return self._rec

    def detect(self, bgr: np.ndarray) -> np.ndarray:
        """Text boxes (n, 4, 2) in ``bgr``'s pixels, top to bottom then left to right; empty when none.

        The detector sees the frame scaled down to ``DET_SIDE`` px on its longer side (RapidOCR's own
        ``limit_side_len`` never shrinks a frame under 960 px), boxes are scaled back."""
        h, w = bgr.shape[:2]
        scale = min(1.0, DET_SIDE / max(h, w))
        small = (
            bgr if scale == 1.0 else cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        )
        with self._lock:
            boxes, _ = self._det(small)
        if boxes is None or len(boxes) == 0:
            return np.zeros((0, 4, 2), np.float32)
        return np.asarray(self._sorted_boxes(boxes), np.float32) / scale

    def recognise(self, bgr: np.ndarray, boxes: np.ndarray) -> list[TextLine | None]:
        """One entry per box: its line, or None where nothing legible (score < ``MIN_SCORE``) was read."""
        h, w = bgr.shape[:2]
        crops, kept, out = [], [], [None] * len(boxes)
        for k, quad in enumerate(boxes):
            x0, y0 = quad.min(axis=0)
            x1, y1 = quad.max(axis=0)
            pad = 0.25 * (y1 - y0)
            cx0, cy0 = int(max(0, x0 - pad)), int(max(0, y0 - pad))
            cx1, cy1 = int(min(w, x1 + pad)), int(min(h, y1 + pad))
            if cx1 - cx0 < 4 or cy1 - cy0 < 4:
                continue
            crop = bgr[cy0:cy1, cx0:cx1]
            scale = REC_HEIGHT / crop.shape[0]
            crops.append(cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC))
            kept.append(k)
        if not crops:
            return out
        with self._lock:
            read, _ = self._recogniser()(crops)
        for k, (raw, score) in zip(kept, read, strict=True):
            quad = boxes[k]
            text = " ".join(str(raw).split())
            if not text or score < MIN_SCORE:
                continue
            x0, y0 = quad.min(axis=0)
            x1, y1 = quad.max(axis=0)
            box = Box(float(x0) / w, float(y0) / h, float(x1 - x0) / w, float(y1 - y0) / h)
            polygon = tuple((round(float(x) / w, 6), round(float(y) / h, 6)) for x, y in quad)
            out[k] = TextLine(text, round(float(score) * 100, 3), box, polygon, split_words(text, box))
        return out

    def screen(self) -> TextScreen:
        return TextScreen(self)


class TextScreen:
    """The text of one video, sample after sample in order: ``add`` on the decoding thread, ``step`` anywhere."""

    def __init__(self, reader: TextReader) -> None:
        self.reader = reader
        self.results: list[tuple[int, list[TextLine]]] = []
        self.reads = 0  # samples on which at least one box was recognised
        self.boxes_read = 0
        self.screened = 0
        self._pending: deque = deque()
        self._lock = threading.Lock()
        self._prev: list[tuple[np.ndarray, np.ndarray, TextLine | None]] = []  # (rect, grey crop, line) per box

    def add(self, ms: int, frame) -> None:
        self._pending.append((ms, frame))

    def step(self) -> None:
        with self._lock:  # samples are taken in order, one at a time: "changed" compares with the previous one
            ms, frame = self._pending.popleft()
            bgr = np.ascontiguousarray(frame.rgb()[:, :, ::-1])
            self.results.append((ms, self.read(bgr)))

    def read(self, bgr: np.ndarray) -> list[TextLine]:
        self.screened += 1
        boxes = self.reader.detect(bgr)
        if len(boxes) == 0:
            self._prev = []
            return []
        rects = np.concatenate([boxes.min(axis=1), boxes.max(axis=1)], axis=1)
        grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        crops = [grey[int(r[1]) : int(r[3]) + 1, int(r[0]) : int(r[2]) + 1] for r in rects]
        lines: list[TextLine | None] = [None] * len(boxes)
        todo = []
        for k, (rect, crop) in enumerate(zip(rects, crops, strict=True)):
            same = next((p for p in self._prev if _same_text(p[0], p[1], rect, crop)), None)
            if same is None:
                todo.append(k)
            else:
                lines[k] = same[2]
        if todo:
            for k, line in zip(todo, self.reader.recognise(bgr, boxes[todo]), strict=True):
                lines[k] = line
            self.reads += 1
            self.boxes_read += len(todo)
        self._prev = list(zip(rects, crops, lines, strict=True))
        return [line for line in lines if line is not None]


def _same_text(rect_a: np.ndarray, crop_a: np.ndarray, rect_b: np.ndarray, crop_b: np.ndarray) -> bool:
    """The same place (IoU >= SAME_BOX_IOU) and the same pixels (mean absolute grey difference < SAME_PIXELS)."""
    if _iou(rect_a, rect_b) < SAME_BOX_IOU:
        return False
    hh, ww = min(crop_a.shape[0], crop_b.shape[0]), min(crop_a.shape[1], crop_b.shape[1])
    if hh == 0 or ww == 0:
        return False
    diff = np.abs(crop_a[:hh, :ww].astype(np.int16) - crop_b[:hh, :ww].astype(np.int16)).mean()
    return bool(diff < SAME_PIXELS)
