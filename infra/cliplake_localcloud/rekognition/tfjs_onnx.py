"""A small TensorFlow.js graph-model → ONNX converter for the ops of the NanoDet graph (set-up only).

    convert(Path("nanodet.json"), Path("nanodet.onnx"))     # needs only ``onnx`` and ``numpy``

Written from the TF op semantics for exactly the ops that graph uses: Placeholder, Const, Identity, Transpose,
Conv2D, Add/AddV2, Pad/PadV2, LeakyRelu, Sigmoid, ConcatV2, SplitV, MaxPool, ResizeBilinear, Reshape and
SparseToDense (only on constants: the Reshape shapes are computed at conversion time). Any other op is a clear
error. The graph came to TF.js from ONNX through onnx-tf, so it is NCHW with a Transpose to NHWC around each
convolution; the converter keeps each TF tensor as an ONNX tensor plus a pending permutation, so those transposes
compose and cancel instead of being emitted (every convolution then runs on NCHW directly, with its bias folded
into an NCHW Add).

Weights: one binary shard, tensors in manifest order; float tensors may be stored as float16
(``quantization.dtype``), int32 as 4-byte little-endian.
"""

from __future__ import annotations

import base64
import json
from fractions import Fraction
from pathlib import Path

import numpy as np

OPSET = 18
DTYPES = {"float32": np.float32, "int32": np.int32, "int64": np.int64}
QUANT = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}


class UnsupportedGraph(ValueError):
    pass


