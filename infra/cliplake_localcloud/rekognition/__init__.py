"""A Rekognition Video emulator: the same JSON API (Start*/Get* label, moderation, segment and text detection) over
a real analysis of the video with local models (see README.md in this folder).

May import: only itself and the libraries (numpy, onnxruntime, OpenCV, PySceneDetect, ...), never the rest of the
local cloud, the CLI (`cliplake_cli`) or `functions/` (for now the one exception is the set-up assets directory,
`cliplake_cli.assets.assets_dir`, which moves down next).
"""
