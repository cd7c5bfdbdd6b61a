"""Helpers of the batch tests: a local server answering in the Wikimedia and Pixabay API shapes (built from the
recorded fixtures in tests/fixtures/sources/) with download URLs to real clips it serves itself, tiny clips made
with ffmpeg, and a way to run a batch to its end."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from httpkit import LocalServer, QuietHandler

from cliplake.media import ffmpeg_exe

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "sources"


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], check=True)


def tiny_clips(directory: Path, n: int, seconds: float = 1.0, size: str = "160x120") -> list[Path]:
    """`n` distinct H.264 clips (same picture, a different title in the container: distinct SHA-1s)."""
    directory.mkdir(parents=True, exist_ok=True)
    base = directory / "base.mp4"
    ffmpeg("-f", "lavfi", "-t", str(seconds), "-i", f"testsrc2=size={size}:rate=10", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(base))  # fmt: skip
    clips = []
    for i in range(n):
        path = directory / f"clip_{i:02d}_{uuid.uuid4().hex[:6]}.mp4"
        ffmpeg("-i", str(base), "-c", "copy", "-metadata", f"title=clip {i} {path.stem}", str(path))
        clips.append(path)
    base.unlink()
    return clips


def sha1_of(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


class SourcesServer:
    """127.0.0.1 server: `/w/api.php` (Commons search), `/api/videos/` (Pixabay), `/files/<name>` (bytes)."""

    def __init__(self, files_dir: Path) -> None:
        self.files_dir = files_dir
        self.wiki_pages: list[dict[str, Any]] = []
        self.pixabay_hits: list[dict[str, Any]] = []
        self.requests: list[str] = []
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                path = urlparse(self.path).path
                if path == "/w/api.php":
                    body: Any = {"batchcomplete": True}
                    if server.wiki_pages:
                        body["query"] = {"pages": server.wiki_pages}
                    return self._json(body)
                if path == "/api/videos/":
                    hits = server.pixabay_hits
                    return self._json({"total": len(hits), "totalHits": len(hits), "hits": hits},
                                      {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "99",
                                       "X-RateLimit-Reset": "60"})  # fmt: skip
                if path.startswith("/files/"):
                    f = server.files_dir / path.removeprefix("/files/")
                    if f.is_file():
                        return self._send(200, f.read_bytes(), {"Content-Type": "video/mp4"})
                return self._send(404, b"not found")

        self._server = LocalServer(Handler)
        self.url = self._server.url

    def close(self) -> None:
        self._server.close()

    # --- results in the APIs' shapes, from the recorded fixtures
    def wiki_page(self, clip: Path, pageid: int, served_as: str | None = None) -> dict[str, Any]:
        recorded = json.loads((FIXTURES / "wikimedia" / "search_page1.json").read_text())
        page = copy.deepcopy(next(p for p in recorded["body"]["query"]["pages"] if p["pageid"] == 104523871))
        name = served_as or clip.name
        page.update(pageid=pageid, title=f"File:{name}", index=1)
        info = page["videoinfo"][0]
        info.update(url=f"{self.url}/files/{name}", size=clip.stat().st_size, sha1=sha1_of(clip), width=160,
                    height=120, duration=1.0, mime="video/mp4", derivatives=[],
                    descriptionurl=f"https://commons.wikimedia.org/wiki/File:{name}")  # fmt: skip
        info["extmetadata"]["ObjectName"] = {"value": f"Test clip {pageid}", "source": "commons-desc-page"}
        return page

    def pixabay_hit(self, clip: Path, hit_id: int, served_as: str | None = None) -> dict[str, Any]:
        recorded = json.loads((FIXTURES / "pixabay" / "videos_page1.json").read_text())
        hit = copy.deepcopy(recorded["body"]["hits"][0])
        name = served_as or clip.name
        rendition = {"url": f"{self.url}/files/{name}", "width": 160, "height": 120,
                     "size": clip.stat().st_size, "thumbnail": ""}  # fmt: skip
        hit.update(id=hit_id, duration=1, tags=f"test clip {hit_id}", pageURL=f"https://pixabay.com/videos/t-{hit_id}/")
        hit["videos"] = {"large": {"url": "", "width": 0, "height": 0, "size": 0, "thumbnail": ""},
                         "medium": dict(rendition), "small": dict(rendition), "tiny": dict(rendition)}  # fmt: skip
        return hit


def states_role(cloud: Any, name: str, queue_urls: list[str], topic_arn: str = "") -> str:
    """A role Step Functions may assume (IAM is enforced), allowed to send to `queue_urls` and publish to
    `topic_arn`: what a test's own state machine needs to run its tasks against scratch queues."""
    sqs, iam = cloud.client("sqs"), cloud.client("iam")
    arns = [
        sqs.get_queue_attributes(QueueUrl=u, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"] for u in queue_urls
    ]
    statements = [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": arns}]
    if topic_arn:
        statements.append({"Effect": "Allow", "Action": "sns:Publish", "Resource": topic_arn})
    trust = {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17",
                           "Statement": [trust]}))["Role"]["Arn"]  # fmt: skip
    policy = {"Version": "2012-10-17", "Statement": statements}
    iam.put_role_policy(RoleName=name, PolicyName="tasks", PolicyDocument=json.dumps(policy))
    return role


def wait_execution(sfn: Any, arn: str, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] != "RUNNING":
            return d
        if time.monotonic() > deadline:
            raise TimeoutError(f"{arn} still running after {timeout_s} s")
        time.sleep(0.2)


def history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    events, kwargs = [], {"executionArn": arn, "maxResults": 1000}
    while True:
        r = sfn.get_execution_history(**kwargs)
        events += r["events"]
        if not r.get("nextToken"):
            return events
        kwargs["nextToken"] = r["nextToken"]


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end and a start at the same instant do not overlap)."""
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda p: (p[0], p[1]))
    best = cur = 0
    for _, delta in points:
        cur += delta
        best = max(best, cur)
    return best