def read_weights(model: dict, folder: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for group in model["weightsManifest"]:
        data = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            shape = [int(s) for s in w["shape"]]
            count = int(np.prod(shape)) if shape else 1
            dtype = DTYPES[w["dtype"]]
            q = w.get("quantization")
            if q:
                if q["dtype"] != "float16":  # affine uint8/uint16 quantisation: scale and min
                    raw = np.frombuffer(data, QUANT[q["dtype"]], count, offset)
                    arr = (raw.astype(np.float32) * q["scale"] + q["min"]).astype(dtype)
                else:
                    raw = np.frombuffer(data, np.float16, count, offset)
                    arr = raw.astype(dtype)
                offset += raw.nbytes
            else:
                arr = np.frombuffer(data, dtype, count, offset).copy()
                offset += arr.nbytes
            out[w["name"]] = arr.reshape(shape)
    return out


def _attr_ints(node: dict, name: str) -> list[int]:
    return [int(i) for i in node["attr"][name]["list"].get("i", [])]


def _attr_str(node: dict, name: str) -> str:
    return base64.b64decode(node["attr"][name]["s"]).decode()


class _Builder:
    """Emits ONNX nodes; a TF tensor is (onnx name, perm): TF value == onnx value transposed by ``perm``."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.consts: dict[str, np.ndarray] = dict(weights)
        self.values: dict[str, tuple[str, tuple[int, ...] | None]] = {}
        self.nodes: list = []
        self.inits: dict[str, object] = {}
        self._n = 0

    def fresh(self, hint: str) -> str:
        self._n += 1
        return f"{hint.replace('/', '_')}__{self._n}"

    def init(self, array: np.ndarray, hint: str) -> str:
        name = self.fresh(hint)
        self.inits[name] = self.numpy_helper.from_array(np.ascontiguousarray(array), name)
        return name

    def emit(self, op: str, inputs: list[str], hint: str, outputs: int = 1, **attrs) -> list[str]:
        names = [self.fresh(hint) for _ in range(outputs)]
        self.nodes.append(self.helper.make_node(op, inputs, names, name=names[0], **attrs))
        return names

    # ---- values
    def is_const(self, ref: str) -> bool:
        return _base(ref) in self.consts

    def const(self, ref: str) -> np.ndarray:
        return self.consts[_base(ref)]

    def get(self, ref: str) -> tuple[str, tuple[int, ...] | None]:
        name, _, idx = ref.partition(":")
        key = name if idx in ("", "0") else ref
        if key not in self.values and name in self.consts:
            arr = self.consts[name]
            self.values[key] = (self.init(arr.astype(np.float32) if arr.dtype == np.float64 else arr, name), None)
        return self.values[key]

    def materialise(self, ref: str, perm: tuple[int, ...] | None = None) -> str:
        """The ONNX tensor holding TF value ``ref`` transposed by ``perm`` (None: as TF has it)."""
        name, have = self.get(ref)
        rank = len(have or perm or ())
        have = have or tuple(range(rank))
        want = tuple(have[i] for i in perm) if perm else have
        if want == tuple(range(len(want))):
            return name
        return self.emit("Transpose", [name], "transpose", perm=list(want))[0]


def _base(ref: str) -> str:
    return ref.partition(":")[0]


def _compose(perm: tuple[int, ...] | None, p: list[int]) -> tuple[int, ...]:
    perm = perm or tuple(range(len(p)))
    return tuple(perm[i] for i in p)


NCHW_OF_NHWC = [0, 3, 1, 2]
NHWC_OF_NCHW = (0, 2, 3, 1)


def convert(json_path: Path, onnx_path: Path, input_size: int | None = None) -> dict:
    """Convert the TF.js graph model at ``json_path`` (shards beside it) to ONNX; returns a short report.

    ``input_size`` (a multiple of 32) runs a fully convolutional graph at another square input size than the
    one it was exported with: the input's spatial dimensions and the constant ``ResizeBilinear`` sizes are
    scaled by the same factor (each FPN upsampling targets the next level's map)."""
    import onnx
    from onnx import TensorProto, helper

    model = json.loads(json_path.read_text())
    weights = read_weights(model, json_path.parent)
    b = _Builder(weights)
    nodes = model["modelTopology"]["node"]
    inputs, outputs = [], []
    scale = Fraction(1)
    signature = model.get("signature") or {}
    for node in nodes:
        op, name, ins = node["op"], node["name"], [i for i in node.get("input", []) if not i.startswith("^")]
        if op == "Const":
            if name not in b.consts:
                raise UnsupportedGraph(f"constant {name} has no weights")
        elif op == "Placeholder":
            dims = [int(d.get("size", -1)) for d in node["attr"]["shape"]["shape"]["dim"]]
            if input_size:
                scale = Fraction(input_size, dims[-1])
                dims[-2:] = [input_size, input_size]
            inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
            b.values[name] = (name, None)
        elif all(b.is_const(i) for i in ins) and op in ("SparseToDense", "AddV2", "Add", "Identity"):
            b.consts[name] = _fold(op, [b.const(i) for i in ins])
        elif op == "Identity":
            b.values[name] = b.get(ins[0])
        elif op == "Transpose":
            src, perm = b.get(ins[0])
            b.values[name] = (src, _compose(perm, [int(i) for i in b.const(ins[1])]))
        elif op in ("LeakyRelu", "Sigmoid"):
            src, perm = b.get(ins[0])
            extra = {"alpha": float(node["attr"]["alpha"]["f"])} if op == "LeakyRelu" else {}
            b.values[name] = (b.emit(op, [src], name, **extra)[0], perm)
        elif op in ("Add", "AddV2"):
            b.values[name] = _add(b, name, ins)
        elif op in ("Pad", "PadV2"):
            src, perm = b.get(ins[0])
            pads_tf = np.asarray(b.const(ins[1]), np.int64).reshape(-1, 2)
            rank = len(pads_tf)
            perm = perm or tuple(range(rank))
            pads = np.zeros((rank, 2), np.int64)
            for i in range(rank):
                pads[perm[i]] = pads_tf[i]
            args = [src, b.init(pads.T.reshape(-1), name + "_pads")]
            if op == "PadV2":
                args.append(b.init(np.asarray(b.const(ins[2]), np.float32).reshape(()), name + "_value"))
            b.values[name] = (b.emit("Pad", args, name, mode="constant")[0], perm)
        elif op == "Conv2D":
            b.values[name] = _conv(b, node, ins)
        elif op == "MaxPool":
            if _attr_str(node, "data_format") != "NHWC" or _attr_str(node, "padding") != "VALID":
                raise UnsupportedGraph(f"{name}: only NHWC VALID MaxPool")
            x = b.materialise(ins[0], NCHW_OF_NHWC)
            k, s = _attr_ints(node, "ksize"), _attr_ints(node, "strides")
            out = b.emit("MaxPool", [x], name, kernel_shape=k[1:3], strides=s[1:3])[0]
            b.values[name] = (out, NHWC_OF_NCHW)
        elif op == "ResizeBilinear":
            if node["attr"].get("align_corners", {}).get("b"):
                raise UnsupportedGraph(f"{name}: align_corners is not supported")
            half = node["attr"].get("half_pixel_centers", {}).get("b", False)
            x = b.materialise(ins[0], NCHW_OF_NHWC)
            hw = [int(v) for v in np.asarray(b.const(ins[1])).ravel()]
            if input_size:
                hw = [int(v * scale) for v in hw]
            sizes = b.init(np.asarray(hw, np.int64), name + "_sizes")
            out = b.emit(
                "Resize",
                [x, "", "", sizes],
                name,
                mode="linear",
                axes=[2, 3],
                coordinate_transformation_mode="half_pixel" if half else "asymmetric",
            )[0]
            b.values[name] = (out, NHWC_OF_NCHW)
        elif op == "ConcatV2":
            axis = int(b.const(ins[-1]))
            parts = [b.get(i) for i in ins[:-1]]
            perms = {p for _, p in parts}
            if len(perms) == 1:
                perm = perms.pop()
                rank = len(perm) if perm else None
                onnx_axis = perm[axis % len(perm)] if perm else axis
                srcs = [s for s, _ in parts]
            else:
                perm, rank, onnx_axis = None, None, axis
                srcs = [b.materialise(i) for i in ins[:-1]]
            del rank
            b.values[name] = (b.emit("Concat", srcs, name, axis=int(onnx_axis))[0], perm)
        elif op == "SplitV":
            src, perm = b.get(ins[0])
            sizes = np.asarray(b.const(ins[1]), np.int64)
            axis = int(b.const(ins[2]))
            onnx_axis = perm[axis % len(perm)] if perm else axis
            n = int(node["attr"]["num_split"]["i"])
            outs = b.emit("Split", [src, b.init(sizes, name + "_split")], name, outputs=n, axis=int(onnx_axis))
            for i, o in enumerate(outs):
                b.values[name if i == 0 else f"{name}:{i}"] = (o, perm)
        elif op == "Reshape":
            x = b.materialise(ins[0])
            shape = b.init(np.asarray(b.const(ins[1]), np.int64), name + "_shape")
            b.values[name] = (b.emit("Reshape", [x, shape], name)[0], None)
        else:
            raise UnsupportedGraph(f"op {op} ({name}) is not supported by this converter")

    for out_name, spec in (signature.get("outputs") or {}).items():
        ref = _base(out_name)
        final = b.materialise(ref)
        dims = [int(d.get("size", -1)) for d in spec["tensorShape"]["dim"]]
        if input_size:
            dims = [d if i != 1 else None for i, d in enumerate(dims)]  # cells per stride change with the size
        b.nodes.append(helper.make_node("Identity", [final], [ref], name=ref + "_out"))
        outputs.append(helper.make_tensor_value_info(ref, TensorProto.FLOAT, dims))
    outputs.sort(key=lambda v: v.name)
    graph = helper.make_graph(b.nodes, "tfjs", inputs, outputs, list(b.inits.values()))
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="cliplake")
    onnx_model.ir_version = 8
    _full_resize_sizes(onnx_model)
    onnx.checker.check_model(onnx_model)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = onnx_path.with_suffix(".part")
    onnx.save(onnx_model, str(tmp))
    tmp.replace(onnx_path)
    ops: dict[str, int] = {}
    for n in b.nodes:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    return {"nodes": len(b.nodes), "ops": ops, "outputs": [o.name for o in outputs]}


def _full_resize_sizes(model) -> None:
    """Rewrite each ``Resize(axes=[2, 3], sizes=[h, w])`` as ``Resize(sizes=[n, c, h, w])`` (onnxruntime's
    quantiser and older runtimes do not handle ``axes``), the batch and channel counts taken from shape
    inference."""
    import onnx
    from onnx import numpy_helper

    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*inferred.graph.value_info, *inferred.graph.input]
    }
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "Resize" or not any(a.name == "axes" for a in node.attribute):
            continue
        n, c = shapes[node.input[0]][:2]
        hw = numpy_helper.to_array(inits[node.input[3]])
        inits[node.input[3]].CopyFrom(numpy_helper.from_array(np.array([n, c, *hw], np.int64), node.input[3]))
        keep = [a for a in node.attribute if a.name != "axes"]
        del node.attribute[:]
        node.attribute.extend(keep)


