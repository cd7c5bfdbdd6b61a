"""AWS refusing a call for lack of permission: a deploy defect, not a bad video and not a passing hiccup.

Retrying cannot help until the stack's policies change, so the stage that meets one marks the video FAILED with
the refusal as its readable reason (and fails its batch item) instead of letting the message go round until the
dead-letter queue while the video, and its batch, wait. When even that is refused, the error propagates (DLQ).
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

log = logging.getLogger(__name__)

DENIED_CODES = {"AccessDenied", "AccessDeniedException", "AuthorizationError", "UnauthorizedOperation"}


def permission_denied(err: BaseException) -> str | None:
    """`"AccessDenied: <AWS's message>"` when `err`, or an error it wraps, is such a refusal; else None."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ClientError):
            error = current.response.get("Error", {})
            if error.get("Code") in DENIED_CODES:
                operation = getattr(current, "operation_name", "")
                return f"AccessDenied ({operation}): {error.get('Message', '')}".strip()
        current = current.__cause__ or current.__context__
    return None


def give_up_when_denied(svc: Any, video_id: str | None, err: BaseException) -> str | None:
    """If `err` is a refusal: mark the video FAILED with it as the reason, release its job slots, fail its batch item,
    and return the reason. None (the caller re-raises) when it is not one, or nothing is known of the video."""
    reason = permission_denied(err)
    if reason is None or not video_id:
        return None
    from cliplake.completion import fail_video  # it imports the stages' services

    try:
        video = svc.catalog.videos.get(video_id)
        if video is None:
            return None
        fail_video(svc, video, reason)
    except ClientError:
        return None  # the catalog or the state machine refused too: the message goes to its DLQ
    log.warning("video failed: a permission is missing", extra={"video_id": video_id, "reason": reason})
    return reason
