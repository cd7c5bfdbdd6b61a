"""The embedded local cloud: moto server + the stack from `infra/template.yaml` + dispatcher + Rekognition.

Everything listens on 127.0.0.1 and runs in this process (threads). The stack is deployed the way
`sam deploy` does it (transform, upload the code, create_stack); then the few things moto's CloudFormation
skips are applied from the same transformed template (see `_WIRING`), and the dispatcher plays the part of
the SQS event source mappings, which are removed before create_stack because moto would consume the queues.

    with LocalCloud() as cloud:
        boto3.client("s3").put_object(Bucket=cloud.outputs["MediaBucketName"], Key="media-raw/...", Body=b"...")
        cloud.wait_idle()
"""

from __future__ import annotations

import contextlib
import copy
import gc
import hashlib
import io
import json
import logging
import os
import socket
import sys
import threading
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from cliplake.adapters.catalog import batch_key
from cliplake.adapters.s3 import S3_CONFIG
from cliplake.services import new_session
from cliplake_localcloud import environ, iam_resources, task_tokens
from cliplake_localcloud.dispatcher import (
    Backoff,
    Dispatcher,
    FunctionSpec,
    Handler,
    functions_from_template,
    mappings_from_template,
)
from cliplake_localcloud.identity import Enforcement, ServiceRoles, step_functions_under_their_role
from cliplake_localcloud.lakewiring import LAKE_WIRING
from cliplake_localcloud.persistence import MotoServer, Persistence, Restored
from cliplake_localcloud.scheduler import LocalSchedule, LocalScheduler
from cliplake_localcloud.template import Resolver, load_template, resources_of_type, transform

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
REGION = "us-east-1"
FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
_SKIP_IN_ZIP = ("__pycache__", ".egg-info", ".pyc", ".pytest_cache")
MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
# The functions' structured logs and metrics are meant for CloudWatch; a demo or a benchmark prints its own.
QUIET_FUNCTIONS_ENV = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
# Only until the administrator exists: under enforcement moto refuses these keys like any unknown key.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
LAMBDA = "lambda.amazonaws.com"
# The GIL's switch interval while a cloud runs (Python's default: 5 ms). The whole cloud is one process: every
# request hands the GIL from the calling function's thread to a server thread and back, each hand-off waiting for
# a thread that computes (an analysis, a checkpoint) to give it up. Measured with `make bench`'s per-hop latency:
# put -> analysis started p95 0.37 -> 0.27 s, completion -> summary 0.33 -> 0.26 s, the analyses no slower.
SWITCH_INTERVAL_S = 0.001


def free_port(host: str = HOST, port: int = 0) -> int:
    """`port` if it can be bound (OSError otherwise), or any free port when 0."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no obstacle
        s.bind((host, port))
        return s.getsockname()[1]


def zip_functions(root: Path = FUNCTIONS_DIR) -> bytes:
    """The deployment package of `functions/` (sources only; dependencies come from the environment)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root).as_posix()
            if path.is_file() and not any(s in rel for s in _SKIP_IN_ZIP):
                zf.write(path, rel)
    return buf.getvalue()


