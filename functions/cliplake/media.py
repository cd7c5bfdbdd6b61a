"""Probe and transcode video with the ffmpeg binary shipped in the `imageio-ffmpeg` wheel.

Rekognition Video accepts only H.264 in an MP4/MOV container (≤ 10 GB, ≤ 6 h). Everything else (WebM VP8/VP9/AV1,
Ogg Theora, MPEG-1/2, HEVC, AVI…) is transcoded into an H.264 MP4 rendition, which is what gets analysed.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

MAX_BYTES = 10 * 1024**3
MAX_DURATION_S = 6 * 3600
_MOV_FAMILY = "mov,mp4,m4a,3gp,3g2,mj2"
# Demuxers ffmpeg falls back to for things that are not videos (text renders as ANSI art, images as 1 frame).
_NOT_VIDEO_FORMATS = {"tty", "image2"}

# libx264 High profile, AAC audio, even dimensions, moov atom first (streamable). `veryfast` keeps Lambda time
# (and cost) down; CRF 20 keeps the rendition visually close to the source for analysis.
TRANSCODE_ARGS = [
    "-map", "0:v:0", "-map", "0:a:0?",
    "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-profile:v", "high", "-pix_fmt", "yuv420p",
    "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2",
    "-c:a", "aac", "-b:a", "128k",
    "-movflags", "+faststart",
]  # fmt: skip


class MediaError(Exception):
    """The file is not a video Rekognition can be given, even after transcoding. Retrying will not help."""


class Unreadable(MediaError):
    """ffmpeg found no media container at all: a corrupt or non-media file, or, over a URL, a failed read."""


@dataclass(frozen=True)
class Probe:
    container: str
    codec: str
    width: int
    height: int
    fps: float
    duration_s: float
    has_audio: bool

    @property
    def rekognition_ready(self) -> bool:
        """H.264 in the MP4/MOV family, which is what Rekognition Video accepts as is."""
        return self.codec == "h264" and self.container == _MOV_FAMILY


_INPUT_RE = re.compile(r"^Input #0, (?P<fmt>[^ ]+), from", re.M)
_DURATION_RE = re.compile(r"Duration: (?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?)")
_VIDEO_RE = re.compile(r"Stream #0:\d+.*?: Video: (?P<codec>\w+)(?P<rest>.*)$", re.M)
_SIZE_RE = re.compile(r"\b(?P<w>\d{2,5})x(?P<h>\d{2,5})\b")
_FPS_RE = re.compile(r"(?P<fps>\d+(?:\.\d+)?) (?:fps|tbr)")
_URL_RE = re.compile(r"https?://\S+")
NETWORK_TIMEOUT_US = 15_000_000  # a stalled read over HTTP fails after 15 s instead of hanging the function


def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def _last_error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    useful = [ln for ln in lines if "At least one output file" not in ln]
    return useful[-1] if useful else "ffmpeg could not read the file"


def is_url(source: str | Path) -> bool:
    return isinstance(source, str) and source.startswith(("http://", "https://"))


def _input_options(source: str | Path) -> list[str]:
    """ffmpeg's options for reading `source`: over HTTP(S), a read timeout and, for HTTPS, certificate checks
    against certifi's CA bundle (the static ffmpeg's own OpenSSL looks for one where Lambda's runtime has none, and
    some builds do not verify by default)."""
    if not is_url(source):
        return []
    options = ["-rw_timeout", str(NETWORK_TIMEOUT_US)]
    if str(source).startswith("https://"):
        import certifi  # installed with requests

        options += ["-tls_verify", "1", "-ca_file", certifi.where()]
    return options


def check_size(size: int) -> None:
    if size == 0:
        raise MediaError("empty file (0 bytes)")
    if size > MAX_BYTES:
        raise MediaError(f"file is {size / 1024**3:.1f} GB; Rekognition Video takes at most 10 GB")


def probe(source: str | Path, size: int | None = None) -> Probe:
    """Read container, codec, size, frame rate and duration from ffmpeg's stream header.

    `source` is a local file or an http(s) URL, such as a presigned S3 URL: ffmpeg then reads the header with range
    requests, not the whole object, and `size` is the object's size. Error messages never carry the URL (a
    presigned one holds a signature). A read that fails over a URL raises `Unreadable`, like a corrupt file.
    """
    remote = is_url(source)
    if remote:
        if size is None:
            raise ValueError("probing a URL needs the object's size")
    else:
        size = Path(source).stat().st_size
    check_size(size)
    out = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", *_input_options(source), "-i", str(source)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
        check=False,
    ).stderr
    if remote:
        out = _URL_RE.sub("<url>", out)
    fmt, video = _INPUT_RE.search(out), _VIDEO_RE.search(out)
    if not fmt:
        raise Unreadable(f"not a readable media file: {_last_error_line(out)}")
    if fmt["fmt"] in _NOT_VIDEO_FORMATS or fmt["fmt"].endswith("_pipe"):
        raise MediaError(f"not a video: ffmpeg reads it as {fmt['fmt']!r} (text or a still image)")
    if not video:
        raise MediaError(f"no video stream in this {fmt['fmt']} file")
    dims = _SIZE_RE.search(video["rest"])
    fps = _FPS_RE.search(video["rest"])
    dur = _DURATION_RE.search(out)
    duration = int(dur["h"]) * 3600 + int(dur["m"]) * 60 + float(dur["s"]) if dur else 0.0
    if not dims:
        raise MediaError(f"the {video['codec']} stream has no frame size (corrupt header?)")
    if duration > MAX_DURATION_S:
        raise MediaError(f"video is {duration / 3600:.1f} h long; Rekognition Video takes at most 6 h")
    return Probe(
        container=fmt["fmt"],
        codec=video["codec"],
        width=int(dims["w"]),
        height=int(dims["h"]),
        fps=float(fps["fps"]) if fps else 0.0,
        duration_s=duration,
        has_audio=": Audio: " in out,
    )


def transcode_to_h264(src: str | Path, dst: str | Path, timeout_s: float = 850) -> Probe:
    """Transcode `src` into an H.264/AAC MP4 at `dst` and probe the result. Corrupt input raises MediaError."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(src), *TRANSCODE_ARGS]
    try:
        proc = subprocess.run(
            [*cmd, str(dst)], check=False, capture_output=True, text=True, errors="replace", timeout=timeout_s
        )
    except subprocess.TimeoutExpired as err:  # the next attempt would time out the same way: a media verdict
        raise MediaError(
            f"transcoding to H.264 did not finish within {timeout_s:.0f} s (the function's time limit)"
        ) from err
    if proc.returncode != 0:
        raise MediaError(f"transcoding to H.264 failed: {_last_error_line(proc.stderr)}")
    result = probe(dst)
    if not result.rekognition_ready or result.duration_s <= 0:
        raise MediaError("transcoding produced no usable H.264 video (the input is probably truncated)")
    return result
