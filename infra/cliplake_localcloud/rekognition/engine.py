"""The analysis engine: one decode of a video feeds shots, black frames, labels, objects, moderation and text.

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
from pathlib import Path

import cv2
import numpy as np

from . import decode as dec
from .labels import LabelInfo, LabelModel, Taxonomy
from .models import INPUT_SIZE
from .moderation import NSFW_SIZE, ModerationModel
from .objects import Detection, ObjectDetector
from .shots import ShotTracker, Span
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

    def analyse(self, path: Path) -> Analysis:
        """Probe, check the format (raises ``UnsupportedVideo``) and analyse ``path`` in one decode."""
        info = dec.probe(path)
        dec.check_supported(info)
        self._load()
        plan = dec.Plan.for_video(info, self.sample_ms)
        tracker = ShotTracker(info.fps)
        result = Analysis(info=info, frames=0, shots=[], cues=[])
        step_ms = plan.sample_every * 1000 / float(info.fps)
        result.steps_ms = {
            "labels": step_ms,
            "moderation": step_ms * self.moderation_every,
            "objects": step_ms * max(1, self.objects_every),
            "text": step_ms * max(1, self.text_every),
        }
        screen = self._text.screen() if self.text_every else None

        pool = ThreadPoolExecutor(self.inference_threads, thread_name_prefix="rekognition-infer")
        in_flight = threading.BoundedSemaphore(IN_FLIGHT)
        futures: list[Future] = []
        pending: deque = deque()  # inference tasks not started yet, taken in order by whichever thread is free

        def run_next() -> None:
            try:
                fn, args = pending.popleft()
            except IndexError:
                return  # already taken
            try:
                fn(*args)
            finally:
                in_flight.release()

        def submit(fn, *args) -> None:
            # At most IN_FLIGHT tasks queued (frames held in memory); while the queue is full, the sample reader
            # runs queued tasks itself rather than wait, so a cheap decode leaves no core idle.
            while not in_flight.acquire(blocking=False):
                if not pending:
                    in_flight.acquire()
                    break
                run_next()
            pending.append((fn, args))
            futures.append(pool.submit(run_next))

        probs: list[tuple[int, np.ndarray]] = []

        def labels(ms: int, frame: dec.Frame) -> None:
            probs.append((ms, self._labels.probabilities([frame.rgb((INPUT_SIZE, INPUT_SIZE))])[0]))

        def moderation(ms: int, frame: dec.Frame) -> None:
            result.moderation.append((ms, self._moderation.score(frame.rgb((NSFW_SIZE, NSFW_SIZE)))))

        def objects(ms: int, frame: dec.Frame) -> None:
            bgr = frame.rgb((self._objects.size, self._objects.size))[:, :, ::-1]
            result.objects.append((ms, self._objects.detect(bgr, agnostic=False)))

        def on_sample(k: int, frame: dec.Frame) -> None:
            ms = round(k * step_ms)
            submit(labels, ms, frame)
            if k % self.moderation_every == 0:
                submit(moderation, ms, frame)
            if self.objects_every and k % self.objects_every == 0:
                submit(objects, ms, frame)
            if screen is not None and k % self.text_every == 0:
                screen.add(ms, frame)
                submit(screen.step)

        try:
            total = dec.decode(path, plan, tracker.push, on_sample)
            while pending:  # decoding is over: this thread takes a share of the queue's tail
                run_next()
            for fut in futures:
                fut.result()  # re-raises a model failure
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        result.objects.sort(key=lambda item: item[0])
        result.labels = self._fold(sorted(probs, key=lambda item: item[0]), result.objects)
        if screen is not None:
            result.text = screen.results
            result.text_reads = screen.reads
        for series in (result.labels, result.moderation, result.objects, result.text):
            series.sort(key=lambda item: item[0])
        result.frames = total
        result.shots = tracker.shots(total)
        result.cues = tracker.cues(total)
        return result