class LocalCloud:
    """moto server + the deployed stack + the dispatcher + the Rekognition-compatible endpoint.

    `start()` exports `env` into `os.environ` (and `stop()` restores it): boto3 and powertools in this
    process reach the local cloud through `AWS_ENDPOINT_URL[_REKOGNITION]`, signing as the administrator whose keys
    `env` carries (IAM is enforced: `enforce_iam=False` turns it off, for comparisons). Each function's handler
    runs with its own environment: its template variables and the credentials of its execution role.
    `handlers` overrides functions' handlers by logical id (see `Dispatcher`); `backoff` sets the
    visibility timeout given to failed messages.
    """

    _active: LocalCloud | None = None
    _lock = threading.Lock()

    def __init__(
        self,
        port: int = 0,
        rekognition_port: int = 0,
        start_dispatcher: bool = True,
        template_path: str | Path | None = None,
        *,
        handlers: dict[str, Handler] | None = None,
        backoff: Backoff | None = None,
        stack_name: str = "cliplake",
        parameters: dict[str, str] | None = None,
        function_env: dict[str, str] | None = None,
        enforce_iam: bool = True,
        data_dir: str | Path | None = None,
    ) -> None:
        self.port = port
        # A durable cloud (data_dir) enforces IAM too: its journal is replayed before enforcement is switched on
        # (each request was authorised when it was first made), and the restored administrator keeps its key.
        self.enforce_iam = enforce_iam
        self.data_dir = Path(data_dir) if data_dir else None  # durable state (see persistence.py); None: in memory
        self.persistence: Persistence | None = None
        self.restored: Restored | None = None
        self.aborted_batches: list[dict[str, str]] = []
        self.function_env = function_env or {}  # overrides of the functions' variables, like `sam local --env-vars`
        self.rekognition_port = rekognition_port
        self.start_dispatcher = start_dispatcher
        self.template_path = Path(template_path) if template_path else None
        self.handlers = handlers
        self.backoff = backoff
        self.stack_name = stack_name
        self.parameters = parameters or {}
        self.endpoint_url = ""
        self.env: dict[str, str] = {}
        self.outputs: dict[str, str] = {}
        self.template: dict[str, Any] = {}  # the deployed (transformed) CloudFormation template
        self.resolver: Resolver | None = None
        self.dispatcher: Dispatcher | None = None
        self.rekognition: Any = None
        self.scheduler: LocalScheduler | None = None
        self._moto: ThreadedMotoServer | None = None
        self._saved_env: dict[str, str | None] = {}
        self._clients: dict[str, Any] = {}
        self.roles: ServiceRoles | None = None  # roles as the services assume them (Lambda, Rekognition, ...)
        self.functions: dict[str, FunctionSpec] = {}
        self._enforcement = Enforcement()
        self._patches = contextlib.ExitStack()
        self._switch_interval = sys.getswitchinterval()

    # ---------------------------------------------------------------------------------------- lifecycle
    def start(self) -> LocalCloud:
        with LocalCloud._lock:
            if LocalCloud._active is not None:
                raise RuntimeError(
                    "one LocalCloud per process: moto's backends and os.environ are process-wide "
                    f"(one is running at {LocalCloud._active.endpoint_url})"
                )
            LocalCloud._active = self
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalCloud:
        started = time.perf_counter()
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        _share_region_lists()
        if self.data_dir:
            self.persistence = Persistence(self.data_dir)
            self.port = self.port or _previous_port(self.persistence)
            self.rekognition_port = self.rekognition_port or _previous_port(self.persistence, "rekognition_port")
        self.port = free_port(HOST, self.port)  # a busy port would hang ThreadedMotoServer.start()
        _bound_the_heap()
        _route_requests_from_memory()
        _serialise_dynamodb()
        _transactions_back_up_their_items()
        self.endpoint_url = f"http://{HOST}:{self.port}"
        self._export({**FAKE_CREDENTIALS, "MOTO_PORT": str(self.port), "AWS_ENDPOINT_URL": self.endpoint_url})
        if logging.getLogger("werkzeug").level == logging.NOTSET:  # one line per request otherwise
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        if self.persistence:  # the state is loaded (checkpoint + journal) before the server answers
            self._moto = MotoServer(HOST, self.port, self.persistence, MOTO_CONFIG).start()
            self.restored = self._moto.restored
        else:
            self._moto = ThreadedMotoServer(ip_address=HOST, port=self.port, verbose=False)
            self._moto.start()
        requests.post(f"{self.endpoint_url}/moto-api/config", json=MOTO_CONFIG, timeout=10).raise_for_status()
        task_tokens.install()  # bogus, timed-out and answered tokens answered as AWS does
        self._enforce()
        kept = self.persistence.kept_stack(self) if self.persistence else None
        if kept is None:
            self._deploy()
        self.scheduler = LocalScheduler(self.client("stepfunctions"))
        if kept is None:
            self._wire()
        else:  # the data directory's stack, unchanged: its wiring is in the restored state; only the local parts
            self._attach(kept)
        self.roles = ServiceRoles(self.resolver.account_id, REGION)
        if self.enforce_iam:
            self._patches.enter_context(step_functions_under_their_role(self.roles, self.endpoint_url))
        self.scheduler.start()
        self._start_rekognition()
        if self.persistence:
            self._resume()
        self.functions = functions_from_template(self.template, self.resolver)
        # The plumbing (CLI, dashboard, tests) reads the stack's names from the functions' common variables.
        self._export({**_shared_environment(self.functions.values()), **self.function_env})
        self._export(_batch_environment(self.outputs))
        if self.persistence:  # where the lake lies on disk (`cliplake sql` reads its tables' files there)
            self._export({"CLIPLAKE_DATA_DIR": str(self.persistence.dir.path)})
        if self.restored and self.restored.anything:
            _expire_in_progress(self, self.env.get("CLIPLAKE_IDEMPOTENCY_TABLE", ""))
        for spec in self.functions.values():  # as Lambda's CreateFunction does: the role must be assumable by Lambda
            self.function_environment(spec)
        if self.start_dispatcher:
            self.dispatcher = Dispatcher(
                mappings_from_template(self.template, self.resolver),
                endpoint_url=self.endpoint_url,
                region=REGION,
                handlers=self.handlers,
                backoff=self.backoff,
                environment=self.function_environment,
            )
            self.dispatcher.start()
        if self.persistence:  # what `cliplake env` prints, and when this cloud came up
            info = self.persistence.dir.read_info()
            self.persistence.dir.write_info({**info, "env": self.env, "started_at": time.time()})
        # moto, the deployed stack and botocore's models live as long as the process: frozen, they are left out of
        # the full garbage collections, which otherwise scan them all and stalled every thread for 0.4-0.5 s. Not
        # collected first: that full collection took 0.5-1 s of a restart with 10,000 videos, to free ~3,000 objects
        gc.freeze()
        log.info("local cloud up at %s in %.1f s", self.endpoint_url, time.perf_counter() - started)
        return self

    def stop(self) -> None:
        if self.scheduler:
            self.scheduler.stop()
            self.scheduler = None
        if self.dispatcher:
            self.dispatcher.stop()
            self.dispatcher = None
        if self.rekognition:
            self.rekognition.stop()
            self.rekognition = None
        if self.persistence:
            self.persistence.close()  # the last checkpoint, before moto is reset
        if self._moto:
            try:  # moto's backends are process-global: leave them empty for the next cloud
                requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10)
            except requests.RequestException as exc:
                log.warning("could not reset moto: %s", exc)
            self._moto.stop()
            self._moto = None
        if self.persistence:
            self.persistence.detach()
            self.persistence = None
        self._patches.close()
        sys.setswitchinterval(self._switch_interval)
        self._enforcement.disable()
        iam_resources.uninstall()
        task_tokens.uninstall()
        environ.uninstall()
        boto3.DEFAULT_SESSION = None  # it may hold the administrator's credentials
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}
        self.roles = None
        self._clients = {}
        with LocalCloud._lock:
            if LocalCloud._active is self:
                LocalCloud._active = None

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, service: str) -> Any:
        """A boto3 client of the local cloud (cached; boto3 clients are thread-safe)."""
        if service not in self._clients:
            session = new_session()  # one loader of service models for the process
            extra = {"config": S3_CONFIG} if service == "s3" else {}  # SigV4 presigned URLs, as the stages make
            self._clients[service] = session.client(
                service, region_name=REGION, endpoint_url=self.endpoint_url, **extra
            )
        return self._clients[service]

    def _enforce(self) -> None:
        """Create the administrator, sign everything with its keys from now on, then switch enforcement on."""
        admin = Enforcement.create_admin(self.client("iam"), self.client("sts").get_caller_identity()["Account"])
        self._export(admin.env())
        self._unset("AWS_SESSION_TOKEN")  # an IAM user's keys come without one (moto refuses a token with them)
        self._clients = {}
        boto3.DEFAULT_SESSION = None  # boto3's default session caches the first credentials it resolved
        environ.install()
        if self.enforce_iam:
            iam_resources.install()
            self._enforcement.enable()

    def function_environment(self, spec: FunctionSpec) -> tuple[dict[str, str], frozenset[str]]:
        """What a function's handler sees (its variables, its role's credentials, the runtime's variables), and
        the keys exported for other functions it must not see."""
        env = {**spec.environment, **self.function_env}
        env.update(
            AWS_LAMBDA_FUNCTION_NAME=spec.name,
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(spec.memory_mb),
            AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
            AWS_LAMBDA_LOG_GROUP_NAME=f"/aws/lambda/{spec.name}",
        )
        if self.enforce_iam and spec.role_arn:
            env.update(self.roles.credentials(spec.role_arn, LAMBDA, source_arn=spec.arn).env())
        others = {k for other in self.functions.values() for k in other.environment}
        return env, frozenset(others - set(env))

    def _unset(self, key: str) -> None:
        self._saved_env.setdefault(key, os.environ.get(key))
        os.environ.pop(key, None)
        self.env.pop(key, None)

    def _export(self, variables: dict[str, str]) -> None:
        for key, value in variables.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        self.env.update(variables)
        self.env.pop("MOTO_PORT", None)

    # ------------------------------------------------------------------------------------------- deploy
    def _deploy(self) -> None:
        """What `sam deploy` does: package the code to S3, transform, create the stack (minus the ESMs)."""
        s3, cfn = self.client("s3"), self.client("cloudformation")
        account = self.client("sts").get_caller_identity()["Account"]
        code = zip_functions()
        artifacts = f"cliplake-sam-artifacts-{account}-{REGION}"  # like sam deploy's managed bucket, any stack name
        key = f"functions-{hashlib.sha256(code).hexdigest()[:16]}.zip"
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
            s3.create_bucket(Bucket=artifacts)  # already there when the data directory has the stack
        s3.put_object(Bucket=artifacts, Key=key, Body=code)

        source = load_template(self.template_path)
        self.template = transform(source, code_uri=f"s3://{artifacts}/{key}", region=REGION)
        deployed = copy.deepcopy(self.template)
        for lid in resources_of_type(deployed, "AWS::Lambda::EventSourceMapping"):
            del deployed["Resources"][lid]  # moto would poll the queues itself; the dispatcher does it
        _silence_moto_about(_WIRING)
        # as `sam deploy`: the stack of the data directory is updated when its template or parameters changed
        digest = self.stack_digest(source)
        previous = self.persistence.dir.read_info().get("stacks", {}) if self.persistence else {}
        exists = self.stack_name in previous and _stack_exists(cfn, self.stack_name)
        args = {
            "StackName": self.stack_name,
            "TemplateBody": json.dumps(deployed),
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in self.parameters.items()],
            "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        }
        self.stack_action = "created"
        if not exists:
            cfn.create_stack(**args)
        elif previous[self.stack_name] != digest:
            cfn.update_stack(**args)
            self.stack_action = "updated"
        else:
            self.stack_action = "kept"
        self._stack_digest = digest
        stack = _wait_for_stack(cfn, self.stack_name)
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        physical = {}
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=self.stack_name):
            for res in page["StackResourceSummaries"]:
                if res.get("LogicalResourceId"):
                    physical[res["LogicalResourceId"]] = res["PhysicalResourceId"]
        self.resolver = Resolver(
            self.template,
            physical,
            {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])},
            region=REGION,
            account_id=account,
            stack_name=self.stack_name,
            stack_id=stack["StackId"],
        )
        if self.persistence:  # the ids the wiring gave before (secrets, Glue, ...): kept when it keeps them
            saved = self.persistence.saved_stack(self.stack_name)
            for lid, physical in (saved.get("resolver", {}).get("physical_ids") or {}).items():
                self.resolver.physical_ids.setdefault(lid, physical)

    def stack_digest(self, source: dict[str, Any] | None = None) -> str:
        """What the stack is deployed from: the template (before the transform) and the parameters."""
        source = source if source is not None else load_template(self.template_path)
        return hashlib.sha256(json.dumps([source, self.parameters], sort_keys=True, default=str).encode()).hexdigest()

    def _attach(self, kept: dict[str, Any]) -> None:
        """The stack of the data directory, unchanged since it was deployed: template, resolver and outputs as saved;
        the local scheduler gets the template's schedules (moto's Scheduler has them already)."""
        self.template, self.outputs, self.stack_action = kept["template"], kept["outputs"], "kept"
        self._stack_digest = kept["digest"]
        r = kept["resolver"]
        self.resolver = Resolver(
            self.template,
            r["physical_ids"],
            r["parameters"],
            region=REGION,
            account_id=r["account_id"],
            stack_name=self.stack_name,
            stack_id=r["stack_id"],
        )
        for lid in resources_of_type(self.template, "AWS::Scheduler::Schedule"):
            res = self.template["Resources"][lid]
            if not res.get("Condition") or self.resolver.condition(res["Condition"]):
                props = self.resolver.resolve(res.get("Properties", {}))
                self.scheduler.add(LocalSchedule.from_properties(self.resolver.physical_ids[lid], props))

    def _wire(self) -> None:
        """Apply, from the template, what moto's CloudFormation accepts but does not do."""
        for lid, res in self.template["Resources"].items():
            apply = _WIRING.get(res["Type"])
            if res.get("Condition") and not self.resolver.condition(res["Condition"]):
                continue  # not deployed on AWS either
            if apply:
                props = self.resolver.resolve(res.get("Properties", {}))
                physical = self.resolver.physical_ids.get(lid) or f"{self.stack_name}-{lid}"
                try:
                    apply(self, physical, props, lid)
                except ClientError as err:  # an updated stack of the data directory: what exists stays
                    if not (self.restored and self.restored.anything and "xist" in str(err)):
                        raise
                    log.info("kept %s (%s): %s", lid, res["Type"], err)
                log.debug("wired %s (%s)", lid, res["Type"])

    def _start_rekognition(self) -> None:
        try:
            from cliplake_localcloud.rekognition.server import RekognitionServer
        except ImportError:
            log.warning("no local Rekognition endpoint (cliplake_localcloud.rekognition.server missing)")
            return

        def publisher(role_arn: str, api: str, region: str) -> Any:
            return self.roles.client(role_arn, "rekognition.amazonaws.com", api, region)

        self.rekognition = RekognitionServer(
            host=HOST,
            port=self.rekognition_port,
            region=REGION,
            role_client=publisher if self.enforce_iam else None,
        )
        self.rekognition.start()
        self._export({"AWS_ENDPOINT_URL_REKOGNITION": self.rekognition.url})

    def _resume(self) -> None:
        """With a data directory: remember the port and the stack, journal the Rekognition jobs (re-running the
        unpublished ones), say on the batch records which executions the restart aborted, checkpoint."""
        assert self.persistence is not None
        info = self.persistence.dir.read_info()
        info.update({"port": self.port, "endpoint_url": self.endpoint_url})
        if self.rekognition:
            info["rekognition_port"] = int(self.rekognition.url.rsplit(":", 1)[1])
        info.setdefault("stacks", {})[self.stack_name] = self._stack_digest
        info["outputs"] = self.outputs
        self.persistence.dir.write_info(info)
        self.persistence.save_stack(self)
        if self.rekognition:
            self.persistence.attach_rekognition(self.rekognition)
        for aborted in self.restored.aborted_executions if self.restored else []:
            self.aborted_batches.append(aborted)
            _mark_batch_aborted(self, aborted)
        self.persistence.start_background()  # its first checkpoint comes a few seconds after the first write

    # --------------------------------------------------------------------------------------------- idle
    def busy(self) -> list[str]:
        """What still has work: mapped queues with messages (visible, in flight or delayed), running
        handlers, Rekognition jobs."""
        busy = []
        if self.dispatcher:
            sqs = self.client("sqs")
            for m in self.dispatcher.mappings:
                attrs = sqs.get_queue_attributes(QueueUrl=m.queue_url, AttributeNames=["All"])["Attributes"]
                counts = {
                    k.removeprefix("ApproximateNumberOfMessages") or "Visible": int(attrs.get(k, 0))
                    for k in (
                        "ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible",
                        "ApproximateNumberOfMessagesDelayed",
                    )
                }
                if any(counts.values()):
                    busy.append(f"queue of {m.function.logical_id} {counts}")
            busy += [f"handler {name} running" for name in self.dispatcher.busy()]
        if self.rekognition and self.rekognition.busy():
            busy.append("rekognition jobs queued/running")
        return busy

    def wait_idle(self, timeout: float = 120, interval: float = 0.05, stable_checks: int = 3) -> None:
        """Block until nothing is busy for `stable_checks` consecutive checks; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        idle = 0
        while True:
            busy = self.busy()
            idle = 0 if busy else idle + 1
            if idle >= stable_checks:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"local cloud still busy after {timeout} s: {'; '.join(busy)}")
            time.sleep(interval)


# ------------------------------------------------------------------------------------------------ helpers
_DYNAMODB_LOCK = threading.RLock()
M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # glibc's mallopt parameters (malloc.h)


def _bound_the_heap() -> None:
    """glibc's malloc, tuned for a server that moves large bodies through many threads (uploaded parts, S3
    objects): buffers from 1 MiB up are mmapped and returned to the system when freed (a fixed threshold: by default
    it rises to the largest buffer freed, after which 8 MiB parts come from the heap and stay there), and two
    arenas instead of eight per core. Measured with a 1 GB video dropped and analysed (`make bench`): the cloud's
    peak grew by 516-617 MB over idle without this (the upload alone +420 MB, kept after it), 263-301 MB with it
    (the upload +50 MB; the rest is the analysis: models and frames); idle is unchanged. No-op off glibc."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 20)
        libc.mallopt(M_ARENA_MAX, 2)
    except (OSError, AttributeError):  # musl and others: no mallopt
        log.debug("mallopt not available; the heap keeps the C library's defaults")


