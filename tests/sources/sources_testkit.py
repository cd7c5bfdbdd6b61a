"""Helpers shared by the source tests (kept out of conftest.py so test modules can import them)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import responses
from httpkit import LocalServer, QuietHandler

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "sources"
ASSETS = Path(os.environ.get("CLIPLAKE_ASSETS_DIR", REPO / ".cache" / "assets"))
SAMPLE_MP4 = ASSETS / "samples" / "big_buck_bunny.mp4"
BLOCK = hashlib.sha256(b"cliplake").digest() * (1024 * 1024 // 32)  # 1 MiB, deterministic
REGION = "us-east-1"
WIKI_API = "https://commons.wikimedia.org/w/api.php"
PIXABAY_API = "https://pixabay.com/api/videos/"


# ------------------------------------------------------------------------------------------ recorded responses
def recorded(name: str) -> dict[str, Any]:
    """A recorded response: {"request": {...}, "status": int, "headers": {...}, "body": JSON or text}."""
    return json.loads((FIXTURES / name).read_text())


def as_response(rec: dict[str, Any]) -> tuple[int, dict[str, str], str]:
    """(status, headers, body) for a `responses` callback."""
    body = rec["body"]
    text = body if isinstance(body, str) else json.dumps(body)
    headers = {k: v for k, v in rec["headers"].items() if k.lower() != "content-type"}
    headers["Content-Type"] = rec["headers"].get("Content-Type", "application/json")
    return rec["status"], headers, text


def add_recorded(rsps: responses.RequestsMock, url: str, name: str) -> None:
    """Queue one recorded response for `url` (responses replays same-URL registrations in order)."""
    status, headers, text = as_response(recorded(name))
    content_type = headers.pop("Content-Type")
    rsps.add(responses.GET, url, body=text, status=status, headers=headers, content_type=content_type)


def query_of(call: responses.Call) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(call.request.url).query).items()}


class SleepRecorder:
    """An injected `sleep`: records the waits instead of waiting, and advances a fake clock."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.now = 1000.0

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


# ------------------------------------------------------------------------------------------- local media server
class MediaServer:
    """A `http.server` on 127.0.0.1 serving real media files, generated streams and misbehaving endpoints.

    /files/<name>[?fail=N]     a file from the samples dir (the first N requests per URL answer 503, Retry-After: 1)
    /named/<name>/<alias>      file <name> served under another file name (distinct videos, same bytes)
    /gen/<bytes>               <bytes> generated on the fly from a 1 MiB block (never held in memory whole)
    /truncate/<name>           announces the full Content-Length, sends half, closes
    /json/<fixture path>       a recorded API response (status, headers, body) from tests/fixtures/sources
    anything else              404
    """

    def __init__(self, files_dir: Path) -> None:
        self.files_dir = files_dir
        self.hits: Counter[str] = Counter()
        self.paths: list[str] = []
        server = self

        class Handler(QuietHandler):
            def handle(self) -> None:
                with contextlib.suppress(ConnectionResetError, BrokenPipeError):  # clients hanging up on purpose
                    super().handle()

            def do_GET(self) -> None:
                server.hits[self.path] += 1
                server.paths.append(self.path)
                url = urlparse(self.path)
                qs = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path.startswith("/files/"):
                    path = server.files_dir / url.path.removeprefix("/files/")
                    if server.hits[self.path] <= int(qs.get("fail", 0)):
                        return self._send(503, b"busy", {"Retry-After": "1"})
                    if not path.is_file():
                        return self._send(404, b"not found")
                    return self._send(200, path.read_bytes(), {"Content-Type": "video/mp4"})
                if url.path.startswith("/named/"):
                    real = url.path.removeprefix("/named/").split("/", 1)[0]
                    return self._send(200, (server.files_dir / real).read_bytes(), {"Content-Type": "video/mp4"})
                if url.path.startswith("/gen/"):
                    return self._stream(int(url.path.removeprefix("/gen/")))
                if url.path.startswith("/truncate/"):
                    data = (server.files_dir / url.path.removeprefix("/truncate/")).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return None
                if url.path.startswith("/json/"):
                    status, headers, text = as_response(recorded(url.path.removeprefix("/json/")))
                    return self._send(status, text.encode(), headers)
                return self._send(404, b"not found")

            def _stream(self, size: int) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(size))
                self.end_headers()
                view = memoryview(BLOCK)
                left = size
                try:
                    while left > 0:
                        n = min(left, len(BLOCK))
                        self.wfile.write(view[:n])
                        left -= n
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._server = LocalServer(Handler)
        self.url = self._server.url

    def close(self) -> None:
        self._server.close()


def generated_sha1(size: int) -> str:
    """The SHA-1 of what /gen/<size> serves, computed block by block."""
    digest, left = hashlib.sha1(), size
    while left > 0:
        n = min(left, len(BLOCK))
        digest.update(BLOCK[:n])
        left -= n
    return digest.hexdigest()
