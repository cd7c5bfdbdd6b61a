"""Probe and decode a video once with the ffmpeg binary from ``imageio-ffmpeg``.

One ffmpeg process decodes every frame once and splits it into two raw streams:

- ``small``: every frame, ``SMALL_WIDTH`` wide — shot boundaries and black frames;
- ``sample``: every ``sample_every``-th frame (≈ every 500 ms, like Rekognition), at most ``MODEL_HEIGHT``
  high — the models.

Both arrive as planar YUV 4:2:0 in limited range (``Frame``), and OpenCV turns them into RGB with the video's
own colour matrix, at the size each consumer wants (224x224 for the label model...). This build's ffmpeg
converts YUV to RGB slowly (≈ 1.4 ms a 640x360 frame, 8 ms at 720p), while resizing the planes first and
converting the result in OpenCV takes ≈ 0.5 ms, and the people detector reads the luma plane alone. The small
stream arrives on stdout, the sample stream on an extra pipe; each is read by its own thread so
neither can stall ffmpeg. PyAV is not installed and OpenCV's reader cannot produce two sizes from one decode.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

SMALL_WIDTH = 160
MODEL_HEIGHT = 360
SAMPLE_MS = 500
# Videos at least twice MODEL_HEIGHT high skip the deblocking filter on B-frames, which nothing or only neighbouring
# B-frames predict from: decoding costs ~10 % less CPU, and the frames the analysis sees (downscaled ≥ 2x) differ
# by ≥ 56 dB PSNR (README, "Speed"; tests/rekognition/test_engine.py).
SKIP_DEBLOCK = ("-skip_loop_filter", "bidir")
# The decoding run opens the file as the MP4/MOV it was probed to be (``check_supported``), without probing the
# format or decoding ahead for stream parameters again: the filter graph takes formats from the first decoded frame.
# Analysis starts ≈ 10 ms sooner; on a 5 s clip that is ≈ 4 % of the whole (README, "Speed").
OPEN_PROBED = ("-f", "mov", "-probesize", "32", "-analyzeduration", "0")

FORMATS = {"mov,mp4,m4a,3gp,3g2,mj2": "QuickTime / MOV"}


class UnsupportedVideo(Exception):
    """The object is not an H.264 MP4/MOV video Rekognition can read."""


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    container: str
    width: int
    height: int
    fps: Fraction
    duration_ms: int
    color_range: str  # FULL | LIMITED
    audio: tuple[tuple[str, int, int], ...] = ()  # (codec, sample rate, channels) per audio stream
    color_matrix: str = "bt601"  # the YUV → RGB matrix: a key of ``LUMA_WEIGHTS``

    @property
    def format(self) -> str:
        return FORMATS.get(self.container, self.container)

    @property
    def frame_count(self) -> int:
        return round(self.duration_ms * float(self.fps) / 1000.0)


def ffmpeg() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


# (Kr, Kb) of each YUV → RGB matrix ffmpeg names in a stream's colour description; untagged or other streams use
# BT.601, as ffmpeg's own RGB conversion does.
LUMA_WEIGHTS = {
    "bt601": (0.299, 0.114),
    "bt709": (0.2126, 0.0722),
    "bt2020": (0.2627, 0.0593),
    "smpte240m": (0.212, 0.087),
    "fcc": (0.30, 0.11),
}
MATRIX_NAMES = {"bt2020nc": "bt2020", "bt2020c": "bt2020"}

CHANNELS = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "5.0": 5, "5.1": 6, "6.1": 7, "7.1": 8}


def _int_prefix(text: str) -> int:
    m = re.match(r"\s*(\d+)", text)
    return int(m.group(1)) if m else 0


def _exact_fps(value: float) -> Fraction:
    for base in (24, 30, 60, 120):
        if abs(value - base * 1000 / 1001) < 0.01:
            return Fraction(base * 1000, 1001)
    return Fraction(value).limit_denominator(1001)


def probe(path: Path) -> VideoInfo:
    """Read the container and first video stream's header (no decoding)."""
    proc = subprocess.run([ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True, text=True, check=False)
    err = proc.stderr
    m_in = re.search(r"Input #0, (.+?), from", err)
    m_v = re.search(r"Stream #0:\d+.*?: Video: (\w+)(.*)", err)
    if not m_in or not m_v:
        raise UnsupportedVideo("Unsupported codec/format: no readable video stream")
    rest = m_v.group(2)
    size = re.search(r"(\d{2,5})x(\d{2,5})", rest)
    rate = re.search(r"([\d.]+) fps", rest) or re.search(r"([\d.]+) tbr", rest)
    dur = re.search(r"Duration: (\d+):(\d+):([\d.]+)", err)
    if not size or not rate or not dur:
        raise UnsupportedVideo("Unsupported codec/format: incomplete stream header")
    full = "(pc" in rest or "yuvj" in rest
    described = re.search(r", \w+\(([^)]*)\)", rest)  # the pixel format's, e.g. "yuv420p(tv, bt709/bt709/bt709)"
    tags = [t.strip().split("/")[0] for t in described.group(1).split(",")] if described else []
    matrix = next((MATRIX_NAMES.get(t, t) for t in tags if MATRIX_NAMES.get(t, t) in LUMA_WEIGHTS), "bt601")
    audio = tuple(
        (codec, int(rate_hz), CHANNELS.get(layout, _int_prefix(layout)))
        for codec, rate_hz, layout in re.findall(r"Stream #0:\d+.*?: Audio: (\w+).*?, (\d+) Hz, ([^,]+)", err)
    )
    h, mi, s = dur.groups()
    return VideoInfo(
        codec=m_v.group(1),
        container=m_in.group(1),
        width=int(size.group(1)),
        height=int(size.group(2)),
        fps=_exact_fps(float(rate.group(1))),
        duration_ms=round((int(h) * 3600 + int(mi) * 60 + float(s)) * 1000),
        color_range="FULL" if full else "LIMITED",
        audio=audio,
        color_matrix=matrix,
    )


def check_supported(info: VideoInfo) -> None:
    """Rekognition Video accepts H.264 in MP4/MOV only."""
    if info.codec != "h264" or "mp4" not in info.container:
        raise UnsupportedVideo(
            f"Unsupported codec/format: {info.codec} in {info.container} (H.264 in MP4/MOV required)"
        )


def _even(x: float) -> int:
    return max(2, round(x / 2) * 2)


@dataclass(frozen=True)
class Plan:
    small: tuple[int, int]
    sample: tuple[int, int]
    sample_every: int
    decode_options: tuple[str, ...] = ()
    color_matrix: str = "bt601"

    @classmethod
    def for_video(cls, info: VideoInfo, sample_ms: int = SAMPLE_MS) -> Plan:
        aspect = info.width / info.height
        mh = min(info.height, MODEL_HEIGHT)
        return cls(
            small=(SMALL_WIDTH, _even(SMALL_WIDTH / aspect)),
            sample=(_even(mh * aspect), _even(mh)),
            sample_every=max(1, round(float(info.fps) * sample_ms / 1000)),
            decode_options=SKIP_DEBLOCK if info.height >= 2 * MODEL_HEIGHT else (),
            color_matrix=info.color_matrix,
        )


def yuv_to_rgb(matrix: str) -> np.ndarray:
    """The 3x4 affine map from limited-range YUV (Y 16..235, U/V 16..240) to full-range RGB, for ``cv2.transform``."""
    kr, kb = LUMA_WEIGHTS[matrix]
    kg = 1.0 - kr - kb
    ys, cs = 255 / 219, 255 / 224
    m = np.array(
        [
            [ys, 0.0, 2 * (1 - kr) * cs],
            [ys, -2 * (1 - kb) * kb / kg * cs, -2 * (1 - kr) * kr / kg * cs],
            [ys, 2 * (1 - kb) * cs, 0.0],
        ]
    )
    return np.hstack([m, -(m @ np.array([16.0, 128.0, 128.0]))[:, None]]).astype(np.float32)


# limited-range luma (16..235) → full range (0..255), what a grey conversion of the RGB frame gives
FULL_RANGE_LUMA = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)