def _share_region_lists() -> None:
    """botocore's region lists, computed once per process. moto's EC2 models, imported with Step Functions' task
    states, list EC2's regions of three partitions at import, each with a new botocore session that loads EC2's 3 MB
    service model for its endpoint prefix: 0.3-0.5 s each, a fifth of a restart. The same answer as botocore's
    (`Session.get_available_regions`), from its data files, the model read once."""
    from botocore.exceptions import UnknownServiceError
    from botocore.session import Session

    if getattr(Session.get_available_regions, "_shared", False):
        return
    prefixes: dict[str, str | None] = {}
    answers: dict[tuple[str, str, bool], list[str]] = {}

    def get_available_regions(
        self: Any, service_name: str, partition_name: str = "aws", allow_non_regional: bool = False
    ) -> list[str]:
        key = (service_name, partition_name, allow_non_regional)
        if key not in answers:
            if service_name not in prefixes:
                try:
                    metadata = self.get_service_data(service_name)["metadata"]
                    prefixes[service_name] = metadata.get("endpointPrefix", service_name)
                except UnknownServiceError:
                    prefixes[service_name] = None
            prefix = prefixes[service_name]
            resolver = self._get_internal_component("endpoint_resolver")
            answers[key] = (
                resolver.get_available_endpoints(prefix, partition_name, allow_non_regional) if prefix else []
            )
        return list(answers[key])

    get_available_regions._shared = True  # type: ignore[attr-defined]
    Session.get_available_regions = get_available_regions  # type: ignore[method-assign]


