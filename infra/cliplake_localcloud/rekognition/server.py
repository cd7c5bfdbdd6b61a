"""A Rekognition Video compatible endpoint (AWS JSON 1.1) backed by the local analysis engine.

    srv = RekognitionServer(host="127.0.0.1", port=0, region="us-east-1", max_concurrent_jobs=20,
                            workers=1, engine=None)
    srv.start(); srv.url      # point AWS_ENDPOINT_URL_REKOGNITION here
    srv.busy()                # a job queued or running
    srv.stop()

Start* validates the request against botocore's model, honours ``ClientRequestToken`` idempotency (same
token → same JobId, no new notification; other parameters → IdempotentParameterMismatchException) and the
concurrent-job limit (LimitExceededException). Jobs run on a small worker pool: fetch the object from S3
(boto3, ``AWS_ENDPOINT_URL``), analyse it (one shared analysis per bucket/key/ETag), then publish the standard
completion message to the job's SNS topic.
"""

from __future__ import annotations

import base64
import json
import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import boto3

from . import lazy
from .apis import GET, START
from .validate import ApiError, invalid, validate

if TYPE_CHECKING:
    from . import decode, results
    from .engine import Analysis, Engine
else:  # imported by the first analysis (numpy, OpenCV, onnxruntime...), not when the endpoint starts
    decode, results = lazy(f"{__package__}.decode"), lazy(f"{__package__}.results")

log = logging.getLogger(__name__)

MAX_BYTES = 10 * 1024**3


@dataclass
class Job:
    job_id: str
    api: str
    request: dict
    status: str = "IN_PROGRESS"
    message: str | None = None
    analysis: Analysis | None = None
    created: float = field(default_factory=time.time)

    @property
    def video(self) -> dict:
        return self.request["Video"]

    @property
    def s3(self) -> dict:
        return self.video["S3Object"]


class AnalysisCache:
    """One analysis per S3 object version: later jobs wait on the first job's future."""

    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._futures: dict[tuple[str, str, str], Future] = {}

    def get(self, key: tuple[str, str, str], compute) -> Analysis:
        with self._lock:
            fut = self._futures.get(key)
            owner = fut is None
            if owner:
                fut = self._futures[key] = Future()
        if owner:
            try:
                fut.set_result(compute())
            except BaseException as exc:
                fut.set_exception(exc)
                with self._lock:  # let a later job retry a failure
                    self._futures.pop(key, None)
            with self._lock:  # keep the most recent analyses only (dicts keep insertion order)
                while len(self._futures) > self.max_entries:
                    self._futures.pop(next(iter(self._futures)))
        return fut.result()


