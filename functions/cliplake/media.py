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

from cliplake.sources.http import Retryable, RetryPolicy

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


class NetworkError(Retryable):
    """A read over a URL that failed on the network (an HTTP 5xx or 429, a reset, a timeout): worth another
    attempt, and never a verdict on the media (it is not a `MediaError`, so no stage marks the video FAILED)."""


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
#: What ffmpeg logs when a read over HTTP fails on the network. It logs them as warnings and may still exit 0 with
#: what it read before (a 503 on the seek's range request gave the packet at 0 s instead of the keyframe).
_NETWORK_RE = re.compile(
    r"HTTP error (?:5\d\d|429)[^\n]*|Server returned 5XX[^\n]*|Connection (?:reset by peer|refused|timed out)"
    r"|Error reading HTTP response[^\n]*|Network is unreachable|Broken pipe"
    r"|Stream ends prematurely[^\n]*|Error during demuxing: Input/output error"  # a body cut short: a partial read
)
#: A keyframe-index read over a presigned URL that fails on the network: retried (tenacity, sources/http.py).
KEYFRAME_READ_RETRY = RetryPolicy(retries=3, base_s=1.0, cap_s=8.0, name="keyframe index read")


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


# ----------------------------------------------------------------------------------------- segmented transcode
# A video too long for one invocation is transcoded in time ranges that start at the source's keyframes, each by
# its own invocation, then joined by stream copy. Each range is encoded with TRANSCODE_ARGS' video settings into a
# closed-GOP H.264 part (x264 closes GOPs by default and every part starts with an IDR frame), so the parts join
# into one valid stream; the audio is encoded once over the whole file and muxed at the join, so it has no gaps.
_FRAMECRC_TB_RE = re.compile(r"^#tb 0: (?P<num>\d+)/(?P<den>\d+)$", re.M)
_FRAMECRC_PKT_RE = re.compile(r"^0,\s*(?P<dts>-?\d+),\s*(?P<pts>-?\d+),", re.M)
#: A margin far below any frame interval (≥ 4 ms even at 240 fps) and far above timestamp rounding: a range
#: [start, end) keeps every frame whose time t satisfies start - margin <= t < end - margin.
_EDGE_S = 0.001
_VIDEO_ARGS = TRANSCODE_ARGS[TRANSCODE_ARGS.index("-c:v") : TRANSCODE_ARGS.index("-c:a")]
_AUDIO_ARGS = TRANSCODE_ARGS[TRANSCODE_ARGS.index("-c:a") : TRANSCODE_ARGS.index("-movflags")]


def _run_ffmpeg(args: list[str], what: str, timeout_s: float, *, network_checked: bool = False) -> str:
    """Run ffmpeg; a failure raises MediaError. With `network_checked` (a read over a URL that must be whole),
    a network failure raises NetworkError instead, even when ffmpeg exits 0, and so does a read that times out."""
    try:
        proc = subprocess.run(
            [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "warning" if network_checked else "error", "-y",
             *args],
            check=False,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
        )  # fmt: skip
    except subprocess.TimeoutExpired as err:
        if network_checked:
            raise NetworkError(f"{what} timed out after {timeout_s:.0f} s") from err
        raise
    if network_checked and (failure := _NETWORK_RE.search(proc.stderr)):
        raise NetworkError(f"{what} failed on the network: {failure[0].strip()}")
    if proc.returncode != 0:
        err = _last_error_line(proc.stderr)
        raise MediaError(f"{what} failed: {_URL_RE.sub('<url>', err)}")  # a presigned URL holds a signature
    return proc.stdout


def keyframe_args(source: str | Path, t: float) -> list[str]:
    """ffmpeg's arguments that seek `source` to `t` with its index and print the first video packet it lands on."""
    return [*_input_options(source), "-copyts", "-ss", f"{t:.6f}", "-noaccurate_seek", "-i", str(source),
            "-map", "0:v:0", "-c", "copy", "-frames:v", "1", "-f", "framecrc", "-"]  # fmt: skip


def keyframe_at_or_before(
    source: str | Path, t: float, timeout_s: float = 60, retry: RetryPolicy = KEYFRAME_READ_RETRY
) -> float:
    """The time of the video keyframe the demuxer seeks to for `t`: the last indexed keyframe at or before it.

    Reads the container's index (WebM Cues, MP4 sample tables, Ogg by bisection) and one packet, with range
    requests when `source` is a URL: never the whole file. A read that fails on the network is retried by `retry`
    and then raises NetworkError; only what the media itself causes raises MediaError.
    """
    return retry.call(lambda: _keyframe_once(source, t, timeout_s))


def _keyframe_once(source: str | Path, t: float, timeout_s: float) -> float:
    out = _run_ffmpeg(keyframe_args(source, t), "reading the keyframe index", timeout_s, network_checked=is_url(source))
    tb, pkt = _FRAMECRC_TB_RE.search(out), _FRAMECRC_PKT_RE.search(out)
    if not tb or not pkt:
        raise MediaError(f"no video packet found near {t:.1f} s")
    return int(pkt["pts"]) * int(tb["num"]) / int(tb["den"])