def _route_requests_from_memory() -> None:
    """Two lookups moto repeats for every request, answered once: the list of its service modules (a directory
    listing, read to route each request to its backend) and the handler methods of a response class (`inspect`
    over the class, to find the action's method). Neither changes while the process runs. Measured on a catalog
    GetItem in the local cloud: 6.7 -> 6.1 ms median, UpdateItem 9.1 -> 7.3 ms."""
    import functools

    from moto import backends
    from moto.core import responses, utils

    if getattr(backends.list_of_moto_modules, "_once", False):
        return
    modules = tuple(backends.list_of_moto_modules())

    def list_of_moto_modules() -> tuple[str, ...]:
        return modules

    list_of_moto_modules._once = True  # type: ignore[attr-defined]
    backends.list_of_moto_modules = list_of_moto_modules  # type: ignore[assignment]
    responses.method_names_from_class = functools.cache(utils.method_names_from_class)  # type: ignore[assignment]


def _serialise_dynamodb() -> None:
    """One DynamoDB request at a time. moto's tables are plain dicts: `TransactWriteItems` deep-copies a table
    while another request thread may write to it ("dictionary changed size during iteration", a 500 that failed
    analyze's job-slot transaction under load). DynamoDB calls take milliseconds in moto: serialising costs little."""
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler.call_action, "_serialised", False):
        return
    call_action = DynamoHandler.call_action

    def serialised(self: Any) -> Any:
        with _DYNAMODB_LOCK:
            return call_action(self)

    serialised._serialised = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = serialised  # type: ignore[method-assign]