class RekognitionServer:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "us-east-1",
        max_concurrent_jobs: int = 20,
        workers: int = 1,
        engine: Engine | None = None,
        role_client: Callable[[str, str, str], object] | None = None,
    ) -> None:
        self.host, self.port, self.region = host, port, region
        # As Rekognition does: the completion is published with the credentials of the job's NotificationChannel
        # RoleArn, assumed by the service ((role ARN, service, region) -> a client of it; None: this process's own).
        self.role_client = role_client
        self.max_concurrent_jobs = max_concurrent_jobs
        self._engine = engine
        self._engine_lock = threading.Lock()
        self._workers = workers
        self._jobs: dict[str, Job] = {}
        self._tokens: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self._cache = AnalysisCache()
        self._clients: dict[tuple[str, str], object] = {}
        self._clients_lock = threading.Lock()
        self._active = 0  # jobs submitted and not yet notified
        self._pool: ThreadPoolExecutor | None = None
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def engine(self) -> Engine:
        """The analysis engine, made (and its libraries imported) by the first job that needs it."""
        with self._engine_lock:
            if self._engine is None:
                from .engine import Engine

                self._engine = Engine()
            return self._engine

    # ------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> RekognitionServer:
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="rekognition-job")
        self._httpd = ThreadingHTTPServer((self.host, self.port), _handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="rekognition-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def job_count(self) -> int:
        """How many jobs were ever started (a reused ClientRequestToken starts none)."""
        with self._lock:
            return len(self._jobs)

    def busy(self) -> bool:
        """True while a job is queued, running, or has not yet published its completion message."""
        with self._lock:
            return self._active > 0

    # ------------------------------------------------------------ dispatch
    def handle(self, target: str, params: dict) -> dict:
        operation = target.rpartition(".")[2]
        if operation in START:
            return self.start_job(operation, validate(operation, params))
        if operation in GET:
            return self.get_results(operation, validate(operation, params))
        raise ApiError("UnknownOperationException", f"Unknown operation {target}")

    def _client(self, service: str, region: str | None = None):
        """boto3 clients, created once under a lock (creation is not thread-safe; use is)."""
        key = (service, region or self.region)
        with self._clients_lock:
            if key not in self._clients:
                self._clients[key] = boto3.session.Session().client(service, region_name=key[1])
            return self._clients[key]

    def start_job(self, api: str, request: dict) -> dict:
        obj = request["Video"].get("S3Object") or {}
        if not obj.get("Bucket") or not obj.get("Name"):
            raise invalid("Video.S3Object.Bucket and Video.S3Object.Name are required")
        if "MinConfidence" in request:
            request["MinConfidence"] = float(request["MinConfidence"])
        token = request.get("ClientRequestToken")
        with self._lock:
            if token and (api, token) in self._tokens:
                job = self._jobs[self._tokens[(api, token)]]
                if job.request != request:
                    raise ApiError(
                        "IdempotentParameterMismatchException",
                        "ClientRequestToken was used with different parameters",
                    )
                return {"JobId": job.job_id}
        self._check_object(request["Video"]["S3Object"])
        with self._lock:
            if token and (api, token) in self._tokens:  # raced with an identical request
                return {"JobId": self._tokens[(api, token)]}
            running = sum(1 for j in self._jobs.values() if j.status == "IN_PROGRESS")
            if running >= self.max_concurrent_jobs:
                raise ApiError(
                    "LimitExceededException",
                    f"The number of concurrent jobs ({self.max_concurrent_jobs}) has been exceeded",
                )
            job = Job(uuid.uuid4().hex + uuid.uuid4().hex[:32], api, request)
            self._jobs[job.job_id] = job
            self._active += 1
            if token:
                self._tokens[(api, token)] = job.job_id
        assert self._pool is not None, "server not started"
        self._pool.submit(self._run, job)
        return {"JobId": job.job_id}

    def _check_object(self, obj: dict) -> None:
        s3 = self._client("s3")
        kwargs = {"Bucket": obj["Bucket"], "Key": obj["Name"]}
        if obj.get("Version"):
            kwargs["VersionId"] = obj["Version"]
        try:
            head = s3.head_object(**kwargs)
        except Exception as exc:
            raise ApiError("InvalidS3ObjectException", f"Unable to get object metadata from S3: {exc}") from exc
        if head.get("ContentLength", 0) > MAX_BYTES:
            raise ApiError("VideoTooLargeException", "The video exceeds the 10 GB limit")

    # ------------------------------------------------------------ job execution
    def _run(self, job: Job) -> None:
        try:
            try:
                job.analysis = self._analyse(job.s3)
                job.status = "SUCCEEDED"
            except decode.UnsupportedVideo as exc:
                job.status, job.message = "FAILED", str(exc)
            except Exception as exc:
                log.exception("job %s failed", job.job_id)
                job.status, job.message = "FAILED", f"Internal error: {exc}"
            self._notify(job)
        finally:
            with self._lock:
                self._active -= 1

    def _analyse(self, obj: dict) -> Analysis:
        s3 = self._client("s3")
        kwargs = {"Bucket": obj["Bucket"], "Key": obj["Name"]}
        if obj.get("Version"):
            kwargs["VersionId"] = obj["Version"]
        head = s3.head_object(**kwargs)
        key = (obj["Bucket"], obj["Name"], head.get("ETag", "") + obj.get("Version", ""))

        def compute() -> Analysis:
            with tempfile.TemporaryDirectory(prefix="rekognition-") as tmp:
                path = Path(tmp) / "video"
                body = s3.get_object(**kwargs)["Body"]
                with path.open("wb") as f:
                    for chunk in iter(lambda: body.read(1 << 20), b""):
                        f.write(chunk)
                return self.engine.analyse(path)

        return self._cache.get(key, compute)

    def _notify(self, job: Job) -> None:
        channel = job.request.get("NotificationChannel")
        if not channel:
            return
        message = {
            "JobId": job.job_id,
            "Status": job.status,
            "API": job.api,
            **({"JobTag": job.request["JobTag"]} if "JobTag" in job.request else {}),
            "Timestamp": int(time.time() * 1000),
            "Video": {"S3ObjectName": job.s3["Name"], "S3Bucket": job.s3["Bucket"]},
            **({"Message": job.message} if job.status != "SUCCEEDED" and job.message else {}),
        }
        arn = channel["SNSTopicArn"]
        try:
            region = arn.split(":")[3] or self.region
            if self.role_client is None:
                sns = self._client("sns", region)
            else:  # a role Rekognition cannot assume, or one that may not publish, loses the notification
                sns = self.role_client(channel.get("RoleArn", ""), "sns", region)
            sns.publish(TopicArn=arn, Message=json.dumps(message))
        except Exception:
            log.exception("could not publish the completion of job %s to %s", job.job_id, arn)

    # ------------------------------------------------------------ results
    def _analysis_of(self, job: Job) -> Analysis | None:
        return job.analysis

    def get_results(self, operation: str, request: dict) -> dict:
        with self._lock:
            job = self._jobs.get(request["JobId"])
        if job is None or job.api != GET[operation].start:
            raise ApiError("ResourceNotFoundException", f"Job {request['JobId']} not found")
        a = self._analysis_of(job)
        out: dict = {"JobStatus": job.status, "JobId": job.job_id, "Video": job.video}
        if "JobTag" in job.request:
            out["JobTag"] = job.request["JobTag"]
        if job.message:
            out["StatusMessage"] = job.message
        api = GET[operation]
        out |= api.header(self.engine, job.request, request, a)
        items = api.items(a, self.engine, job.request, request) if a is not None else []
        if a is not None:
            meta = results.video_metadata(a)
            out["VideoMetadata"] = [meta] if api.metadata_list else meta
        page, token = _page(items, request, job.job_id)
        out[api.key] = page
        if token:
            out["NextToken"] = token
        return out


def _page(items: list, request: dict, job_id: str) -> tuple[list, str | None]:
    size = min(request.get("MaxResults", 1000), 1000)
    offset = 0
    if request.get("NextToken"):
        try:
            data = json.loads(base64.urlsafe_b64decode(request["NextToken"].encode()))
            offset = int(data["o"])
            if data["j"] != job_id:
                raise ValueError("token of another job")
        except Exception as exc:
            raise ApiError("InvalidPaginationTokenException", "Invalid pagination token") from exc
    page = items[offset : offset + size]
    if offset + size < len(items):
        token = base64.urlsafe_b64encode(json.dumps({"o": offset + size, "j": job_id}).encode()).decode()
        return page, token
    return page, None


def _handler(server: RekognitionServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args) -> None:
            log.debug("rekognition %s", format % args)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            target = self.headers.get("X-Amz-Target", "")
            try:
                try:
                    params = json.loads(raw or b"{}")
                except ValueError as exc:
                    raise invalid("Request body is not valid JSON") from exc
                if not target.startswith("RekognitionService."):
                    raise ApiError("UnknownOperationException", f"Unknown target {target!r}")
                status, body = 200, server.handle(target, params)
            except ApiError as exc:
                status, body = exc.status, {"__type": exc.code, "message": exc.message, "Message": exc.message}
            except Exception as exc:
                log.exception("rekognition internal error")
                status, body = 500, {"__type": "InternalServerError", "message": str(exc)}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
            self.end_headers()
            self.wfile.write(data)

    return Handler
