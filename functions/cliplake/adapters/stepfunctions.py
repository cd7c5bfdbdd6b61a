"""Small Step Functions adapter: complete a `.waitForTaskToken` task. Completing twice is harmless.

A token whose task already ended (completed, timed out, execution stopped) answers TaskTimedOut, InvalidToken
or TaskDoesNotExist: those are logged and swallowed, since the batch has moved on either way.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import boto3
from botocore.exceptions import ClientError

log = logging.getLogger(__name__)

GONE = {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist", "ExecutionDoesNotExist"}
# SendTaskFailure limits: error ≤ 256 characters, cause ≤ 32768.
MAX_ERROR, MAX_CAUSE = 256, 32768


class TaskTokens:
    def __init__(self, client: Any | None = None) -> None:
        self.client = client or boto3.client("stepfunctions")

    def succeed(self, token: str, output: Any) -> bool:
        """Send the task's output; False when the task was already gone."""
        return self._send("send_task_success", taskToken=token, output=json.dumps(output, default=str))

    def fail(self, token: str, error: str, cause: str) -> bool:
        return self._send("send_task_failure", taskToken=token, error=error[:MAX_ERROR], cause=cause[:MAX_CAUSE])

    def heartbeat(self, token: str) -> bool:
        """Tell the task its video is still being worked on (resets its HeartbeatSeconds clock)."""
        return self._send("send_task_heartbeat", taskToken=token)

    def _send(self, method: str, **params: Any) -> bool:
        try:
            getattr(self.client, method)(**params)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code in GONE:
                log.info("task token already settled (%s): %s ignored", code, method)
                return False
            raise
        return True
