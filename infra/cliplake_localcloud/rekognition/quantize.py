"""Set-up-time model optimisation: fold the NSFW graph's batch-norm into its convolutions, quantise to int8.

Both run once, in ``prepare.prepare``, and write files under ``<assets>/models/``; the engine only loads them.

- ``fold_affine_into_conv``: ``open_nsfw.onnx`` was converted from Caffe/TensorFlow with every batch-norm and
  scale layer left as ``Transpose → Add → Sub → Mul → Add`` after its convolution, in NHWC, where onnxruntime
  cannot fuse them (they took a quarter of its 13.9 ms). ``conv(x)·s + t`` is folded into the convolution's
  weights and bias (``W·s``, ``b·s + t``): the same network, scores equal to about 1e-6.
- ``quantize``: static int8 (QDQ, per-channel weights, uint8 activations) with onnxruntime's quantiser, the
  final classifier layer (``Gemm``/``MatMul``) left in float32 — quantised, it moved EfficientNet's
  probabilities by up to 0.48 on held-out photos, against 0.09 with it in float —
  calibrated on frames of the bundled sample videos and the scikit-image photos under ``<assets>/calibration``
  (never on the test photos or the benchmark clip).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

CALIBRATION = (("samples/big_buck_bunny.mp4", 0.33, 16), ("samples/vtest.mp4", 4.0, 20))  # file, every s, frames
CALIBRATION_HEIGHT = 360
FLOAT_OPS = ("Gemm", "MatMul")  # the classifier head is kept in float32


def fold_affine_into_conv(src: Path, dst: Path) -> int:
    """Fold each ``Conv → Transpose(NHWC) → [Cast|Add|Sub|Mul by a per-channel constant]…`` chain. Returns
    the number of convolutions folded."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    g = model.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    for n in g.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    users: dict[str, list] = {}
    for n in g.node:
        for name in n.input:
            users.setdefault(name, []).append(n)

    def only_user(name: str):
        found = users.get(name, [])
        return found[0] if len(found) == 1 else None

    dropped: set[int] = set()
    folded = 0
    for conv in [n for n in g.node if n.op_type == "Conv"]:
        t = only_user(conv.output[0])
        if t is None or t.op_type != "Transpose" or list(t.attribute[0].ints) != [0, 2, 3, 1]:
            continue
        weights = consts[conv.input[1]].astype(np.float64)
        channels = weights.shape[0]
        bias = consts[conv.input[2]].astype(np.float64) if len(conv.input) > 2 else np.zeros(channels)
        scale, shift = np.ones(channels), np.zeros(channels)
        cur, chain = t, []
        while (n := only_user(cur.output[0])) is not None:
            if n.op_type == "Cast" and n.attribute[0].i == onnx.TensorProto.FLOAT:
                pass  # float → float: a no-op
            elif n.op_type in ("Add", "Sub", "Mul") and n.input[0] == cur.output[0] and n.input[1] in consts:
                c = consts[n.input[1]].astype(np.float64).reshape(-1)
                if c.size not in (1, channels):
                    break
                if n.op_type == "Mul":
                    scale, shift = scale * c, shift * c
                else:
                    shift = shift + c if n.op_type == "Add" else shift - c
            else:
                break
            chain.append(n)
            cur = n
        if all(n.op_type == "Cast" for n in chain):
            continue
        w_name, b_name = f"{conv.output[0]}/folded_W", f"{conv.output[0]}/folded_B"
        g.initializer.extend(
            [
                numpy_helper.from_array((weights * scale.reshape(-1, 1, 1, 1)).astype(np.float32), w_name),
                numpy_helper.from_array((bias * scale + shift).astype(np.float32), b_name),
            ]
        )
        data = conv.input[0]
        del conv.input[:]
        conv.input.extend([data, w_name, b_name])
        t.output[0] = chain[-1].output[0]  # the transpose now produces what the chain produced
        dropped.update(id(n) for n in chain)
        folded += 1
    kept = [n for n in g.node if id(n) not in dropped]
    del g.node[:]
    g.node.extend(kept)
    used = {name for n in g.node for name in n.input}
    live = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(live)
    onnx.checker.check_model(model)
    _save(model, dst)
    return folded


def _save(model, dst: Path) -> None:
    import onnx

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".part")
    onnx.save(model, str(tmp))
    tmp.replace(dst)


def calibration_frames(assets_dir: Path) -> list[np.ndarray]:
    """RGB frames (≤ 360 px high, like the engine's samples) from the sample videos and calibration photos."""
    from . import decode as dec

    frames: list[np.ndarray] = []
    for rel, every_s, count in CALIBRATION:
        path = assets_dir / rel
        if not path.exists():
            continue
        info = dec.probe(path)
        plan = dec.Plan.for_video(info)
        w, h = plan.sample
        vf = f"fps=1/{every_s},scale={w}:{h}:flags=area"
        frames += dec.rgb_frames(["-i", str(path), "-vf", vf, "-frames:v", str(count)], w, h)
    for path in sorted((assets_dir / "calibration").glob("*")):
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is not None:
            h, w = bgr.shape[:2]
            size = (max(2, round(w * CALIBRATION_HEIGHT / h)), CALIBRATION_HEIGHT)
            frames.append(cv2.cvtColor(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))
    if not frames:
        raise FileNotFoundError(f"no sample video or photo under {assets_dir} to calibrate the int8 models on")
    return frames


def quantize(src: Path, dst: Path, inputs: Iterator[dict[str, np.ndarray]]) -> None:
    """Static int8 quantisation of ``src`` calibrated on ``inputs`` (one feed dict per frame); the classifier
    head (``FLOAT_OPS``) stays in float32."""
    import tempfile

    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def get_next(self):
            return next(inputs, None)

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        head = [n.name for n in onnx.load(str(pre)).graph.node if n.op_type in FLOAT_OPS]
        part = Path(tmp) / "int8.onnx"
        quantize_static(
            str(pre),
            str(part),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=head,
        )
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(part, dst.with_suffix(".part"))
        dst.with_suffix(".part").replace(dst)


def feeds(name: str, frames: list[np.ndarray], prep: Callable[[np.ndarray], np.ndarray]) -> Iterator[dict]:
    return ({name: prep(f)[None]} for f in frames)
