"""`make bench`, transcode part: the segmented transcode of a 10-minute 720p VP9 WebM beside a single pass of the
same file (same run, same machine), and the wall time it models for a 2-hour 1080p WebM on AWS.

Locally the segments run `workers` at a time (the local dispatcher's pollers: the machine's cores), each an ffmpeg
process on a shared CPU, so the local fan-out cannot beat the single pass by much; what it measures is the cost of a
segment (frames per second per invocation) and of the fixed steps (keyframe planning, audio, join), from which the
model computes a fan-out of Lambda invocations that each have their own CPU.
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cliplake.media import encode_audio, encode_segment, ffmpeg_exe, join_parts, probe, split_points, transcode_to_h264
from cliplake.settings import SegmentsSettings

TARGET_S = 600.0
# The stack's documented defaults (settings.py): the bench measures what a deployment runs.
SEGMENT_S: float = SegmentsSettings.model_fields["segment_length_s"].default
MAX_SEGMENTS: int = SegmentsSettings.model_fields["max_segments"].default
REFERENCE_720P_FPS = 151.0  # the project's settings on 2 idle cores, synthetic 720p30 VP9 (FACTS.md)


def make_webm(path: Path, seconds: int, size: str = "1280x720", rate: int = 30) -> Path:
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}:sample_rate=48000",
         "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1", "-b:v", "2M", "-g", "150",
         "-c:a", "libopus", str(path)],
        check=True,
    )  # fmt: skip
    return path


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(out: Callable[[str], None] = print, seconds: int = 600, segment_s: float = SEGMENT_S, workers: int = 0) -> dict:
    workers = workers or os.cpu_count() or 2
    with tempfile.TemporaryDirectory(prefix="cliplake-transcode-bench-") as tmp:
        d = Path(tmp)
        out(f"Transcode: making a {seconds // 60}-minute 1280x720 30 fps VP9/Opus WebM...")
        src = make_webm(d / "source.webm", seconds)
        source = probe(src)
        frames = round(source.duration_s * source.fps)

        single_s = _timed(lambda: transcode_to_h264(src, d / "single.mp4"))

        start = time.perf_counter()
        splits = split_points(src, source.duration_s, segment_s, MAX_SEGMENTS)
        plan_s = time.perf_counter() - start
        ranges = list(zip(splits, [*splits[1:], None], strict=True))
        seg_times: list[float] = [0.0] * len(ranges)

        def encode(i: int) -> None:
            a, b = ranges[i]
            seg_times[i] = _timed(lambda: encode_segment(src, d / f"v{i:05d}.mp4", a, b))

        audio_s = 0.0

        def audio() -> None:
            nonlocal audio_s
            audio_s = _timed(lambda: encode_audio(src, d / "audio.m4a"))

        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(encode, i) for i in range(len(ranges))] + [pool.submit(audio)]
            for f in futures:
                f.result()
        parts = [d / f"v{i:05d}.mp4" for i in range(len(ranges))]
        join_s = _timed(lambda: join_parts(parts, d / "audio.m4a", d / "joined.mp4"))
        fanout_s = time.perf_counter() - start
        rendition_bytes = (d / "joined.mp4").stat().st_size

    seg_lengths = [((b if b is not None else source.duration_s) - a) for a, b in ranges]
    seg_fps = [length * source.fps / t for length, t in zip(seg_lengths, seg_times, strict=True)]
    fps_per_segment = statistics.median(seg_fps)
    out(f"  single pass (one ffmpeg, {workers} cores): {single_s:6.1f} s  ({frames / single_s:5.0f} fps)")
    out(f"  fan-out, {len(ranges)} segments of ~{segment_s:.0f} s, {workers} at a time: {fanout_s:6.1f} s "
        f"(keyframe plan {plan_s:.2f} s, audio {audio_s:.1f} s, join {join_s:.2f} s)")  # fmt: skip
    out(f"  per segment: median {statistics.median(seg_times):.1f} s, {fps_per_segment:.0f} fps with "
        f"{workers} segments sharing {workers} cores")  # fmt: skip
    measured = {
        "join_bytes_per_s": rendition_bytes / max(join_s, 1e-3),
        "rendition_bytes_per_s": rendition_bytes / source.duration_s,
        "plan_s_per_split": plan_s / max(1, len(splits) - 1),
        "audio_x_realtime": source.duration_s / max(audio_s, 1e-3),
        "workers": workers,
    }
    # a segment with the machine to itself: the measured speed times the segments that shared the cores
    fps_alone = fps_per_segment * min(workers, len(ranges))
    model = model_aws(fps_720p_alone=fps_alone, segment_s=segment_s, **measured)
    for line in model["lines"]:
        out(line)
    if fps_alone < REFERENCE_720P_FPS / 2:
        idle = model_aws(fps_720p_alone=REFERENCE_720P_FPS, segment_s=segment_s, **measured)["wall_s"]
        out(f"  (this machine encoded {fps_alone:.0f} fps of 720p per segment today against {REFERENCE_720P_FPS:.0f} "
            f"measured on an idle one (FACTS.md): with that speed the same model gives "
            f"{idle / 60:.1f} min)")  # fmt: skip
    return {"single_s": single_s, "fanout_s": fanout_s, "segments": len(ranges), "model_s": model["wall_s"]}


def model_aws(
    *,
    fps_720p_alone: float,
    join_bytes_per_s: float,
    rendition_bytes_per_s: float,
    plan_s_per_split: float,
    audio_x_realtime: float,
    workers: int,
    duration_s: float = 7200.0,
    fps: float = 30.0,
    concurrency: int = 100,
    segment_s: float = SEGMENT_S,
    max_segments: int = MAX_SEGMENTS,
) -> dict:
    """The wall time of a 2-hour 1080p30 WebM fanned out on Lambda, from this run's measurements."""
    lambda_vcpu = 3008 / 1769  # Lambda: one vCPU per 1,769 MB
    cpu_scale = lambda_vcpu / workers  # the measured speed had `workers` cores
    pixels = (1920 * 1080) / (1280 * 720)
    real_footage = 2.0  # FACTS: real footage ≈ 2x harder to encode than the synthetic pattern
    fps_1080 = fps_720p_alone * cpu_scale / pixels / real_footage
    length = max(segment_s, duration_s / max_segments)
    segments = min(max_segments, round(duration_s / length))
    waves = math.ceil(segments / concurrency)
    cold_start_s, s3_bytes_per_s = 3.0, 80e6  # a cold start with the ffmpeg binary; one S3 stream
    segment_s_wall = cold_start_s + length * fps / fps_1080 + (length * rendition_bytes_per_s * pixels) / s3_bytes_per_s
    plan_s = plan_s_per_split * (segments - 1) / 4 * 2  # four seeks at once, ≈ 2x slower over S3 than from disk
    rendition = duration_s * rendition_bytes_per_s * pixels
    audio_s = duration_s / (audio_x_realtime * cpu_scale)  # runs beside the segments
    join_s = rendition / min(join_bytes_per_s, s3_bytes_per_s) + rendition / s3_bytes_per_s  # read parts, put it
    wall = plan_s + max(waves * segment_s_wall, audio_s + cold_start_s) + cold_start_s + join_s
    lines = [
        f"  model, a 2-hour 1080p30 WebM on AWS at a concurrency of {concurrency}: {wall / 60:.1f} min "
        f"(target <= {TARGET_S / 60:.0f} min: {'met' if wall <= TARGET_S else 'NOT met'})",
        f"    assumptions: segment length {length:.0f} s -> {segments} segments in {waves} wave(s); "
        f"SegmentFunction 3008 MB = {lambda_vcpu:.2f} vCPU",
        f"    encode speed: {fps_720p_alone:.0f} fps measured for 720p here x {cpu_scale:.2f} (vCPU) / {pixels:.2f} "
        f"(1080p pixels) / {real_footage:.0f} (real footage) = {fps_1080:.0f} fps -> {segment_s_wall:.0f} s a segment "
        f"(with a {cold_start_s:.0f} s cold start and its part's upload at {s3_bytes_per_s / 1e6:.0f} MB/s)",
        f"    keyframe planning {plan_s:.1f} s; audio {audio_s:.0f} s (beside the segments); join of a "
        f"{rendition / 1e9:.2f} GB rendition {join_s:.0f} s (stream copy, parts read and the rendition put at "
        f"{s3_bytes_per_s / 1e6:.0f} MB/s); queue hops and the analysis start not counted (< 1 s each)",
    ]
    return {"wall_s": wall, "lines": lines}
