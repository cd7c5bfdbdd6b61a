"""Object and scene labels: EfficientNet-Lite0 (ImageNet-1k) in onnxruntime, mapped to Rekognition's shape.

Per sampled frame the 1000 softmax probabilities are folded into labels: each class gives its readable name
(``taxonomy.json`` ``names`` or its first WordNet lemma, title-cased) and its group ("Dog", "Cat", "Car",
"Seashore" → "Sea"...), whose parents are expanded transitively. A label's confidence is the sum of the
probabilities of the classes under it (capped at 100), so "Cat" gathers tabby + tiger cat + Persian.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from . import models

TAXONOMY = Path(__file__).with_name("taxonomy.json")
FLOOR = 5.0  # per-frame labels below this confidence (percent) are not kept at all
UNCONFIRMED_WEIGHT = 0.5  # weight of ImageNet evidence for a COCO label the object detector did not see


def _ids(spec: str) -> list[int]:
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


@dataclass(frozen=True)
class LabelInfo:
    name: str
    parents: tuple[str, ...]
    category: str


@dataclass
class Taxonomy:
    """Maps each ImageNet class index to the labels it supports (specific first, then ancestors)."""

    labels: dict[str, LabelInfo] = field(default_factory=dict)
    class_labels: list[tuple[str, ...]] = field(default_factory=list)
    coco: dict[str, str] = field(default_factory=dict)  # COCO-80 class → label name (in ``labels``)
    exclusive_parents: dict[str, tuple[str, ...]] = field(default_factory=dict)  # of one COCO label only

    @classmethod
    def load(cls, lemmas: list[str], path: Path = TAXONOMY) -> Taxonomy:
        data = json.loads(path.read_text())
        groups = data["groups"]

        def ancestors(group: str) -> list[str]:
            seen: list[str] = []
            stack = list(groups[group]["parents"])
            while stack:
                g = stack.pop(0)
                if g not in seen:
                    seen.append(g)
                    stack.extend(groups[g]["parents"])
            return seen

        group_of: dict[int, str] = {}
        for spec, group in data["classes"]:
            for i in _ids(spec):
                group_of[i] = group
        fallback: dict[int, str] = {}
        for spec, cat in data["fallback_categories"]:
            for i in _ids(spec):
                fallback[i] = cat
        tax = cls()
        for g in groups:
            tax.labels[g] = LabelInfo(g, tuple(sorted(ancestors(g))), groups[g]["category"])
        for i, lemma in enumerate(lemmas):
            name = data["names"].get(str(i)) or _title(lemma)
            group = group_of.get(i)
            chain = [group, *ancestors(group)] if group else []
            category = groups[group]["category"] if group else fallback.get(i, "Everyday Objects")
            if name not in tax.labels:
                parents = tuple(sorted(p for p in chain if p != name))
                tax.labels[name] = LabelInfo(name, parents, category)
            tax.class_labels.append(tuple(dict.fromkeys([name, *chain])))
        tax.coco = dict(data.get("coco", {}))
        missing = sorted(v for v in tax.coco.values() if v not in tax.labels)
        if missing:
            raise ValueError(f"taxonomy.json: COCO classes map to labels the catalogue lacks: {missing}")
        targets = set(tax.coco.values())
        for name in targets:
            others = set().union(*(tax.labels[o].parents for o in targets if o != name))
            tax.exclusive_parents[name] = tuple(
                p for p in tax.labels[name].parents if p not in others and p not in targets
            )
        return tax

    def with_ancestors(self, name: str) -> tuple[str, ...]:
        """``name`` and its parents (transitively), as ``fold`` gives them for an ImageNet class."""
        return (name, *self.labels[name].parents)

    def fold(
        self, probs: np.ndarray, floor: float = FLOOR, unconfirmed: frozenset[str] = frozenset()
    ) -> dict[str, float]:
        """Per-frame label confidences (percent) from one softmax vector.

        ``unconfirmed``: labels the object detector also knows and did not see in this frame (not even at its
        candidate floor). Evidence for one of them, and for its parents that belong to no other detector label
        (Dog → Canine, but not Pet, Mammal, Animal), counts ``UNCONFIRMED_WEIGHT``: "Dog" from a spread of dog
        breeds on a cartoon rabbit, when the detector sees no dog, falls below 50 %.
        """
        out: dict[str, float] = {}
        for i in np.flatnonzero(probs * 100.0 >= 0.5):
            p = float(probs[i]) * 100.0
            chain = self.class_labels[i]
            weak: set[str] = set()
            for name in unconfirmed.intersection(chain) if unconfirmed else ():
                weak.add(name)
                weak.update(self.exclusive_parents.get(name, ()))
            for name in chain:
                out[name] = out.get(name, 0.0) + (p * UNCONFIRMED_WEIGHT if name in weak else p)
        return {k: min(v, 100.0) for k, v in out.items() if v >= floor}


def _title(lemma: str) -> str:
    return " ".join(w[:1].upper() + w[1:] for w in lemma.replace("_", " ").split())


def read_lemmas(assets_dir: Path) -> list[str]:
    """The first lemma of each ImageNet-1k class, in model output order."""
    lemma = dict(line.split("\t", 1) for line in (assets_dir / "imagenet/synset_to_lemma.txt").read_text().splitlines())
    synsets = (assets_dir / "imagenet/synsets.txt").read_text().split()
    return [lemma[s].split(",")[0].strip() for s in synsets]


def label_input(rgb: np.ndarray) -> np.ndarray:
    """One RGB uint8 frame (any size) → the network's (3, 224, 224) float input, ``(x - 127) / 128``."""
    small = cv2.resize(rgb, (models.INPUT_SIZE, models.INPUT_SIZE), interpolation=cv2.INTER_AREA)
    return ((small.astype(np.float32) - 127.0) / 128.0).transpose(2, 0, 1)


