"""Shot boundaries (PySceneDetect ``AdaptiveDetector``) and black frames, from the small decoded stream.

Frames are fed straight to the detector's ``process_frame`` (no second decode), converted to BGR by OpenCV's
BT.601 conversion whatever the video's matrix: the detector only compares neighbouring frames with each other,
and this conversion costs a third of the exact one (``Frame.rgb``). A shot's confidence grows with the
detector's content score at the cut that opens it.

A frame is black under Rekognition's default ``BlackFrame`` filter: ≥ 99 % of its pixels at or below 20 %
of the luma range, read off the luma plane, which the decoder hands over in limited range (16..235) for every
video: Y ≤ 16 + 0.2 · 219 = 59.8. ≥ ``MIN_BLACK_FRAMES`` consecutive black frames form a
``BlackFrames`` technical cue; the stretches between them are ``Content`` cues. A job's own
``BlackFrame`` filter values are not applied: one analysis is shared by every job on the same object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import cv2
from scenedetect import AdaptiveDetector
from scenedetect.common import FrameTimecode

from .decode import Frame

MAX_PIXEL_THRESHOLD = 0.2  # Rekognition's default BlackFrame.MaxPixelThreshold
MIN_COVERAGE = 0.99  # Rekognition's default BlackFrame.MinCoveragePercentage / 100
MIN_BLACK_FRAMES = 3
MIN_SCENE_FRAMES = 5


@dataclass(frozen=True)
class Span:
    """Frames ``start..end`` inclusive."""

    start: int
    end: int
    confidence: float
    kind: str = "SHOT"  # SHOT | BlackFrames | Content


@dataclass
class ShotTracker:
    fps: Fraction
    _detector: AdaptiveDetector = field(init=False)
    _cuts: list[tuple[int, float]] = field(default_factory=list)
    _scores: dict[int, float] = field(default_factory=dict)
    _black: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._detector = AdaptiveDetector(min_scene_len=MIN_SCENE_FRAMES)
        self._black_luma = int(16 + MAX_PIXEL_THRESHOLD * 219)  # 59.8: Y ≤ 59 is black

    def push(self, index: int, frame: Frame) -> None:
        """Feed frame ``index`` (sequential)."""
        lit = cv2.countNonZero(cv2.compare(frame.y, self._black_luma, cv2.CMP_GT))
        self._black.append(lit <= (1 - MIN_COVERAGE) * frame.y.size)
        bgr = cv2.cvtColor(frame.i420(), cv2.COLOR_YUV2BGR_I420)
        cuts = self._detector.process_frame(FrameTimecode(index, fps=self.fps), bgr)
        score = getattr(self._detector, "_frame_score", None)
        if score is not None:
            self._scores[index] = float(score)
        for cut in cuts:
            frame = cut.frame_num
            self._cuts.append((frame, self._scores.get(frame, 30.0)))

    def shots(self, total: int) -> list[Span]:
        starts = [(0, 100.0)] + [(f, s) for f, s in self._cuts if 0 < f < total]
        out = []
        for i, (start, score) in enumerate(starts):
            end = starts[i + 1][0] - 1 if i + 1 < len(starts) else total - 1
            conf = 99.9 if start == 0 else min(99.9, 80.0 + score / 5.0)
            out.append(Span(start, end, round(conf, 3)))
        return out

    def cues(self, total: int) -> list[Span]:
        """``BlackFrames`` runs and the ``Content`` between them."""
        black: list[tuple[int, int]] = []
        run_start = None
        for i, is_black in enumerate([*self._black[:total], False]):
            if is_black and run_start is None:
                run_start = i
            elif not is_black and run_start is not None:
                if i - run_start >= MIN_BLACK_FRAMES:
                    black.append((run_start, i - 1))
                run_start = None
        out: list[Span] = []
        cursor = 0
        for start, end in black:
            if start > cursor:
                out.append(Span(cursor, start - 1, 90.0, "Content"))
            out.append(Span(start, end, 99.0, "BlackFrames"))
            cursor = end + 1
        if cursor < total:
            out.append(Span(cursor, total - 1, 90.0, "Content"))
        return out
