"""One interface for every analysis of a video, as PySceneDetect has one for its detectors (``SceneDetector``:
``process_frame``, then the cuts it found).

An ``Analyser`` is made for one video from a loaded model and says:

- ``every``: its sampling rate, in samples (the decoder hands over one sample per ≈ ``sample_ms``, 500 ms):
  1 = each sample, 4 = each fourth, 0 = off; ``EVERY_FRAME`` = every decoded frame, at the decoder's small size,
  in order on the decoding thread (shots and black frames);
- ``input_size``: the (width, height) of the RGB frame its ``process`` receives (``None``: the decoder's frame);
- ``process(at, frame)``: one frame (``at``: the sample's millisecond, or the frame number for ``EVERY_FRAME``);
- ``results()``: what it found, in time order.

``task`` is how the engine schedules a sample: called on the sample reader, in order, it returns the work an
inference worker runs (by default: the frame at ``input_size``, then ``process``). The engine knows no analyser
by name beyond ``ANALYSERS``; the endpoint's API table (``apis``) says which analysers' results each API reports.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

from . import decode as dec
from .labels import LabelModel
from .models import INPUT_SIZE
from .moderation import NSFW_SIZE, ModerationModel
from .objects import Detection, ObjectDetector
from .shots import ShotTracker, Span
from .text import TextLine, TextReader

EVERY_FRAME = -1


class Analyser(ABC):
    name: str
    every: int = 1
    input_size: tuple[int, int] | None = None

    def task(self, at: int, frame: dec.Frame) -> Callable[[], None]:
        """The work for one sample (called on the sample reader, in order; run on an inference worker)."""
        return lambda: self.process(at, frame.rgb(self.input_size) if self.input_size else frame)

    @abstractmethod
    def process(self, at: int, frame: Any) -> None: ...

    @abstractmethod
    def results(self) -> list: ...


class Labels(Analyser):
    """EfficientNet-Lite0's ImageNet probabilities per sample (folded into labels by the engine, which checks
    their COCO labels against the object detector's findings)."""

    name = "labels"
    input_size = (INPUT_SIZE, INPUT_SIZE)

    def __init__(self, model: LabelModel, every: int = 1) -> None:
        self.model, self.every = model, every
        self._found: list[tuple[int, np.ndarray]] = []

    def process(self, at: int, frame: np.ndarray) -> None:
        self._found.append((at, self.model.probabilities([frame])[0]))

    def results(self) -> list[tuple[int, np.ndarray]]:
        return sorted(self._found, key=lambda item: item[0])


class Moderation(Analyser):
    """Open-NSFW's score per sample."""

    name = "moderation"
    input_size = (NSFW_SIZE, NSFW_SIZE)

    def __init__(self, model: ModerationModel, every: int = 2) -> None:
        self.model, self.every = model, every
        self._found: list[tuple[int, float]] = []

    def process(self, at: int, frame: np.ndarray) -> None:
        self._found.append((at, self.model.score(frame)))

    def results(self) -> list[tuple[int, float]]:
        return sorted(self._found, key=lambda item: item[0])


class Objects(Analyser):
    """NanoDet-g's people and objects per sample (it takes BGR)."""

    name = "objects"

    def __init__(self, model: ObjectDetector, every: int = 4) -> None:
        self.model, self.every = model, every
        self.input_size = (model.size, model.size)
        self._found: list[tuple[int, list[Detection]]] = []

    def process(self, at: int, frame: np.ndarray) -> None:
        self._found.append((at, self.model.detect(frame[:, :, ::-1], agnostic=False)))

    def results(self) -> list[tuple[int, list[Detection]]]:
        return sorted(self._found, key=lambda item: item[0])


class Text(Analyser):
    """The lines of on-screen text per sample, read only where the text changed: samples are taken in order
    (``TextScreen.add`` on the sample reader), each compared with the one before."""

    name = "text"

    def __init__(self, reader: TextReader, every: int = 4) -> None:
        self.every = every
        self.screen = reader.screen()

    def task(self, at: int, frame: dec.Frame) -> Callable[[], None]:
        self.screen.add(at, frame)
        return self.screen.step

    def process(self, at: int, frame: dec.Frame) -> None:
        self.screen.add(at, frame)
        self.screen.step()

    def results(self) -> list[tuple[int, list[TextLine]]]:
        return sorted(self.screen.results, key=lambda item: item[0])

    @property
    def reads(self) -> int:
        return self.screen.reads


class Shots(Analyser):
    """Shot changes (PySceneDetect's AdaptiveDetector) and black frames, from every decoded frame."""

    name = "shots"
    every = EVERY_FRAME

    def __init__(self, fps: Fraction) -> None:
        self.tracker = ShotTracker(fps)
        self.frames = 0

    def process(self, at: int, frame: dec.Frame) -> None:
        self.tracker.push(at, frame)
        self.frames = at + 1

    def results(self) -> list[Span]:
        return self.tracker.shots(self.frames)

    def cues(self) -> list[Span]:
        """``BlackFrames`` runs and the ``Content`` between them."""
        return self.tracker.cues(self.frames)


ANALYSERS: tuple[type[Analyser], ...] = (Shots, Labels, Moderation, Objects, Text)