def _transactions_back_up_their_items() -> None:
    """moto's `TransactWriteItems` deep-copies every table it touches, to roll back on failure: with 10,000 videos
    in the catalog, seconds per transaction (analyze's job slots take one per video), during which every other
    DynamoDB request waits (they are serialised) and so does every journaled write of a durable cloud. Measured:
    writes stalled for 13 s after a restart with 10,000 videos. Here the transaction backs up only the items it
    names and, if it is cancelled, puts those back; moto's table copy becomes the table itself (the requests are
    serialised, nothing else changes the table meanwhile)."""
    from moto.dynamodb import models as ddb_models

    backend_cls = ddb_models.DynamoDBBackend
    if getattr(backend_cls.transact_write_items, "_item_backups", False):
        return
    transact = backend_cls.transact_write_items
    real_copy = ddb_models.copy

    class _TablesNotCopied:
        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, ddb_models.Table) else real_copy.deepcopy(value, memo)

        def __getattr__(self, name: str) -> Any:
            return getattr(real_copy, name)

    ddb_models.copy = _TablesNotCopied()

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        backups: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName", ""))
            if table is None:
                continue
            if "Item" in op:
                names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
                key = {n: op["Item"][n] for n in names if n in op["Item"]}
            else:
                key = op.get("Key") or {}
            try:
                current = self.get_item(table.name, key)
            except Exception as exc:  # a malformed key: moto's own checks below refuse the transaction
                log.debug("no backup of %s in %s: %s", key, table.name, exc)
                continue
            backups.append((table.name, key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
        try:
            transact(self, transact_items)
        except Exception:
            for table_name, key, attrs in reversed(backups):
                if attrs is None:
                    if self.get_item(table_name, key) is not None:
                        self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attrs)
            raise

    transact_write_items._item_backups = True  # type: ignore[attr-defined]
    backend_cls.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _previous_port(persistence: Persistence, which: str = "port") -> int:
    """The port the data directory's cloud had (queue URLs and exports name it), if it is free again; else any."""
    port = int(persistence.dir.read_info().get(which) or 0)
    try:
        return free_port(HOST, port) if port else 0
    except OSError:
        return 0


def _expire_in_progress(cloud: LocalCloud, table: str) -> int:
    """A restart means every invocation that was running died: their powertools idempotency records still say
    INPROGRESS until the invocation's deadline (up to 15 min), which would refuse the redelivered messages until
    then. On AWS the redelivery comes after that deadline (the visibility timeout covers it); here it comes at once,
    so the records of the dead invocations are expired now, as their deadline would have."""
    if not table:
        return 0
    ddb, expired = cloud.client("dynamodb"), 0
    for page in ddb.get_paginator("scan").paginate(
        TableName=table,
        FilterExpression="#s = :p",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":p": {"S": "INPROGRESS"}},
    ):
        for item in page.get("Items", []):
            ddb.delete_item(TableName=table, Key={"id": item["id"]})
            expired += 1
    if expired:
        log.info("expired %d idempotency record(s) of invocations the restart ended", expired)
    return expired


