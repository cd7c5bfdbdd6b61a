"""Fixtures for the local Rekognition endpoint: synthetic clips, the shared engine, moto + the endpoint."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import boto3
import imageio_ffmpeg
import pytest

from cliplake_cli.assets import assets_dir
from cliplake_localcloud.rekognition import prepare, samples
from cliplake_localcloud.rekognition.engine import Engine
from cliplake_localcloud.rekognition.server import RekognitionServer

FPS = 25
SEG = 25  # frames per synthetic segment: hard cuts at 25, 50, 75, 100
CUTS = [25, 50, 75, 100]
BLACK = (50, 74)  # the third segment is black
REGION = "us-east-1"
CAPTION = "Harbour Lights Festival"


def ffmpeg(*args: str) -> None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


H264 = ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-movflags", "+faststart"]


@pytest.fixture(scope="session")
def assets() -> Path:
    root = assets_dir()
    if not (root / "imagenet/synsets.txt").exists():
        pytest.skip("set-up assets missing: run `python -m cliplake_cli.assets`")
    prepare.prepare_models(root)  # a no-op once `python -m cliplake_cli.assets` has run
    return root


@pytest.fixture(scope="session")
def videos(tmp_path_factory, assets) -> dict[str, Path]:
    """Synthetic clips with known content, built once per session."""
    d = tmp_path_factory.mktemp("clips")
    size = "320x240"
    sources = [
        f"testsrc2=size={size}:rate={FPS}",
        f"smptebars=size={size}:rate={FPS}",
        f"color=c=black:size={size}:rate={FPS}",
        f"mandelbrot=size={size}:rate={FPS}",
        f"rgbtestsrc=size={size}:rate={FPS}",
    ]
    inputs = []
    for src in sources:
        inputs += ["-f", "lavfi", "-t", f"{SEG / FPS}", "-i", src]
    concat = "".join(f"[{i}:v]" for i in range(len(sources))) + f"concat=n={len(sources)}:v=1:a=0[v]"
    out = {"cuts": d / "cuts.mp4"}
    ffmpeg(*inputs, "-filter_complex", concat, "-map", "[v]", "-r", str(FPS), *H264, str(out["cuts"]))
    for photo in ("chelsea", "coffee"):
        out[photo] = d / f"{photo}.mp4"
        ffmpeg(
            "-loop", "1", "-i", str(assets / f"photos/{photo}.png"), "-f", "lavfi", "-i", "sine=frequency=440",
            "-t", "2", "-r", str(FPS), "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2", *H264,
            "-c:a", "aac", "-ar", "44100", "-ac", "1", str(out[photo]),
        )  # fmt: skip
    out["caption"] = d / "caption.mp4"  # 4 s of the coffee photo at 720p, a caption burned in from 1.0 to 3.0 s
    font = assets / "fonts/DejaVuSans.ttf"
    ffmpeg(
        "-loop", "1", "-i", str(assets / "photos/coffee.png"), "-t", "4", "-r", str(FPS),
        "-vf", f"scale=1280:720,drawtext=fontfile={font}:text='{CAPTION}':fontsize=56:fontcolor=white:"
        "box=1:boxcolor=black@0.6:boxborderw=12:x=(w-tw)/2:y=h-140:enable='between(t,1,3)'",
        *H264, str(out["caption"]),
    )  # fmt: skip
    out["vp9"] = d / "clip.webm"
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate={FPS}", "-t", "1",
        "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", str(out["vp9"]),
    )  # fmt: skip
    return out


@pytest.fixture(scope="session")
def people_clip(tmp_path_factory, assets) -> Path:
    """The first 12 s of OpenCV's vtest.avi (pedestrians), fetched from Debian's opencv-doc."""
    try:
        full = samples.ensure_pedestrians(assets)
    except Exception as exc:  # apt or dpkg unavailable
        pytest.skip(f"opencv-doc (vtest.avi) could not be fetched with apt-get: {exc}")
    if full is None:
        pytest.skip("opencv-doc (vtest.avi) could not be fetched with apt-get download")
    out = tmp_path_factory.mktemp("people") / "people.mp4"
    ffmpeg("-i", str(full), "-t", "12", *H264, str(out))
    return out


@pytest.fixture(scope="session")
def engine(assets) -> Engine:
    return Engine(assets)


@pytest.fixture(scope="session")
def analyse(engine):
    """Memoised ``engine.analyse`` so each clip is analysed once per session."""
    done: dict[Path, object] = {}

    def run(path: Path):
        if path not in done:
            done[path] = engine.analyse(path)
        return done[path]

    return run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="package")
def moto_env():
    """A moto server on 127.0.0.1 reached through AWS_ENDPOINT_URL, as in the local cloud.

    Package-scoped, and the environment is restored afterwards, so other test folders are unaffected.
    """
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }.items():
            mp.setenv(name, value)
        mp.delenv("AWS_PROFILE", raising=False)
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
        yield mp
    server.stop()


class Inbox:
    """The SQS queue subscribed to the Rekognition SNS topic; remembers every completion message."""

    def __init__(self, sqs, queue_url: str) -> None:
        self.sqs, self.queue_url = sqs, queue_url
        self.messages: list[dict] = []

    def drain(self, wait: int = 1) -> None:
        resp = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
        for m in resp.get("Messages", []):
            self.messages.append(json.loads(json.loads(m["Body"])["Message"]))
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])

    def for_job(self, job_id: str) -> list[dict]:
        return [m for m in self.messages if m["JobId"] == job_id]

    def wait_for(self, job_id: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.for_job(job_id)
            if found:
                return found[0]
            self.drain()
        raise AssertionError(f"no completion message for job {job_id}")


@pytest.fixture(scope="package")
def aws(moto_env, videos):
    """Bucket with the clips, SNS topic → SQS queue, and the clients the tests use."""
    s3 = boto3.client("s3", region_name=REGION)
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    s3.create_bucket(Bucket="media")
    for path in videos.values():
        s3.upload_file(str(path), "media", f"media-raw/video/dropin/test/{path.name}")
    topic = sns.create_topic(Name="AmazonRekognition-done")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="rekognition-done")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    return {
        "s3": s3,
        "bucket": "media",
        "keys": {n: f"media-raw/video/dropin/test/{p.name}" for n, p in videos.items()},
        "channel": {"SNSTopicArn": topic, "RoleArn": "arn:aws:iam::123456789012:role/rekognition-sns"},
        "inbox": Inbox(sqs, queue_url),
    }


@pytest.fixture(scope="package")
def rekognition(moto_env, aws, engine):
    srv = RekognitionServer(host="127.0.0.1", port=0, region=REGION, max_concurrent_jobs=20, workers=2, engine=engine)
    srv.start()
    moto_env.setenv("AWS_ENDPOINT_URL_REKOGNITION", srv.url)
    client = boto3.client("rekognition", region_name=REGION)
    yield client
    srv.stop()