def plan_splits(duration_s: float, segment_s: float, max_segments: int) -> list[float]:
    """Nominal split times: every `segment_s` seconds, stretched so that there are at most `max_segments`; the
    last segment takes the remainder (up to 1.5 segments), so no sliver is left at the end."""
    if duration_s <= 0 or segment_s <= 0 or max_segments < 1:
        raise ValueError("duration, segment length and fan-out width must be positive")
    length = max(segment_s, duration_s / max_segments)
    count = max(1, min(max_segments, round(duration_s / length)))  # the last segment runs to the end
    return [i * length for i in range(1, count)]


def split_points(
    source: str | Path,
    duration_s: float,
    segment_s: float,
    max_segments: int,
    workers: int = 4,
    retry: RetryPolicy = KEYFRAME_READ_RETRY,
) -> list[float]:
    """The start times of the segments: 0 and, near every nominal split, the keyframe at or before it.

    Each segment then starts exactly on a keyframe (no wasted decode, no frame in two segments). Nominal splits
    that land on the same keyframe (a long GOP) merge into one.
    """
    from concurrent.futures import ThreadPoolExecutor

    nominal = plan_splits(duration_s, segment_s, max_segments)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = list(pool.map(lambda t: keyframe_at_or_before(source, t, retry=retry), nominal))
    return [0.0, *sorted({round(k, 6) for k in found if k > _EDGE_S})]


def _range_filter(start: float, end: float | None) -> str:
    trim = [f"start={start - _EDGE_S:.6f}"] if start > 0 else []
    if end is not None:
        trim.append(f"end={end - _EDGE_S:.6f}")
    scale = _VIDEO_ARGS[_VIDEO_ARGS.index("-vf") + 1]
    return ",".join([*([f"trim={':'.join(trim)}"] if trim else []), "setpts=PTS-STARTPTS", scale])


def encode_segment(
    source: str | Path, dst: str | Path, start: float, end: float | None, timeout_s: float = 850
) -> Path:
    """Encode the frames of `source` in [start, end) (source times, `start` a keyframe) into a video-only H.264
    MP4 part at `dst`, with the rendition's settings. Over a URL only that range is read (the seek uses the
    index); the part's timestamps start at 0 so the parts concatenate. A read over a URL that fails on the network
    raises NetworkError (even when ffmpeg exits 0 with the frames it read before): the task is worth another
    delivery, and a truncated part is never kept."""
    seek = ["-ss", f"{start + _EDGE_S:.6f}", "-noaccurate_seek"] if start > 0 else []
    vf_at = _VIDEO_ARGS.index("-vf")
    video_args = _VIDEO_ARGS[:vf_at] + _VIDEO_ARGS[vf_at + 2 :]
    _run_ffmpeg(
        [*_input_options(source), "-copyts", *seek, "-i", str(source), "-map", "0:v:0", "-an", "-sn", "-dn",
         "-vf", _range_filter(start, end), *video_args, "-fps_mode", "passthrough", str(dst)],
        "encoding a segment", timeout_s, network_checked=is_url(source),
    )  # fmt: skip
    return Path(dst)


def encode_audio(source: str | Path, dst: str | Path, timeout_s: float = 850) -> Path | None:
    """The whole audio track as AAC in an M4A at `dst` (cheap next to the video); None when there is none. Over a
    URL, a network failure raises NetworkError, as `encode_segment`."""
    _run_ffmpeg(
        [*_input_options(source), "-i", str(source), "-map", "0:a:0?", "-vn", "-sn", "-dn", *_AUDIO_ARGS,
         "-f", "mp4", str(dst)],
        "encoding the audio", timeout_s, network_checked=is_url(source),
    )  # fmt: skip
    path = Path(dst)
    if not path.exists() or path.stat().st_size == 0:
        return None
    out = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True, text=True, check=False
    ).stderr
    return path if ": Audio: " in out else None


def join_parts(
    parts: list[str] | list[Path], audio: str | Path | None, dst: str | Path, timeout_s: float = 850
) -> Probe:
    """Concatenate the video parts by stream copy (concat demuxer) and mux the audio beside them: one H.264 MP4.
    Parts and audio are local files or URLs (presigned: read over HTTP, never stored locally); a read of one that
    fails on the network raises NetworkError, as `encode_segment`."""
    dst = Path(dst)
    listing = dst.with_suffix(".txt")
    names = [p if is_url(p) else Path(p).resolve().as_posix() for p in parts]
    if any("'" in str(n) or "\n" in str(n) for n in names):
        raise ValueError("part names must not contain quotes or newlines")
    lines = []
    for n in names:
        lines.append(f"file '{n}'\n")
        options = _input_options(str(n))  # each part's own read timeout and certificate checks (ffconcat `option`)
        lines += [f"option {key.lstrip('-')} {value}\n" for key, value in zip(options[::2], options[1::2], strict=True)]
    listing.write_text("".join(lines))
    inputs = ["-f", "concat", "-safe", "0", "-protocol_whitelist", "file,http,https,tcp,tls,crypto", "-i", str(listing)]
    maps = ["-map", "0:v:0"]
    if audio is not None:
        inputs += [*_input_options(audio), "-i", str(audio)]
        maps += ["-map", "1:a:0"]
    args = [*inputs, *maps, "-c", "copy", "-movflags", "+faststart", str(dst)]
    over_urls = any(is_url(str(n)) for n in names) or (audio is not None and is_url(str(audio)))
    _run_ffmpeg(args, "joining the parts", timeout_s, network_checked=over_urls)
    listing.unlink()
    result = probe(dst)
    if not result.rekognition_ready or result.duration_s <= 0:
        raise MediaError("joining the parts produced no usable H.264 video")
    return result
