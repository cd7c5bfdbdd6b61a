"""A Rekognition Video emulator: the same JSON API (Start*/Get* label, moderation, segment and text detection) over
a real analysis of the video with local models (README.md in this folder).

- `server.py`: the endpoint; `apis.py`: the table of APIs it serves (operations, analysers, Get* responses);
- `engine.py`: one decode of a video feeding every analyser (`analysers.py`: the one interface, as
  PySceneDetect's detectors have one); `decode.py`: ffmpeg; `results.py`: Rekognition's result shapes;
- the models: `labels.py`, `moderation.py`, `objects.py`, `text.py`, `shots.py`; `models.py`: their files and the
  assets directory; `prepare.py` (+ `quantize.py`, `tfjs_onnx.py`, `samples.py`): building them at set-up;
- `bench.py`, `quality.py`: speed and label quality (`make bench`).

May import: only itself and the libraries (numpy, onnxruntime, OpenCV, PySceneDetect, ...): not the rest of the
local cloud, the CLI or `functions/` (tests/test_layers.py).
"""

import importlib.util
import sys
from types import ModuleType


def lazy(name: str) -> ModuleType:
    """Module `name`, executed at its first attribute access (importlib's `LazyLoader`): the endpoint starts, and a
    restart answers, without importing numpy, OpenCV, onnxruntime and PySceneDetect, which only an analysis needs."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None, name
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
