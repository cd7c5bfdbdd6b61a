"""Thumbnails: one JPEG frame at given times of a local video file, with the ffmpeg binary of imageio-ffmpeg."""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path

from imageio_ffmpeg import get_ffmpeg_exe

CACHE_DIR = Path(tempfile.gettempdir()) / "cliplake-dashboard"


def local_copy_path(key: str, etag: str) -> Path:
    """Where a downloaded copy of an object lives (one per key and version)."""
    digest = hashlib.sha256(f"{key}\0{etag}".encode()).hexdigest()[:24]
    return CACHE_DIR / f"{digest}{Path(key).suffix or '.mp4'}"


def frame_at(video: Path, ms: int, width: int = 320, timeout_s: float = 20) -> bytes | None:
    """A JPEG of the frame at `ms` (input seeking: fast, keyframe-accurate then decoded to the time)."""
    r = subprocess.run(
        [get_ffmpeg_exe(), "-v", "error", "-ss", f"{ms / 1000:.3f}", "-i", str(video), "-frames:v", "1",
         "-vf", f"scale={width}:-2", "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "4", "pipe:1"],
        capture_output=True,
        timeout=timeout_s,
        check=False,
    )  # fmt: skip
    return r.stdout or None if r.returncode == 0 else None


def thumbnails(video: Path, times_ms: list[int], width: int = 320) -> list[bytes | None]:
    return [frame_at(video, ms, width) for ms in times_ms]
