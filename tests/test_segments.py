"""A long video transcoded in segments: split at keyframes, closed-GOP parts, a stream-copy join, audio encoded once.

The clips are 3-minute low-resolution test patterns with a tone (VP9/Opus WebM, Theora/Vorbis Ogg), cut into 30 s
segments: the joined rendition must match the source frame for frame, in duration and in audio, and look like a
single-pass transcode at every join.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import socket
import struct
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from cliplake.media import (
    KEYFRAME_READ_RETRY,
    MediaError,
    NetworkError,
    encode_audio,
    encode_segment,
    ffmpeg_exe,
    join_parts,
    keyframe_args,
    keyframe_at_or_before,
    plan_splits,
    probe,
    split_points,
    transcode_to_h264,
)
from cliplake.sources.http import Retryable, RetryPolicy

SECONDS, RATE, SEGMENT_S = 180, 10, 30.0
SOURCES = {
    "webm": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "150k", "-g", "48",
             "-c:a", "libopus"],
    "ogv": ["-c:v", "libtheora", "-q:v", "5", "-g", "64", "-c:a", "libvorbis"],
}  # fmt: skip


def make_source(path: Path, codec_args: list[str], seconds: int = SECONDS) -> Path:
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate={RATE}:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}:sample_rate=16000",
         *codec_args, str(path)],
        check=True,
    )  # fmt: skip
    return path


def frame_count(path: Path) -> int:
    err = _ffmpeg_null(path, "0:v:0", copy=True)
    return int(re.findall(r"frame=\s*(\d+)", err)[-1])


def audio_seconds(path: Path) -> float:
    """The decoded audio's duration: its sample count over the rate, as ffmpeg's astats counts them."""
    err = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:a:0", "-af",
         "astats=measure_overall=Number_of_samples:measure_perchannel=none", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    ).stderr  # fmt: skip
    samples = float(re.findall(r"Number of samples: (\d+)", err)[-1])
    rate = int(re.search(r"Audio: \w+.*?, (\d+) Hz", err)[1])
    return samples / rate


def video_seconds(path: Path) -> float:
    """The span of the frames, from the stream's packets (the container's header may round)."""
    out = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    num, den = map(int, re.search(r"#tb 0: (\d+)/(\d+)", out).groups())
    rows = [list(map(int, r.split(",")[1:4])) for r in out.splitlines() if r.startswith("0,")]
    pts = sorted(r[1] for r in rows)
    return (pts[-1] - pts[0] + rows[-1][2]) * num / den


def _ffmpeg_null(path: Path, stream: str, copy: bool) -> str:
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", stream]
    return subprocess.run([*args, *(["-c", "copy"] if copy else []), "-f", "null", "-"], capture_output=True,
                          text=True, check=True).stderr  # fmt: skip


def min_psnr(a: Path, b: Path, start: float, end: float) -> tuple[float, int]:
    """The lowest per-frame PSNR (dB, Y/U/V average) between two videos over [start, end), and the frames compared."""
    cut = ["-ss", f"{start:.3f}", "-t", f"{end - start:.3f}"]  # accurate seeks: decoded from the keyframe before
    out = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", *cut, "-i", str(a), *cut, "-i", str(b), "-lavfi",
         "[0:v][1:v]psnr=stats_file=-", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    values = [float("inf") if v == "inf" else float(v) for v in re.findall(r"psnr_avg:(\S+)", out)]
    return min(values), len(values)


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("long")
    return {kind: make_source(d / f"talk.{kind}", args) for kind, args in SOURCES.items()}


def test_nominal_splits_honour_the_segment_length_and_the_fan_out_width():
    assert plan_splits(180, 30, 100) == [30, 60, 90, 120, 150]
    assert plan_splits(185, 30, 100) == [30, 60, 90, 120, 150]  # the last segment takes the 5 s remainder
    assert plan_splits(7200, 30, 100) == [72 * i for i in range(1, 100)]  # 100 segments at most: longer ones
    assert plan_splits(20, 30, 100) == []  # one segment
    with pytest.raises(ValueError):
        plan_splits(180, 0, 100)


def test_a_video_fans_out_when_too_long_or_too_many_pixels_for_one_invocation():
    from cliplake.media import Probe
    from cliplake.segments import fans_out, single_pass_estimate_s
    from cliplake.services import Services
    from cliplake.settings import SegmentSettings

    resources = {"bucket": "b", "catalog_table": "t", "rekognition_topic_arn": "arn:t", "rekognition_role_arn": "arn:r"}
    svc = Services(SegmentSettings(**resources, segment_queue_url="https://q", single_pass_max_s=600.0))

    def video(w, h, seconds, fps=30.0):
        return Probe("matroska,webm", "vp9", w, h, fps, seconds, True)

    assert not fans_out(svc, video(1920, 1080, 600))  # 10 min of 1080p: ≈ 580 s in one invocation
    assert single_pass_estimate_s(video(1920, 1080, 600)) == pytest.approx(583, abs=1)
    assert fans_out(svc, video(1920, 1080, 601))  # longer than the setting
    assert fans_out(svc, video(3840, 2160, 300))  # 5 min of 4K: ≈ 1170 s, past the budget
    assert not fans_out(svc, video(3840, 2160, 120))


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_segmented_transcode_matches_the_source_and_a_single_pass(kind, sources, tmp_path):
    src = sources[kind]
    source = probe(src)
    splits = split_points(src, source.duration_s, SEGMENT_S, 100)
    assert len(splits) == 6 and splits[0] == 0
    for nominal, found in zip(plan_splits(source.duration_s, SEGMENT_S, 100), splits[1:], strict=True):
        assert nominal - 7 < found <= nominal  # the keyframe at or before each nominal split (GOPs ≤ 6.4 s)
        assert keyframe_at_or_before(src, found) == found  # ... and a keyframe indeed: seeking to it stays there

    parts = [
        encode_segment(src, tmp_path / f"v{i}.mp4", start, end)
        for i, (start, end) in enumerate(zip(splits, [*splits[1:], None], strict=True))
    ]
    audio = encode_audio(src, tmp_path / "audio.m4a")
    joined = join_parts(parts, audio, tmp_path / "joined.mp4")
    single = tmp_path / "single.mp4"
    transcode_to_h264(src, single)

    frame = 1 / RATE
    assert joined.rekognition_ready and joined.has_audio
    assert sum(frame_count(p) for p in parts) == frame_count(tmp_path / "joined.mp4") == frame_count(src)
    assert frame_count(src) == SECONDS * RATE
    assert abs(video_seconds(tmp_path / "joined.mp4") - source.duration_s) <= frame
    assert abs(audio_seconds(tmp_path / "joined.mp4") - audio_seconds(src)) <= frame
    for split in splits[1:]:  # the second around every join, frame by frame, against the single pass
        psnr, compared = min_psnr(tmp_path / "joined.mp4", single, split - 0.5, split + 0.5)
        assert compared == RATE and psnr >= 35.0, (split, psnr)


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_finding_a_keyframe_reads_a_small_part_of_the_file(kind, sources):
    """The index is read by seeking: ffmpeg's own I/O statistics for one split point (WebM: its Cues; Ogg: a
    bisection over pages) stay a small fraction of the file, which is never read whole."""
    src = sources[kind]
    err = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "verbose", *keyframe_args(src, 90.0)],
                         capture_output=True, text=True, check=True).stderr  # fmt: skip
    read = sum(int(n) for n in re.findall(r"Statistics: (\d+) bytes read", err))
    assert 0 < read < src.stat().st_size / 4, (read, src.stat().st_size)  # measured: WebM ≈ 1 %, Ogg ≈ 17 %


def test_a_range_starting_off_a_keyframe_would_show_at_the_join(sources, tmp_path):
    """The check above can fail: a segment cut one frame late drops a frame and shifts the rest, which the frame
    count and the PSNR against the single pass both see."""
    src = sources["ogv"]
    splits = split_points(src, probe(src).duration_s, SEGMENT_S, 100)[:2]
    late = splits[1] + 1 / RATE
    parts = [encode_segment(src, tmp_path / "a.mp4", 0, splits[1]), encode_segment(src, tmp_path / "b.mp4", late, 60)]
    join_parts(parts, None, tmp_path / "joined.mp4")
    single = tmp_path / "single.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(src), "-t", "60", "-an", "-c:v", "libx264", "-crf", "20",
                    "-preset", "veryfast", str(single)], check=True)  # fmt: skip
    assert frame_count(tmp_path / "joined.mp4") == 60 * RATE - 1
    assert min_psnr(tmp_path / "joined.mp4", single, splits[1], splits[1] + 0.5)[0] < 35.0


# ------------------------------------------------------------------------------ the keyframe index over HTTP
class FlakyServer:
    """Serves one file over HTTP with range requests, as S3 serves a presigned URL; the first `fail` requests fail
    with `how`: "503" (Service Unavailable), "reset" (the connection reset, no answer) or "cut" (the connection
    reset after a part of the answer's body)."""

    def __init__(self, path: Path, fail: int = 0, how: str = "503") -> None:
        self.data, self.fail, self.how = path.read_bytes(), fail, how
        self.requests, self.lock = 0, threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/{path.name}?X-Amz-Signature=secret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                with outer.lock:
                    outer.requests += 1
                    failing = outer.requests <= outer.fail
                if failing and outer.how == "503":
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if failing and outer.how == "reset":  # SO_LINGER 0: close() sends a reset
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection, self.wfile = True, io.BytesIO()
                    return
                size = len(outer.data)
                wanted = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
                start, end = (int(wanted[1]), int(wanted[2] or size - 1)) if wanted else (0, size - 1)
                self.send_response(206 if wanted else 200)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                self.send_header("Content-Length", str(end - start + 1))
                self.end_headers()
                body = outer.data[start : end + 1]
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # ffmpeg stops reading early
                    if failing:  # "cut": a third of the body, then a reset
                        self.wfile.write(body[: len(body) // 3])
                        self.wfile.flush()
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        self.connection.close()
                        self.close_connection, self.wfile = True, io.BytesIO()
                        return
                    self.wfile.write(body)

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky(sources):
    servers: list[FlakyServer] = []

    def serve(path: Path, fail: int = 0, how: str = "503") -> FlakyServer:
        servers.append(FlakyServer(path, fail, how))
        return servers[-1]

    yield serve
    for server in servers:
        server.close()


def _policy(waits: list[float]) -> RetryPolicy:
    """The keyframe read's policy, its waits recorded instead of slept."""
    return dataclasses.replace(KEYFRAME_READ_RETRY, sleep=waits.append)


@pytest.mark.parametrize("how", ["503", "reset"])
def test_a_keyframe_read_that_fails_on_the_network_is_retried(how, sources, flaky):
    """The first requests to the presigned URL fail (a 503, or a reset connection): the reads are retried with the
    project's policy and find the same split points as from the file itself."""
    src = sources["webm"]
    expected = split_points(src, SECONDS, SEGMENT_S, 100)
    server, waits = flaky(src, fail=3, how=how), []
    assert split_points(server.url, SECONDS, SEGMENT_S, 100, workers=1, retry=_policy(waits)) == expected
    assert waits == [1.0, 2.0, 4.0][: len(waits)] and len(waits) >= 1  # retried, with the policy's back-off
    assert server.requests > 3


def test_a_network_failure_that_persists_raises_a_retryable_error_not_a_media_verdict(sources, flaky):
    server, waits = flaky(sources["webm"], fail=10**6), []
    with pytest.raises(NetworkError) as caught:
        keyframe_at_or_before(server.url, 90.0, retry=_policy(waits))
    err = caught.value
    assert isinstance(err, Retryable) and not isinstance(err, MediaError)  # analyze marks FAILED on MediaError only
    assert err.attempts == KEYFRAME_READ_RETRY.retries + 1 == len(waits) + 1
    assert "503" in str(err) and "secret" not in str(err)  # the reason, and never the presigned URL's signature


def test_a_media_error_over_a_url_is_not_retried(tmp_path, flaky):
    text = tmp_path / "notes.webm"
    text.write_text("not a video, only text that says it is one\n" * 200)
    server, waits = flaky(text), []
    with pytest.raises(MediaError) as caught:
        keyframe_at_or_before(server.url, 90.0, retry=_policy(waits))
    assert not isinstance(caught.value, NetworkError) and waits == [] and server.requests == 1
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("how", ["503", "reset", "cut"])
def test_a_segment_encode_that_fails_on_the_network_raises_a_retryable_error(how, sources, flaky, tmp_path):
    """Every read of the range fails ("cut": each answer's body stops a third of the way, where ffmpeg exited 0
    with a truncated part): NetworkError, so the task is redelivered, never a MediaError or a short part."""
    server = flaky(sources["webm"], fail=10**6, how=how)
    with pytest.raises(NetworkError) as caught:
        encode_segment(server.url, tmp_path / "part.mp4", 60.0, 90.0)
    assert not isinstance(caught.value, MediaError) and "secret" not in str(caught.value)


def test_a_read_that_ffmpeg_resumes_keeps_the_whole_part(sources, flaky, tmp_path):
    """One answer cut short, and ffmpeg's next range request gets the rest: the part is whole (no false alarm)."""
    whole = encode_segment(sources["webm"], tmp_path / "local.mp4", 60.0, 90.0)
    resumed = encode_segment(flaky(sources["webm"], fail=1, how="cut").url, tmp_path / "resumed.mp4", 60.0, 90.0)
    assert frame_count(resumed) == frame_count(whole) == 30 * RATE


def test_the_audio_and_the_join_over_urls_that_fail_on_the_network_raise_a_retryable_error(sources, flaky, tmp_path):
    with pytest.raises(NetworkError):
        encode_audio(flaky(sources["webm"], fail=10**6, how="cut").url, tmp_path / "audio.m4a")
    parts = [encode_segment(sources["webm"], tmp_path / f"v{i}.mp4", s, s + 30.0) for i, s in enumerate((0.0, 30.0))]
    urls = [flaky(parts[0]).url, flaky(parts[1], fail=10**6, how="503").url]
    with pytest.raises(NetworkError) as caught:
        join_parts(urls, None, tmp_path / "joined.mp4")
    assert "503" in str(caught.value) and "secret" not in str(caught.value)