def _fold(op: str, args: list[np.ndarray]) -> np.ndarray:
    if op == "Identity":
        return args[0]
    if op in ("Add", "AddV2"):
        return np.add(args[0], args[1])
    # SparseToDense(indices, output_shape, values, default)
    indices, shape, values, default = args
    dense = np.full(tuple(int(s) for s in np.atleast_1d(shape)), default, dtype=np.asarray(default).dtype)
    idx = np.asarray(indices).reshape(-1, dense.ndim) if np.size(indices) else np.zeros((0, dense.ndim), int)
    for row, val in zip(idx, np.broadcast_to(values, (len(idx),)), strict=True):
        dense[tuple(row)] = val
    return dense


def _add(b: _Builder, name: str, ins: list[str]) -> tuple[str, tuple[int, ...] | None]:
    consts = [b.is_const(i) for i in ins]
    if consts.count(True) == 1:
        x_ref, c_ref = (ins[1], ins[0]) if consts[0] else (ins[0], ins[1])
        src, perm = b.get(x_ref)
        c = np.asarray(b.const(c_ref), np.float32)
        if perm:
            c = c.reshape((1,) * (len(perm) - c.ndim) + c.shape)
            inverse = [perm.index(i) for i in range(len(perm))]
            c = c.transpose(inverse)
        return b.emit("Add", [src, b.init(c, name + "_c")], name)[0], perm
    (sa, pa), (sb, pb) = b.get(ins[0]), b.get(ins[1])
    if pa == pb:
        return b.emit("Add", [sa, sb], name)[0], pa
    return b.emit("Add", [b.materialise(ins[0]), b.materialise(ins[1])], name)[0], None


def _conv(b: _Builder, node: dict, ins: list[str]) -> tuple[str, tuple[int, ...]]:
    name = node["name"]
    if _attr_str(node, "data_format") != "NHWC":
        raise UnsupportedGraph(f"{name}: only NHWC Conv2D")
    padding = _attr_str(node, "padding")
    kernel = np.asarray(b.const(ins[1]), np.float32)  # HWIO
    strides, dilations = _attr_ints(node, "strides"), _attr_ints(node, "dilations") or [1, 1, 1, 1]
    attrs = {"strides": strides[1:3], "dilations": dilations[1:3], "kernel_shape": list(kernel.shape[:2])}
    if padding == "SAME":
        attrs["auto_pad"] = "SAME_UPPER"
    elif padding != "VALID":
        raise UnsupportedGraph(f"{name}: padding {padding}")
    x = b.materialise(ins[0], NCHW_OF_NHWC)
    w = b.init(kernel.transpose(3, 2, 0, 1), name + "_w")  # OIHW
    return b.emit("Conv", [x, w], name, **attrs)[0], NHWC_OF_NCHW
