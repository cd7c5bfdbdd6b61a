"""The analysis engine: one decode of a video feeds shots, black frames, labels, people and moderation.

Sampling (documented; Rekognition samples about every 500 ms): the decoder hands over every
``sample_every``-th frame, ≈ one per ``sample_ms`` (500 ms). Labels run on every sample, moderation on every
``moderation_every``-th (default 2: ≈ 1 s) and people on every ``people_every``-th (default 4: ≈ 2 s). Shots
and black frames see every frame. Each model gets the sample at its own input size, converted from the
decoder's YUV (``decode.Frame``): labels 224x224, moderation 256x256, people the luma plane (full range).
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

from . import decode as dec
from .labels import LabelInfo, LabelModel
from .models import INPUT_SIZE
from .moderation import NSFW_SIZE, ModerationModel
from .people import Instance, PeopleDetector
from .shots import ShotTracker, Span

IN_FLIGHT = 4  # inference tasks queued at most (each holds its sample frame)


@dataclass
class Analysis:
    """Everything the three Rekognition APIs report for one video."""

    info: dec.VideoInfo
    frames: int
    shots: list[Span]
    cues: list[Span]
    labels: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # (ms, name → confidence)
    people: list[tuple[int, list[Instance]]] = field(default_factory=list)
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
        people_every: int = 4,
        inference_threads: int = 1,
        precision: str = "auto",
    ) -> None:
        from .models import default_assets_dir, resolve_precision

        self.assets_dir = assets_dir or default_assets_dir()
        self.threads = threads
        self.sample_ms = sample_ms
        self.moderation_every = moderation_every
        self.people_every = people_every  # 0 disables people detection
        self.inference_threads = inference_threads
        self.precision = resolve_precision(precision)  # of the label and moderation models: int8 | fp32
        self._lock = threading.Lock()
        self._labels: LabelModel | None = None
        self._moderation: ModerationModel | None = None
        self._people: PeopleDetector | None = None

    def _load(self) -> None:
        with self._lock:
            if self._labels is None:
                cv2.setNumThreads(self.threads)
                self._labels = LabelModel(self.assets_dir, self.threads, self.precision)
                self._moderation = ModerationModel(self.assets_dir, self.threads, self.precision)
                self._people = PeopleDetector()

    @property
    def label_version(self) -> str:
        return LabelModel.version_for(self.precision)

    @property
    def moderation_version(self) -> str:
        return ModerationModel.version_for(self.precision)

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
            "people": step_ms * max(1, self.people_every),
        }

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

        def labels(ms: int, frame: dec.Frame) -> None:
            result.labels.append((ms, self._labels.predict([frame.rgb((INPUT_SIZE, INPUT_SIZE))])[0]))

        def moderation(ms: int, frame: dec.Frame) -> None:
            result.moderation.append((ms, self._moderation.score(frame.rgb((NSFW_SIZE, NSFW_SIZE)))))

        def people(ms: int, frame: dec.Frame) -> None:
            result.people.append((ms, self._people.detect(frame.gray())))

        def on_sample(k: int, frame: dec.Frame) -> None:
            ms = round(k * step_ms)
            submit(labels, ms, frame)
            if k % self.moderation_every == 0:
                submit(moderation, ms, frame)
            if self.people_every and k % self.people_every == 0:
                submit(people, ms, frame)

        try:
            total = dec.decode(path, plan, tracker.push, on_sample)
            while pending:  # decoding is over: this thread takes a share of the queue's tail
                run_next()
            for fut in futures:
                fut.result()  # re-raises a model failure
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        for series in (result.labels, result.moderation, result.people):
            series.sort(key=lambda item: item[0])
        result.frames = total
        result.shots = tracker.shots(total)
        result.cues = tracker.cues(total)
        return result