class Frame:
    """One decoded frame as ffmpeg hands it over: planar YUV 4:2:0, limited range (``y`` is the luma plane)."""

    __slots__ = ("_planes", "_to_rgb", "u", "v", "y")

    def __init__(self, buf: bytes, width: int, height: int, to_rgb: np.ndarray) -> None:
        planes = self._planes = np.frombuffer(buf, np.uint8)
        luma, chroma = width * height, (width // 2) * (height // 2)
        self.y = planes[:luma].reshape(height, width)
        self.u = planes[luma : luma + chroma].reshape(height // 2, width // 2)
        self.v = planes[luma + chroma : luma + 2 * chroma].reshape(height // 2, width // 2)
        self._to_rgb = to_rgb

    @property
    def size(self) -> tuple[int, int]:
        return self.y.shape[1], self.y.shape[0]

    def i420(self) -> np.ndarray:
        """The three planes stacked as OpenCV's ``COLOR_YUV2*_I420`` conversions read them."""
        return self._planes.reshape(-1, self.y.shape[1])

    def gray(self) -> np.ndarray:
        """The luma plane in full range (0..255)."""
        return cv2.LUT(self.y, FULL_RANGE_LUMA)

    def rgb(self, size: tuple[int, int] | None = None) -> np.ndarray:
        """RGB uint8 at ``size`` (width, height; default the frame's own): each plane is resized (area
        averaging when it shrinks), then converted with the video's matrix."""
        size = size or self.size
        return cv2.transform(cv2.merge([_resize(p, size) for p in (self.y, self.u, self.v)]), self._to_rgb)


def _resize(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (plane.shape[1], plane.shape[0]) == size:
        return plane
    shrink = size[0] <= plane.shape[1] and size[1] <= plane.shape[0]
    return cv2.resize(plane, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def rgb_frames(args: list[str], width: int, height: int) -> list[np.ndarray]:
    """A few RGB frames of ``width``x``height`` from one ffmpeg run over ``args`` (input and filter options),
    for set-up and tests; the engine itself streams with ``decode``."""
    raw = subprocess.run(
        [ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", *args, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return list(np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3))


def _read_frames(stream, size: tuple[int, int], to_rgb: np.ndarray, sink: Callable[[int, Frame], None]) -> None:
    width, height = size
    nbytes = width * height * 3 // 2
    index = 0
    while True:
        buf = stream.read(nbytes)
        if len(buf) < nbytes:
            return
        sink(index, Frame(buf, width, height, to_rgb))
        index += 1


def decode(
    path: Path,
    plan: Plan,
    on_small: Callable[[int, Frame], None],
    on_sample: Callable[[int, Frame], None],
) -> int:
    """Decode ``path`` once; call ``on_small(frame_no, frame)`` and ``on_sample(sample_no, frame)``.

    Returns the number of decoded frames. Sample ``k`` is frame ``k * plan.sample_every``.
    """
    sw, sh = plan.small
    mw, mh = plan.sample
    yuv = "out_range=limited,format=yuv420p"  # full-range videos too: one conversion to RGB fits every video
    graph = (
        f"[0:v]split=2[a][b];[a]scale={sw}:{sh}:flags=fast_bilinear:{yuv}[s];"
        f"[b]select='not(mod(n\\,{plan.sample_every}))',scale={mw}:{mh}:flags=area:{yuv}[m]"
    )
    rfd, wfd = os.pipe()
    cmd = [
        ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", *OPEN_PROBED, *plan.decode_options,
        "-i", str(path),
        "-filter_complex", graph,
        "-map", "[s]", "-fps_mode", "passthrough", "-f", "rawvideo", "pipe:1",
        "-map", "[m]", "-fps_mode", "passthrough", "-f", "rawvideo", f"pipe:{wfd}",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(wfd,), bufsize=1 << 20)
    os.close(wfd)
    errors: list[BaseException] = []
    counted = [0]

    to_rgb = yuv_to_rgb(plan.color_matrix)

    def small_sink(i: int, frame: Frame) -> None:
        counted[0] = i + 1
        on_small(i, frame)

    def run(stream, size, sink) -> None:
        try:
            _read_frames(stream, size, to_rgb, sink)
        except BaseException as exc:  # surfaced to the caller below
            errors.append(exc)
            proc.kill()
        finally:
            # keep draining so ffmpeg never blocks on a full pipe after an error
            while stream.read(1 << 20):
                pass

    with os.fdopen(rfd, "rb", buffering=1 << 20) as sample_stream:
        t = threading.Thread(target=run, args=(sample_stream, plan.sample, on_sample), daemon=True)
        t.start()
        run(proc.stdout, plan.small, small_sink)
        t.join()
    stderr = proc.stderr.read().decode(errors="replace")
    code = proc.wait()
    if errors:
        raise errors[0]
    if code != 0 or counted[0] == 0:
        raise UnsupportedVideo(f"Unsupported codec/format: decoding failed ({stderr.strip()[-200:]})")
    return counted[0]