def _stack_exists(cfn: Any, name: str) -> bool:
    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] != "DELETE_COMPLETE"
    except cfn.exceptions.ClientError:
        return False


def _mark_batch_aborted(cloud: LocalCloud, aborted: dict[str, str]) -> None:
    """The catalog's batch record of an execution the restart aborted: ABORTED, with the reason."""
    table = cloud.outputs.get("CatalogTableName")
    if not table:
        return
    ddb = cloud.client("dynamodb")
    # no record yet (aborted while planning) or already summarised: nothing to say
    with contextlib.suppress(ddb.exceptions.ConditionalCheckFailedException):
        ddb.update_item(
            TableName=table,
            Key=batch_key(aborted["name"]),
            UpdateExpression="SET #s = :s, reason = :r",
            ConditionExpression="attribute_exists(pk) AND #s <> :done",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":s": {"S": "ABORTED"},
                ":r": {"S": aborted["cause"]},
                ":done": {"S": "SUCCEEDED"},
            },
        )


def _wait_for_stack(cfn: Any, name: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"stack {name} still {stack['StackStatus']}")
        time.sleep(0.1)
    if stack["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        events = cfn.describe_stack_events(StackName=name)["StackEvents"]
        reasons = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}" for e in events[:10]]
        raise RuntimeError(f"stack {name} is {stack['StackStatus']}: {reasons}")
    return stack


class _SkippedTypesFilter(logging.Filter):
    def __init__(self, types: Any) -> None:
        super().__init__()
        self.types = set(types)

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg == "No Moto CloudFormation support for %s" and set(record.args or ()) & self.types)


