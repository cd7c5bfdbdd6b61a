"""The analysis engine: one decode of a video feeds shots, black frames, labels, objects, moderation and text,
each an ``Analyser`` (``analysers.py``: sampling rate, input size, process a frame, results).

Sampling (documented; Rekognition samples about every 500 ms): the decoder hands over every
``sample_every``-th frame, ≈ one per ``sample_ms`` (500 ms). Labels run on every sample, moderation on every
``moderation_every``-th (default 2: ≈ 1 s), people and objects (NanoDet) on every ``objects_every``-th
(default 4: ≈ 2 s, as the HOG people detector before it) and the text screen on every ``text_every``-th
(default 4: ≈ 2 s; a box is read only when the screen finds text that changed). Shots and black frames see
every frame. Each model gets the sample at its own input size, converted from the decoder's YUV
(``decode.Frame``): labels 224x224 RGB, moderation 256x256, objects 352x352 BGR, text the sample itself (BGR).
Inference runs on ``inference_threads`` worker threads fed by the sample reader (at most ``IN_FLIGHT`` tasks
queued), overlapping ffmpeg's decoding; ``threads`` is the onnxruntime/OpenCV thread count per inference. One
worker with one thread is fastest on 2 cores for HD, where ffmpeg's decoding already keeps both busy (2 workers:
≈ 5 % slower on the 720p benchmark). Where decoding is cheap (SD, low frame rates) the queue fills up: the
sample reader then runs queued tasks itself instead of waiting (vtest: 2.82 → 2.04 s), and once decoding ends
the calling thread takes a share of what is left.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from . import decode as dec
from .analysers import EVERY_FRAME, Analyser, Labels, Moderation, Objects, Shots, Text
from .labels import LabelInfo, LabelModel, Taxonomy
from .moderation import ModerationModel
from .objects import Detection, ObjectDetector
from .shots import Span
from .text import TextLine, TextReader

IN_FLIGHT = 4  # inference tasks queued at most (each holds its sample frame)


@dataclass
class Analysis:
    """Everything the three Rekognition APIs report for one video."""

    info: dec.VideoInfo
    frames: int
    shots: list[Span]
    cues: list[Span]
    labels: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # (ms, name → confidence)
    objects: list[tuple[int, list[Detection]]] = field(default_factory=list)  # (ms, NanoDet detections)
    text: list[tuple[int, list[TextLine]]] = field(default_factory=list)  # (ms, lines read on screen)
    text_reads: int = 0  # text samples actually recognised (the others: no text, or the same text)
    moderation: list[tuple[int, float]] = field(default_factory=list)  # (ms, NSFW score)
    steps_ms: dict[str, float] = field(default_factory=dict)  # sampling interval per series

    def ms(self, frame: int) -> int:
        return round(frame * 1000 / float(self.info.fps))


class Engine:
    """Loads the models once (lazily, thread-safe) and analyses files."""

    shot_version = "pyscenedetect-0.7-adaptive"
    cue_version = "luma-blackframes-1.0"

    def __init__(
        self,
        assets_dir: Path | None = None,
        threads: int = 1,
        sample_ms: int = dec.SAMPLE_MS,
        moderation_every: int = 2,
        objects_every: int = 4,
        text_every: int = 4,
        inference_threads: int = 1,
        precision: str = "auto",
    ) -> None:
        from .models import default_assets_dir, resolve_precision

        self.assets_dir = assets_dir or default_assets_dir()
        self.threads = threads
        self.sample_ms = sample_ms
        self.moderation_every = moderation_every
        self.objects_every = objects_every  # 0 disables people and objects
        self.text_every = text_every  # 0 disables text
        self.inference_threads = inference_threads
        self.precision = resolve_precision(precision)  # of the label and moderation models: int8 | fp32
        self._lock = threading.Lock()
        self._labels: LabelModel | None = None
        self._moderation: ModerationModel | None = None
        self._objects: ObjectDetector | None = None
        self._text: TextReader | None = None

    def _load(self) -> None:
        with self._lock:
            if self._labels is None:
                cv2.setNumThreads(self.threads)
                self._labels = LabelModel(self.assets_dir, self.threads, self.precision)
                self._moderation = ModerationModel(self.assets_dir, self.threads, self.precision)
                self._objects = ObjectDetector(self.assets_dir, self.threads)
                self._text = TextReader(self.threads)

    @property
    def label_version(self) -> str:
        return LabelModel.version_for(self.precision)

    @property
    def moderation_version(self) -> str:
        return ModerationModel.version_for(self.precision)

    @property
    def object_version(self) -> str:
        return ObjectDetector.version

    @property
    def text_version(self) -> str:
        return TextReader.version

    def taxonomy(self) -> Taxonomy:
        """The label catalogue and the COCO → label map of the object detector."""
        self._load()
        return self._labels.taxonomy

    def _fold(self, probs: list, objects: list[tuple[int, list[Detection]]]) -> list[tuple[int, dict[str, float]]]:
        """ImageNet probabilities → labels, each frame's COCO labels checked against the nearest object sample."""
        taxonomy = self._labels.taxonomy
        known = frozenset(taxonomy.coco.values())
        times = np.array([ms for ms, _ in objects]) if objects else None
        out = []
        for ms, p in probs:
            unconfirmed: frozenset[str] = frozenset()
            if times is not None:
                seen = {taxonomy.coco[d.coco] for d in objects[int(np.abs(times - ms).argmin())][1]}
                unconfirmed = known - seen
            out.append((ms, taxonomy.fold(p, unconfirmed=unconfirmed)))
        return out

    def label_catalogue(self) -> dict[str, LabelInfo]:
        """Every label the label model can emit, with its parents and category."""
        self._load()
        return self._labels.taxonomy.labels

    def analysers(self, fps: Fraction) -> list[Analyser]:
        """This engine's analysers for one video, over its models (loaded once, shared by every video)."""
        self._load()
        return [
            Shots(fps),
            Labels(self._labels),
            Moderation(self._moderation, self.moderation_every),
            Objects(self._objects, self.objects_every),
            Text(self._text, self.text_every),
        ]

    def analyse(self, path: Path) -> Analysis:
        """Probe, check the format (raises ``UnsupportedVideo``) and analyse ``path`` in one decode."""
        info = dec.probe(path)
        dec.check_supported(info)
        plan = dec.Plan.for_video(info, self.sample_ms)
        analysers = self.analysers(info.fps)
        step_ms = plan.sample_every * 1000 / float(info.fps)
        every_frame = [a for a in analysers if a.every == EVERY_FRAME]
        sampled = [a for a in analysers if a.every > 0]

        pool = ThreadPoolExecutor(self.inference_threads, thread_name_prefix="rekognition-infer")
        in_flight = threading.BoundedSemaphore(IN_FLIGHT)
        futures: list[Future] = []
        pending: deque = deque()  # inference tasks not started yet, taken in order by whichever thread is free

        def run_next() -> None:
            try:
                task = pending.popleft()
            except IndexError:
                return  # already taken
            try:
                task()
            finally:
                in_flight.release()

        def submit(task) -> None:
            # At most IN_FLIGHT tasks queued (frames held in memory); while the queue is full, the sample reader
            # runs queued tasks itself rather than wait, so a cheap decode leaves no core idle.
            while not in_flight.acquire(blocking=False):
                if not pending:
                    in_flight.acquire()
                    break
                run_next()
            pending.append(task)
            futures.append(pool.submit(run_next))

        def on_frame(index: int, frame: dec.Frame) -> None:
            for analyser in every_frame:
                analyser.process(index, frame)

        def on_sample(k: int, frame: dec.Frame) -> None:
            ms = round(k * step_ms)
            for analyser in sampled:
                if k % analyser.every == 0:
                    submit(analyser.task(ms, frame))

        try:
            total = dec.decode(path, plan, on_frame, on_sample)
            while pending:  # decoding is over: this thread takes a share of the queue's tail
                run_next()
            for fut in futures:
                fut.result()  # re-raises a model failure
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        return self._assemble(info, total, step_ms, {a.name: a for a in analysers})

    def _assemble(self, info: dec.VideoInfo, total: int, step_ms: float, by: dict[str, Analyser]) -> Analysis:
        """The analysers' results as the Rekognition APIs read them (labels folded with the objects found)."""
        shots, text = by["shots"], by["text"]
        assert isinstance(shots, Shots) and isinstance(text, Text)
        objects = by["objects"].results()
        return Analysis(
            info=info,
            frames=total,
            shots=shots.results(),
            cues=shots.cues(),
            labels=self._fold(by["labels"].results(), objects),
            objects=objects,
            text=text.results(),
            text_reads=text.reads,
            moderation=by["moderation"].results(),
            steps_ms={a.name: step_ms * max(1, a.every) for a in by.values() if a.every != EVERY_FRAME},
        )
