"""NanoDet objects (converter, decoding, label merge) and on-screen text, on frames and short clips."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest

from cliplake_localcloud.rekognition import decode, models, objects, results
from cliplake_localcloud.rekognition.engine import Analysis
from cliplake_localcloud.rekognition.labels import Taxonomy, read_lemmas
from cliplake_localcloud.rekognition.text import Box, TextReader, split_words

from .conftest import CAPTION as TEXT


@pytest.fixture(scope="module")
def detector(assets):
    return objects.ObjectDetector(assets)


def test_converter_keeps_no_layout_transposes_and_matches_the_set_up_model(assets, tmp_path):
    import onnx
    import onnxruntime as ort

    from cliplake_localcloud.rekognition.tfjs_onnx import convert

    out = tmp_path / "nanodet.onnx"
    report = convert(assets / models.OBJECT_SOURCE, out, models.OBJECT_INPUT)
    assert report["ops"].get("Transpose", 0) == 6  # only the six outputs' [1, C, N] → [1, N, C]
    dims = [d.dim_value for d in onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, models.OBJECT_INPUT, models.OBJECT_INPUT]
    x = np.random.default_rng(0).normal(size=(1, 3, models.OBJECT_INPUT, models.OBJECT_INPUT)).astype(np.float32)
    a = ort.InferenceSession(str(out)).run(None, {"input_1": x})
    b = ort.InferenceSession(str(assets / models.OBJECT_MODEL)).run(None, {"input_1": x})
    assert all(np.allclose(p, q, atol=1e-6) for p, q in zip(a, b, strict=True))


def test_astronaut_is_one_person_box_covering_her(assets, detector):
    bgr = cv2.imread(str(assets / "photos/astronaut.png"))
    people = [d for d in objects.reported(detector.detect(bgr)) if d.coco == "person"]
    assert len(people) == 1
    p = people[0]
    assert p.width > 0.5 and p.height > 0.8 and p.left < 0.1  # she fills most of the left of the frame


def test_gfl_decoding_from_the_cell_centre():
    """One confident cell at stride 32, row 2, col 3, whose bins put all mass on 1, 2, 3 and 4 strides."""
    outs = {
        s: (np.zeros(((416 // s) ** 2, 80), np.float32), np.zeros(((416 // s) ** 2, 44), np.float32))
        for s in (8, 16, 32)
    }
    cls, reg = outs[32]
    cell = 2 * 13 + 3
    cls[cell, 2] = 0.9  # car
    for side, bin_ in enumerate((1, 2, 3, 4)):
        reg[cell, side * 11 : (side + 1) * 11] = -50.0
        reg[cell, side * 11 + bin_] = 50.0
    (d,) = objects.decode(outs)
    cx, cy = 3.5 * 32, 2.5 * 32
    assert d.coco == "car" and d.score == pytest.approx(0.9)
    assert d.left * 416 == pytest.approx(cx - 32) and d.top * 416 == pytest.approx(cy - 64)
    assert d.width * 416 == pytest.approx(32 + 96) and d.height * 416 == pytest.approx(64 + 128)


def test_class_agnostic_pass_keeps_one_class_per_object():
    outs = {
        s: (np.zeros(((416 // s) ** 2, 80), np.float32), np.zeros(((416 // s) ** 2, 44), np.float32))
        for s in (8, 16, 32)
    }
    cls, _ = outs[32]
    cls[40, 0], cls[40, 15] = 0.7, 0.5  # the same box: person 0.7, cat 0.5
    assert [d.coco for d in objects.decode(outs)] == ["person"]


def _analysis(labels, found) -> Analysis:
    info = decode.VideoInfo(
        codec="h264", container="mov,mp4,m4a,3gp,3g2,mj2", width=640, height=360, fps=Fraction(25), duration_ms=2000,
        color_range="LIMITED",
    )  # fmt: skip
    a = Analysis(info=info, frames=50, shots=[], cues=[], labels=labels, objects=found)
    a.steps_ms = {"labels": 480.0, "objects": 960.0, "moderation": 960.0, "text": 960.0}
    return a


def test_imagenet_and_coco_evidence_merge_into_one_label(assets):
    tax = Taxonomy.load(read_lemmas(assets))
    car = objects.Detection("car", 0.1, 0.2, 0.3, 0.4, 0.8)
    a = _analysis([(0, {"Car": 40.0, "Vehicle": 45.0, "Transportation": 45.0}), (480, {"Car": 70.0})], [(0, [car])])
    items = results.label_items(a, tax, {}, "TIMESTAMP", "TIMESTAMPS")
    at0 = {it["Label"]["Name"]: it["Label"] for it in items if it["Timestamp"] == 0}
    assert sum(1 for it in items if it["Timestamp"] == 0 and it["Label"]["Name"] == "Car") == 1
    assert at0["Car"]["Confidence"] == 80.0
    box = at0["Car"]["Instances"][0]["BoundingBox"]
    assert box == {"Width": 0.3, "Height": 0.4, "Left": 0.1, "Top": 0.2}
    assert {p["Name"] for p in at0["Car"]["Parents"]} == {"Vehicle", "Transportation"}
    assert at0["Vehicle"]["Confidence"] == 80.0 and at0["Vehicle"]["Instances"] == []
    at480 = [it["Label"] for it in items if it["Timestamp"] == 480]
    assert [(x["Name"], x["Confidence"], x["Instances"]) for x in at480] == [("Car", 70.0, [])]
    segments = results.label_items(a, tax, {}, "TIMESTAMP", "SEGMENTS")
    assert [s["Label"]["Name"] for s in segments].count("Car") == 1  # one segment, 0 → 1440 ms


def test_unconfirmed_coco_label_from_imagenet_counts_half(assets):
    tax = Taxonomy.load(read_lemmas(assets))
    probs = np.zeros(1000, np.float32)
    probs[207] = 0.3  # golden retriever
    probs[208] = 0.3  # labrador
    probs[366] = 0.3  # gorilla
    seen = tax.fold(probs)
    unseen = tax.fold(probs, unconfirmed=frozenset(tax.coco.values()))
    assert seen["Dog"] == pytest.approx(60.0) and unseen["Dog"] == pytest.approx(30.0)
    assert unseen["Canine"] == pytest.approx(30.0)  # a parent of no other detector label
    assert unseen["Mammal"] == pytest.approx(90.0)  # shared parents keep their evidence


def test_words_share_the_line_box_by_characters():
    words = split_words("ab cd", Box(0.1, 0.5, 0.5, 0.1))
    assert [w.text for w in words] == ["ab", "cd"]
    assert words[0].box.left == pytest.approx(0.1) and words[0].box.width == pytest.approx(0.2)
    assert words[1].box.left == pytest.approx(0.4) and words[1].box.width == pytest.approx(0.2)


def test_burned_in_caption_read_word_for_word_with_its_time_range(videos, analyse):
    a = analyse(videos["caption"])
    seen = [(ms, [line.text for line in lines]) for ms, lines in a.text]
    with_caption = [ms for ms, texts in seen if TEXT in texts]
    assert with_caption, seen
    assert min(with_caption) >= 960 and max(with_caption) <= 3000  # sampled every 960 ms, shown 1.0-3.0 s
    assert all(TEXT not in texts for ms, texts in seen if ms < 960 or ms > 3100)
    line = next(line for ms, lines in a.text for line in lines if line.text == TEXT)
    assert [w.text for w in line.words] == TEXT.split()
    assert 0.6 < line.box.top < 0.9 and line.confidence >= 80


def test_text_is_read_only_where_it_changed(videos, engine):
    engine.taxonomy()  # loads the models
    (frame,) = decode.rgb_frames(
        ["-ss", "2", "-i", str(videos["caption"]), "-vf", "scale=640:360", "-frames:v", "1"], 640, 360
    )
    bgr = np.ascontiguousarray(frame[:, :, ::-1])
    screen = engine._text.screen()
    first = screen.read(bgr)
    assert TEXT in [line.text for line in first] and screen.reads == 1
    boxes = screen.boxes_read
    assert [line.text for line in screen.read(bgr.copy())] == [line.text for line in first]
    assert (screen.reads, screen.boxes_read) == (1, boxes)  # the same text: nothing recognised again
    changed = bgr.copy()
    cv2.putText(changed, "EXIT", (40, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.4, (255, 255, 255), 3)
    texts = [line.text for line in screen.read(changed)]
    assert TEXT in texts and "EXIT" in texts
    assert screen.reads == 2 and screen.boxes_read > boxes  # new text: read
    blank = np.full_like(bgr, 90)
    assert screen.read(blank) == [] and screen.reads == 2  # no text: the screen alone ran


def test_the_recogniser_is_loaded_by_the_first_text_to_read(videos):
    (frame,) = decode.rgb_frames(
        ["-ss", "2", "-i", str(videos["caption"]), "-vf", "scale=640:360", "-frames:v", "1"], 640, 360
    )
    bgr = np.ascontiguousarray(frame[:, :, ::-1])
    screen = TextReader().screen()
    assert screen.read(np.full_like(bgr, 90)) == [] and screen.reader._rec is None  # no text: never loaded
    assert TEXT in [line.text for line in screen.read(bgr)] and screen.reader._rec is not None