def _silence_moto_about(types: Any) -> None:
    """moto warns (log + UserWarning) that its CloudFormation skips these types: `_wire` applies them."""
    moto_log = logging.getLogger("moto")
    if not any(isinstance(f, _SkippedTypesFilter) for f in moto_log.filters):
        moto_log.addFilter(_SkippedTypesFilter(types))
    for rtype in types:
        warnings.filterwarnings("ignore", f"Tried to parse {rtype} but it's not supported", UserWarning)


def _shared_environment(functions: Any) -> dict[str, str]:
    """The functions' variables, merged: they run in one process, so they must agree."""
    env: dict[str, str] = {}
    for spec in functions:
        for key, value in spec.environment.items():
            if env.setdefault(key, value) != value:
                log.warning("%s differs between functions; %s gets %r", key, spec.logical_id, env[key])
    return env


# ----------------------------------------------------------------------- what moto's CloudFormation skips
def _wire_bucket(cloud: LocalCloud, bucket: str, props: dict[str, Any], lid: str = "") -> None:
    s3 = cloud.client("s3")
    if "VersioningConfiguration" in props:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=props["VersioningConfiguration"])
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
        )
    if "NotificationConfiguration" in props:
        # S3 validates the destinations by sending an s3:TestEvent to each: consumers skip it, as in AWS.
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration=_notification_to_api(props["NotificationConfiguration"])
        )


