"""A second sample video with people in it: OpenCV's ``vtest.avi`` (pedestrians, 768x576, 79.5 s, 10 fps).

It ships in Debian's ``opencv-doc`` package (``/usr/share/doc/opencv-doc/examples/data/vtest.avi``), licensed
with OpenCV's source tree (Debian copyright file, ``Files: *``: Apache-2.0 AND BSD-3-Clause, © Intel, Willow
Garage, OpenCV Foundation and contributors). It is MS-MPEG4v3 in AVI, which Rekognition refuses, so it is
transcoded once to H.264 MP4 at ``<assets>/samples/vtest.mp4``. Fetched with ``apt-get download`` (a registry
client); returns ``None`` when apt is unavailable.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg

MEMBER = "./usr/share/doc/opencv-doc/examples/data/vtest.avi"
TARGET = "samples/vtest.mp4"
LICENCE = "Apache-2.0 AND BSD-3-Clause (OpenCV; Debian opencv-doc copyright, Files: *)"


def _download_deb(workdir: Path) -> Path | None:
    if shutil.which("apt-get") is None:
        return None
    for attempt in range(2):
        proc = subprocess.run(
            ["apt-get", "download", "opencv-doc"], cwd=workdir, capture_output=True, text=True, check=False
        )
        debs = list(workdir.glob("opencv-doc_*.deb"))
        if proc.returncode == 0 and debs:
            return debs[0]
        if attempt == 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=False)
    return None


def ensure_pedestrians(assets_dir: Path) -> Path | None:
    """Return ``<assets>/samples/vtest.mp4``, creating it on first use; ``None`` if it cannot be fetched."""
    target = assets_dir / TARGET
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        deb = _download_deb(work)
        if deb is None:
            return None
        subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "x")], check=True, capture_output=True)
        avi = work / "x" / MEMBER
        if not avi.exists():
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_suffix(".part.mp4")
        subprocess.run(
            [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(avi),
             "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
             "-movflags", "+faststart", str(part)],
            check=True,
        )  # fmt: skip
        part.replace(target)
    return target
