"""The emulator's one analyser interface and its API table: an analyser the engine has never heard of is fed by the
same decode at its own sampling rate and input size, and every API of the table is a real Rekognition operation
pair reporting analysers that exist."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cliplake_localcloud.rekognition import analysers as an
from cliplake_localcloud.rekognition.apis import APIS, GET, START
from cliplake_localcloud.rekognition.engine import Engine
from cliplake_localcloud.rekognition.validate import service_model


class Sizes(an.Analyser):
    """Records the time and the shape of each frame it is given."""

    def __init__(self, name: str, every: int, size: tuple[int, int] | None) -> None:
        self.name, self.every, self.input_size, self.seen = name, every, size, []

    def process(self, at: int, frame) -> None:
        self.seen.append((at, frame.shape if isinstance(frame, np.ndarray) else ("frame", frame.y.shape)))

    def results(self) -> list:
        return sorted(self.seen)


class Counting(Engine):
    def __init__(self, engine: Engine, extra: list[an.Analyser]) -> None:
        self.__dict__.update(engine.__dict__)  # the loaded models of the session's engine
        self.extra = extra

    def analysers(self, fps):
        return [*super().analysers(fps), *self.extra]


def test_an_analyser_gets_the_samples_at_its_rate_and_size(engine: Engine, people_clip: Path):
    every_third, frames = Sizes("thirds", 3, (64, 48)), Sizes("frames", an.EVERY_FRAME, None)
    a = Counting(engine, [every_third, frames]).analyse(people_clip)
    samples = round(a.info.duration_ms / a.steps_ms["labels"])
    assert len(a.labels) == samples  # the built-in analysers still ran
    assert a.steps_ms["thirds"] == 3 * a.steps_ms["labels"]
    assert "frames" not in a.steps_ms
    seen = every_third.results()
    assert [at for at, _ in seen] == [round(k * a.steps_ms["labels"]) for k in range(0, samples, 3)]
    assert {shape for _, shape in seen} == {(48, 64, 3)}  # RGB at (width 64, height 48)
    assert [at for at, _ in frames.results()] == list(range(a.frames))  # every decoded frame, by number
    assert {shape[0] for _, shape in frames.results()} == {"frame"}


def test_the_api_table_names_real_operations_and_known_analysers():
    model = service_model()
    names = {cls.name for cls in an.ANALYSERS}
    for api in APIS:
        assert {api.start, api.get} <= set(model.operation_names)
        assert api.key in model.operation_model(api.get).output_shape.members
        assert set(api.analysers) <= names, api
    assert set(START) == {api.start for api in APIS} and len(GET) == len(APIS) == 4
    assert {n for api in APIS for n in api.analysers} == names  # each analyser is reported by some API