def _notification_to_api(cfn: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's NotificationConfiguration -> the S3 API's."""

    def filters(conf: dict[str, Any]) -> dict[str, Any]:
        rules = conf.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        return {"Filter": {"Key": {"FilterRules": rules}}} if rules else {}

    api: dict[str, Any] = {}
    for section, target, api_target in (
        ("QueueConfigurations", "Queue", "QueueArn"),
        ("TopicConfigurations", "Topic", "TopicArn"),
        ("LambdaConfigurations", "Function", "LambdaFunctionArn"),
    ):
        if cfn.get(section):
            api[section] = [{api_target: c[target], "Events": [c["Event"]], **filters(c)} for c in cfn[section]]
    if cfn.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        api["EventBridgeConfiguration"] = {}
    return api


def _wire_bucket_policy(cloud: LocalCloud, _: str, props: dict[str, Any], lid: str = "") -> None:
    """moto enforces bucket policies; the local endpoint is plain HTTP on loopback, so statements about
    `aws:SecureTransport` (deny-insecure-transport) are left out and the rest applied."""
    document = dict(props["PolicyDocument"])
    statements = document.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    document["Statement"] = [s for s in statements if "aws:securetransport" not in json.dumps(s).lower()]
    if document["Statement"]:
        cloud.client("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(document))


def _wire_queue_policy(cloud: LocalCloud, _: str, props: dict[str, Any], lid: str = "") -> None:
    sqs = cloud.client("sqs")
    for url in props["Queues"]:
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])})


def _wire_subscription(cloud: LocalCloud, _: str, props: dict[str, Any], lid: str = "") -> None:
    sns = cloud.client("sns")
    existing = sns.list_subscriptions_by_topic(TopicArn=props["TopicArn"])["Subscriptions"]
    if any(s["Protocol"] == props["Protocol"] and s["Endpoint"] == props.get("Endpoint") for s in existing):
        return
    attributes = {}
    if "RawMessageDelivery" in props:
        attributes["RawMessageDelivery"] = str(props["RawMessageDelivery"]).lower()
    for key in ("FilterPolicy", "RedrivePolicy", "DeliveryPolicy"):
        if key in props:
            attributes[key] = props[key] if isinstance(props[key], str) else json.dumps(props[key])
    if "FilterPolicyScope" in props:
        attributes["FilterPolicyScope"] = props["FilterPolicyScope"]
    sns.subscribe(
        TopicArn=props["TopicArn"],
        Protocol=props["Protocol"],
        Endpoint=props.get("Endpoint", ""),
        Attributes=attributes,
        ReturnSubscriptionArn=True,
    )


def _wire_table(cloud: LocalCloud, table: str, props: dict[str, Any], lid: str = "") -> None:
    ddb = cloud.client("dynamodb")
    ttl = props.get("TimeToLiveSpecification")
    if ttl and str(ttl.get("Enabled")).lower() == "true":
        status = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]["TimeToLiveStatus"]
        if status != "ENABLED":
            ddb.update_time_to_live(
                TableName=table, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
            )
    pitr = props.get("PointInTimeRecoverySpecification", {})
    if str(pitr.get("PointInTimeRecoveryEnabled")).lower() == "true":
        ddb.update_continuous_backups(
            TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )


def _wire_state_machine(cloud: LocalCloud, arn: str, props: dict[str, Any], lid: str = "") -> None:
    """moto's CloudFormation ignores `DefinitionSubstitutions`, and with execution enabled its Step Functions API
    serves another backend than the one CloudFormation wrote to: create the state machine through the API, under
    the stack's physical ARN, with the substitutions applied as CloudFormation does."""
    definition = props["DefinitionString"]
    for key, value in (props.get("DefinitionSubstitutions") or {}).items():
        definition = definition.replace("${" + key + "}", str(value))
    sfn = cloud.client("stepfunctions")
    try:
        sfn.update_state_machine(stateMachineArn=arn, definition=definition)
    except sfn.exceptions.StateMachineDoesNotExist:
        sfn.create_state_machine(
            name=arn.rsplit(":", 1)[-1],
            definition=definition,
            roleArn=props.get("RoleArn", ""),
            type=props.get("StateMachineType", "STANDARD"),
        )


def _wire_secret(cloud: LocalCloud, name: str, props: dict[str, Any], lid: str = "") -> None:
    sm = cloud.client("secretsmanager")
    args: dict[str, Any] = {"Name": props.get("Name", name)}
    if "Description" in props:
        args["Description"] = props["Description"]
    if "SecretString" in props:
        args["SecretString"] = props["SecretString"]
    elif "GenerateSecretString" in props:
        args["SecretString"] = sm.get_random_password(PasswordLength=32, ExcludePunctuation=True)["RandomPassword"]
    try:
        arn = sm.create_secret(**args)["ARN"]
    except sm.exceptions.ResourceExistsException:  # a restart on the same data directory: keep its value
        arn = sm.describe_secret(SecretId=args["Name"])["ARN"]
    cloud.resolver.physical_ids[lid] = arn  # `Ref` of a secret is its ARN


def _wire_schedule(cloud: LocalCloud, name: str, props: dict[str, Any], lid: str = "") -> None:
    """Create the schedule in moto's Scheduler API (so `cliplake schedule fire` reads it as on AWS) and hand it
    to the local scheduler, which fires it when due."""
    name = props.get("Name", name)
    target = {k: v for k, v in props["Target"].items() if k in {"Arn", "RoleArn", "Input", "RetryPolicy"}}
    args: dict[str, Any] = {
        "Name": name,
        "ScheduleExpression": props["ScheduleExpression"],
        "FlexibleTimeWindow": props.get("FlexibleTimeWindow", {"Mode": "OFF"}),
        "Target": target,
        "State": props.get("State", "ENABLED"),
    }
    for key in ("Description", "ScheduleExpressionTimezone", "GroupName"):
        if key in props:
            args[key] = props[key]
    scheduler = cloud.client("scheduler")
    try:
        scheduler.create_schedule(**args)
    except scheduler.exceptions.ConflictException:  # a restart on the same data directory
        scheduler.update_schedule(**args)
    cloud.resolver.physical_ids[lid] = name
    if cloud.scheduler:
        cloud.scheduler.add(LocalSchedule.from_properties(name, props))


def _wire_alarm(cloud: LocalCloud, name: str, props: dict[str, Any], lid: str = "") -> None:
    """The alarm exists (visible with describe_alarms); moto never evaluates it."""
    keys = ("AlarmDescription", "Namespace", "MetricName", "Dimensions", "Statistic", "Period", "EvaluationPeriods",
            "Threshold", "ComparisonOperator", "TreatMissingData", "AlarmActions", "OKActions", "Metrics",
            "DatapointsToAlarm")  # fmt: skip
    args = {k: props[k] for k in keys if k in props}
    for query in args.get("Metrics", []):  # metric math alarms
        if "MetricStat" in query:
            query["MetricStat"]["Period"] = int(query["MetricStat"]["Period"])
        if "ReturnData" in query:
            query["ReturnData"] = str(query["ReturnData"]).lower() == "true"
    for k in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if k in args:
            args[k] = int(args[k])
    if "Threshold" in args:
        args["Threshold"] = float(args["Threshold"])
    name = props.get("AlarmName", name)
    cloud.client("cloudwatch").put_metric_alarm(AlarmName=name, **args)
    cloud.resolver.physical_ids[lid] = name  # `Ref` of an alarm is its name


def _batch_environment(outputs: dict[str, str]) -> dict[str, str]:
    """What the CLI and the dashboard read (the stack's outputs as `cliplake.settings.StackVariables` names them),
    plus the bundled samples (the offline source)."""
    from cliplake.settings import StackVariables
    from cliplake_localcloud.rekognition.models import default_assets_dir as assets_dir

    env = StackVariables.of_outputs(outputs).environment()
    if not os.environ.get("CLIPLAKE_ASSETS_DIR") and (assets_dir() / "samples.json").is_file():
        env["CLIPLAKE_ASSETS_DIR"] = str(assets_dir())
    return env


_WIRING = {
    "AWS::S3::Bucket": _wire_bucket,
    "AWS::S3::BucketPolicy": _wire_bucket_policy,
    "AWS::SQS::QueuePolicy": _wire_queue_policy,
    "AWS::SNS::Subscription": _wire_subscription,
    "AWS::DynamoDB::Table": _wire_table,
    "AWS::StepFunctions::StateMachine": _wire_state_machine,
    "AWS::SecretsManager::Secret": _wire_secret,
    "AWS::Scheduler::Schedule": _wire_schedule,
    "AWS::CloudWatch::Alarm": _wire_alarm,
    **LAKE_WIRING,  # Glue database and tables, Athena workgroup
}
