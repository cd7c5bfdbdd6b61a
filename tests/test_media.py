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


def test_https_reads_verify_the_certificate_against_certifi():
    import certifi

    from cliplake.media import _input_options

    options = _input_options("https://bucket.s3.eu-west-1.amazonaws.com/a.mp4?X-Amz-Signature=x")
    assert options[options.index("-tls_verify") + 1] == "1"
    assert options[options.index("-ca_file") + 1] == certifi.where()
    assert "-rw_timeout" in _input_options("http://127.0.0.1:9/a.mp4") and _input_options("/tmp/a.mp4") == []


@pytest.fixture
def https_server(tmp_path):
    """An HTTPS server on 127.0.0.1 with a self-signed certificate, serving `tmp_path`; yields (base URL, cert)."""
    import datetime
    import http.server
    import ipaddress
    import ssl
    import threading

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_pem, key_pem = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: Quiet(*a, directory=str(tmp_path)))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_pem, key_pem)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}", cert_pem
    server.shutdown()


def test_https_probe_refuses_an_untrusted_certificate_and_reads_a_trusted_one(https_server, tmp_path, monkeypatch):
    import certifi

    base, cert = https_server
    clip = make_clip(tmp_path / "clip.mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart"])
    url, size = f"{base}/clip.mp4?X-Amz-Signature=secret", clip.stat().st_size
    with pytest.raises(Unreadable) as err:  # self-signed: not in certifi's bundle
        probe(url, size=size)
    assert "secret" not in str(err.value)
    monkeypatch.setattr(certifi, "where", lambda: str(cert))
    assert probe(url, size=size).codec == "h264"


def test_a_transcode_over_the_time_limit_is_a_media_error_not_a_retry(tmp_path):
    """subprocess.TimeoutExpired would fail the message until the DLQ; the video is marked FAILED instead."""
    src = tmp_path / "long.webm"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-t", "4", "-i", "testsrc2=size=640x480:rate=25",
                    "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", str(src)], check=True)  # fmt: skip
    with pytest.raises(MediaError, match=r"did not finish within 0 s"):
        transcode_to_h264(src, tmp_path / "out.mp4", timeout_s=0.01)
