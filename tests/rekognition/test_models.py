"""The optimised models against the originals, on frames the int8 models were not calibrated on.

Held-out frames: the scikit-image photos (and their mirror images), lavfi test patterns and Big Buck Bunny at
timestamps between the calibration ones.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from cliplake_localcloud.rekognition import models, moderation, prepare
from cliplake_localcloud.rekognition.decode import rgb_frames
from cliplake_localcloud.rekognition.engine import Engine
from cliplake_localcloud.rekognition.labels import LabelModel
from cliplake_localcloud.rekognition.moderation import ModerationModel, nsfw_input


@pytest.fixture(scope="module")
def held_out(assets) -> list[np.ndarray]:
    frames = []
    for name in ("astronaut", "chelsea", "coffee"):
        rgb = cv2.cvtColor(cv2.imread(str(assets / f"photos/{name}.png")), cv2.COLOR_BGR2RGB)
        frames += [rgb, np.ascontiguousarray(rgb[:, ::-1])]
    for src in ("testsrc2", "mandelbrot", "smptebars", "cellauto"):
        graph = f"{src}=size=640x360:rate=2" + (":seed=7" if src == "cellauto" else "")  # else random each run
        frames += rgb_frames(["-f", "lavfi", "-i", graph, "-frames:v", "2"], 640, 360)
    bunny = assets / "samples/big_buck_bunny.mp4"
    frames += rgb_frames(["-ss", "0.17", "-i", str(bunny), "-vf", "fps=1.5,scale=640:360", "-frames:v", "7"], 640, 360)
    assert len(frames) >= 20
    return frames


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def test_folded_nsfw_graph_is_the_same_network(assets, held_out):
    original, folded = _session(prepare.nsfw_source()), _session(assets / models.NSFW_MODEL)
    assert len(folded.get_inputs()) == 1 and folded.get_inputs()[0].name == "input_0"
    x = np.stack([nsfw_input(f) for f in held_out])
    a = original.run(None, {"input_0": x})[0][:, 1]
    b = folded.run(None, {"input_0": x})[0][:, 1]
    assert np.abs(a - b).max() < 1e-4


exact_int8 = pytest.mark.skipif(
    not models.int8_is_exact(), reason="this CPU's int8 kernels saturate: the engine runs float32 here"
)


@exact_int8
def test_nsfw_int8_screen_stays_within_half_the_screen_margin(assets, held_out):
    model = ModerationModel(assets, precision="int8")
    diffs = [abs(model.score_int8(f) - model.score_fp32(f)) for f in held_out]
    assert max(diffs) < moderation.SCREEN / 2, max(diffs)


def test_screened_frames_are_scored_by_the_float_model(assets, held_out, monkeypatch):
    model = ModerationModel(assets, precision="int8")
    frame = held_out[0]
    assert model.score(frame) == model.score_int8(frame)  # a safe photo: the screen's score
    assert model._full is None  # the float graph is not even loaded
    monkeypatch.setattr(moderation, "SCREEN", 0.0)  # every frame passes the screen
    assert model.score(frame) == model.score_fp32(frame) and model._full is not None


@exact_int8
def test_int8_labels_move_less_than_a_four_pixel_shift(assets, held_out):
    int8, fp32 = LabelModel(assets, precision="int8"), LabelModel(assets, precision="fp32")
    p8, p32 = int8.probabilities(held_out), fp32.probabilities(held_out)
    shifted = fp32.probabilities([np.ascontiguousarray(f[:, 4:]) for f in held_out])
    quant_delta = np.abs(p8 - p32).max(axis=1)
    shift_delta = np.abs(shifted - p32).max(axis=1)
    assert quant_delta.max() <= max(0.1, shift_delta.max()), (quant_delta.max(), shift_delta.max())
    assert np.median(quant_delta) <= 2 * np.median(shift_delta) + 0.01
    top2 = np.sort(p32, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] >= 0.1  # frames the float model calls with a clear winner
    assert clear.sum() >= 3
    assert (p8.argmax(axis=1)[clear] == p32.argmax(axis=1)[clear]).all()


@pytest.mark.parametrize("exact", [True, False])
def test_auto_precision_runs_int8_only_where_the_cpu_computes_it_exactly(assets, held_out, monkeypatch, exact):
    monkeypatch.setattr(models, "int8_is_exact", lambda: exact)
    want = "int8" if exact else "fp32"
    labels, nsfw = LabelModel(assets), ModerationModel(assets)
    assert (labels.precision, nsfw.precision) == (want, want)
    assert want in labels.version and want in nsfw.version
    engine = Engine(assets)  # the versions the API reports, known before any model is loaded
    assert (engine.label_version, engine.moderation_version) == (labels.version, nsfw.version)
    forced = LabelModel(assets, precision=want)
    assert np.array_equal(labels.probabilities(held_out[:2]), forced.probabilities(held_out[:2]))
    if not exact:  # no screen: every frame gets the float score
        assert nsfw.score(held_out[0]) == ModerationModel(assets, precision="fp32").score_fp32(held_out[0])
        with pytest.raises(RuntimeError):
            nsfw.score_int8(held_out[0])


def test_prepare_models_is_idempotent(assets, capsys):
    before = {p: p.stat().st_mtime_ns for p in (assets / "models").glob("*.onnx")}
    prepare.prepare_models(assets)
    assert {p: p.stat().st_mtime_ns for p in (assets / "models").glob("*.onnx")} == before
    assert capsys.readouterr().out == ""


def test_engine_refuses_to_start_without_prepared_models(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"python -m cliplake_cli\.assets"):
        ModerationModel(tmp_path)
