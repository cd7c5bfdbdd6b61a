"""Probing and transcoding with the ffmpeg binary from the imageio-ffmpeg wheel, on clips made at test time."""

import subprocess

import pytest

from cliplake.media import MediaError, Unreadable, ffmpeg_exe, probe, transcode_to_h264


def make_clip(path, codec_args, seconds=1, size="160x120"):
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=10:duration={seconds}",
         *codec_args, str(path)],
        check=True,
    )  # fmt: skip
    return path


def test_h264_mp4_is_ready_as_is(tmp_path):
    p = probe(make_clip(tmp_path / "a.mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p"]))
    assert p.rekognition_ready
    assert (p.codec, p.width, p.height) == ("h264", 160, 120)
    assert p.duration_s == pytest.approx(1.0, abs=0.15)


def test_vp9_webm_is_transcoded_to_h264(tmp_path):
    src = make_clip(tmp_path / "a b+é.webm", ["-c:v", "libvpx-vp9", "-b:v", "200k"], size="161x121")
    p = probe(src)
    assert p.codec == "vp9" and not p.rekognition_ready
    out = transcode_to_h264(src, tmp_path / "out.mp4")
    assert out.rekognition_ready and (out.width, out.height) == (160, 120)  # even dimensions


def test_corrupt_and_non_video_files_get_readable_reasons(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("just some notes, no video here\n" * 50)
    with pytest.raises(MediaError, match="not a video"):
        probe(text)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(MediaError, match="not a readable media file"):
        probe(garbage)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match="empty file"):
        probe(empty)
    good = make_clip(tmp_path / "good.mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p"])
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[:400])
    with pytest.raises(MediaError):
        probe(truncated)


def test_audio_only_file_has_no_video_stream(tmp_path):
    wav = tmp_path / "tone.wav"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine=duration=0.5", str(wav)], check=True)
    with pytest.raises(MediaError, match="no video stream"):
        probe(wav)


def test_a_failed_read_over_a_url_is_unreadable_and_keeps_the_signature_out_of_the_reason():
    url = "http://127.0.0.1:9/media/clip.mp4?X-Amz-Signature=0123secret"  # port 9: nothing listens
    with pytest.raises(Unreadable, match="not a readable media file") as err:
        probe(url, size=1000)
    assert "secret" not in str(err.value) and "127.0.0.1" not in str(err.value)
    with pytest.raises(ValueError, match="size"):
        probe(url)
    with pytest.raises(MediaError, match="at most 10 GB"):
        probe(url, size=11 * 1024**3)  # decided before any read