class LabelModel:
    """EfficientNet-Lite0 in onnxruntime; ``predict`` takes RGB uint8 frames.

    ``precision="auto"`` runs the int8 graph (``models.LABEL_MODEL_INT8``, about 2x faster than float32) where the
    CPU computes int8 exactly (``models.int8_is_exact``) and the float32 graph elsewhere; ``"int8"`` and
    ``"fp32"`` force one. On held-out frames the int8 graph moves probabilities less than shifting the frame by
    4 pixels does (``tests/rekognition/test_models.py``).
    """

    @staticmethod
    def version_for(precision: str) -> str:
        return f"efficientnet-lite0-imagenet1k-onnx-{precision}-1.0"

    def __init__(self, assets_dir: Path, threads: int = 1, precision: str = "auto") -> None:
        self.precision = models.resolve_precision(precision)
        self.version = self.version_for(self.precision)
        rel = models.LABEL_MODEL_INT8 if self.precision == "int8" else models.LABEL_MODEL
        self._session = models.session(assets_dir, rel, threads)
        self.taxonomy = Taxonomy.load(read_lemmas(assets_dir))

    def probabilities(self, frames: list[np.ndarray]) -> np.ndarray:
        """ImageNet-1k softmax probabilities, (N, 1000), for RGB uint8 frames of any size."""
        x = np.stack([label_input(f) for f in frames])
        logits = self._session.run(None, {"input": x})[0]  # sessions are thread-safe
        logits = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        return probs / probs.sum(axis=1, keepdims=True)

    def predict_probs(self, frames: list[np.ndarray]) -> list[np.ndarray]:
        return list(self.probabilities(frames))

    def predict(self, frames: list[np.ndarray]) -> list[dict[str, float]]:
        """Label confidences (Rekognition-style names → percent) for RGB uint8 frames of any size."""
        return [self.taxonomy.fold(p) for p in self.probabilities(frames)]
