"""The decoder's frames: YUV from ffmpeg, turned into RGB with each video's own colour matrix and range."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cliplake_localcloud.rekognition import decode

from .conftest import FPS, H264, ffmpeg

GRADIENT = f"gradients=s=640x360:r={FPS}:d=1:c0=0xff2020:c1=0x20ff40:c2=0x3030ff:c3=0xffff00:n=4:seed=1"
TAGS = {
    "untagged": ("bt601", "LIMITED", ["-pix_fmt", "yuv420p"]),
    "bt709": ("bt709", "LIMITED", ["-pix_fmt", "yuv420p", "-colorspace", "bt709"]),
    "bt709-full": ("bt709", "FULL", ["-pix_fmt", "yuvj420p", "-colorspace", "bt709", "-color_range", "pc"]),
}


@pytest.fixture(scope="module")
def tagged(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("colours")
    out = {}
    for name, (_, _, args) in TAGS.items():
        out[name] = d / f"{name}.mp4"
        ffmpeg("-f", "lavfi", "-i", GRADIENT, "-c:v", "libx264", "-crf", "10", *args, str(out[name]))
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = ((a.astype(float) - b.astype(float)) ** 2).mean()
    return 10 * np.log10(255**2 / max(mse, 1e-12))


@pytest.mark.parametrize("name", list(TAGS))
def test_frames_match_ffmpegs_own_rgb_conversion(tagged, name):
    """The probe reads the matrix and range off the stream; the frames converted with them match ffmpeg's RGB
    conversion of the same frames (≥ 34 dB, and ≥ 8 dB closer than converting with the other matrix, which stays
    under 33 dB). ffmpeg's own conversion is not bit-stable across CPUs (swscale picks its SIMD path at run time):
    the bt709 clip measured 41 dB on one machine and 36.5 dB on another."""
    path = tagged[name]
    matrix, colour_range, _ = TAGS[name]
    info = decode.probe(path)
    assert (info.color_matrix, info.color_range) == (matrix, colour_range)
    plan = decode.Plan.for_video(info)
    frames: list[decode.Frame] = []
    decode.decode(path, plan, lambda i, f: None, lambda k, f: frames.append(f))
    w, h = plan.sample
    select = f"select='not(mod(n\\,{plan.sample_every}))',scale={w}:{h}:flags=area"
    reference = decode.rgb_frames(["-i", str(path), "-vf", select, "-fps_mode", "passthrough"], w, h)
    assert len(frames) == len(reference) > 0
    wrong = decode.yuv_to_rgb("bt601" if matrix == "bt709" else "bt709")
    for frame, ref in zip(frames, reference, strict=True):
        assert int(frame.y.min()) >= 16 and int(frame.y.max()) <= 235  # limited range, full-range video too
        right, other = psnr(frame.rgb(), ref), psnr(decode.Frame(frame.i420().tobytes(), w, h, wrong).rgb(), ref)
        assert right >= 34 and other < 33 and right - other >= 8, (right, other)
        assert frame.rgb((224, 224)).shape == (224, 224, 3)


@pytest.mark.parametrize("full_range", [False, True])
def test_black_frames_at_rekognitions_threshold(tmp_path, analyse, full_range):
    """Rekognition's default: a frame is black when 99 % of its pixels are at most 20 % up the luma range. Grey 42
    (16 % up) is black and grey 60 (24 % up) is not, in limited- and full-range video alike."""
    segments = ["testsrc2", "color=c=0x2a2a2a", "testsrc2", "color=c=0x3c3c3c"]
    inputs = []
    for src in segments:
        source = f"{src}=size=320x240:rate={FPS}" if "=" not in src else f"{src}:size=320x240:rate={FPS}"
        inputs += ["-f", "lavfi", "-t", "1", "-i", source]
    concat = "".join(f"[{i}:v]" for i in range(len(segments))) + f"concat=n={len(segments)}:v=1:a=0[v]"
    rng = ["-pix_fmt", "yuvj420p", "-color_range", "pc"] if full_range else []
    clip = tmp_path / "greys.mp4"
    ffmpeg(*inputs, "-filter_complex", concat, "-map", "[v]", *H264, *rng, str(clip))
    a = analyse(clip)
    assert a.info.color_range == ("FULL" if full_range else "LIMITED")
    black = [(c.start, c.end) for c in a.cues if c.kind == "BlackFrames"]
    assert len(black) == 1, black
    assert abs(black[0][0] - FPS) <= 1 and abs(black[0][1] - (2 * FPS - 1)) <= 1


def test_opening_the_file_as_probed_decodes_the_same_frames(tagged, tmp_path, monkeypatch):
    """The decoding run skips ffmpeg's own format and stream probing (``OPEN_PROBED``): the frames are the same
    bytes as with a full probe, for a full-range video and for a MOV whose first stream is audio."""
    mov = tmp_path / "audio first.mov"
    ffmpeg("-f", "lavfi", "-i", "sine=d=1", "-f", "lavfi", "-i", f"testsrc2=s=320x240:r={FPS}:d=1",
           "-map", "0:a", "-map", "1:v", "-c:v", "libx264", "-c:a", "aac", str(mov))  # fmt: skip

    def frames(path: Path) -> tuple[list[bytes], list[bytes]]:
        plan = decode.Plan.for_video(decode.probe(path))
        small: list[bytes] = []
        sample: list[bytes] = []
        decode.decode(
            path, plan, lambda i, f: small.append(f.i420().tobytes()), lambda k, f: sample.append(f.i420().tobytes())
        )
        return small, sample

    for path in (tagged["bt709-full"], mov):
        fast = frames(path)
        monkeypatch.setattr(decode, "OPEN_PROBED", ())
        assert fast == frames(path) and len(fast[0]) == FPS and len(fast[1]) >= 2
        monkeypatch.undo()
