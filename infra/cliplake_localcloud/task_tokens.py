"""Task tokens answered as AWS Step Functions answers them, in the local cloud.

moto's executing Step Functions (5.2) answers a token it never issued with InvalidToken, but it also:
- answers InvalidToken for the token of a task that timed out (its execution is no longer running), where AWS
  answers TaskTimedOut;
- accepts SendTaskFailure (and a heartbeat) for a task that was already answered, or whose execution ended, where
  AWS answers TaskTimedOut ("the task associated with the token has already been closed").

`install()` puts a check in front of moto's SendTaskSuccess/SendTaskFailure/SendTaskHeartbeat: the token is looked
up in every execution's callbacks, whatever the execution's status; unknown -> InvalidToken; answered, timed out
or of an ended execution -> TaskTimedOut; otherwise moto carries on. `uninstall()` restores moto.
"""

from __future__ import annotations

from typing import Any

_ORIGINAL: dict[str, Any] = {}


def check_token(backend: Any, token: str) -> None:
    """Raise what AWS raises for a token that cannot be answered any more (or never could)."""
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.models import InvalidToken, TaskTimedOut  # the ones moto itself raises

    for machine in list(backend.state_machines):
        for execution in list(getattr(machine, "executions", [])):
            env = getattr(getattr(execution, "exec_worker", None), "env", None)
            pool = getattr(env, "callback_pool_manager", None)
            endpoint = pool.get(token) if pool is not None else None
            if endpoint is None:
                continue
            closed = endpoint.get_outcome() is not None or endpoint.consumer_error is not None
            if closed or execution.status != ExecutionStatus.RUNNING:
                raise TaskTimedOut("Task Timed Out: 'Provided task does not exist anymore'", "TaskTimedOut", 400)
            return
    raise InvalidToken()


def _guarded(name: str) -> Any:
    def method(self: Any, task_token: str, *args: Any, **kwargs: Any) -> Any:
        check_token(self, task_token)
        return _ORIGINAL[name](self, task_token, *args, **kwargs)

    method.__name__ = name
    return method


def install() -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    if _ORIGINAL:
        return
    for name in ("send_task_success", "send_task_failure", "send_task_heartbeat"):
        _ORIGINAL[name] = getattr(StepFunctionsParserBackend, name)
        setattr(StepFunctionsParserBackend, name, _guarded(name))


def uninstall() -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    for name, original in list(_ORIGINAL.items()):
        setattr(StepFunctionsParserBackend, name, original)
        del _ORIGINAL[name]
