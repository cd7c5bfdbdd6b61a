"""Request validation against botocore's Rekognition service model (types, required, ranges, patterns, enums).

Every violation raises ``ApiError("InvalidParameterException", ...)``, as Rekognition does.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import botocore.session


class ApiError(Exception):
    """An error returned to the client as ``{"__type": code, "message": message}`` with an HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@cache
def service_model():
    return botocore.session.get_session().get_service_model("rekognition")


def invalid(message: str) -> ApiError:
    return ApiError("InvalidParameterException", message)


def _check(shape, value: Any, path: str) -> None:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            raise invalid(f"{path} must be an object")
        for name in shape.required_members:
            if name not in value:
                raise invalid(f"{path}.{name} is required")
        for name, item in value.items():
            if name not in shape.members:
                raise invalid(f"Unknown parameter {path}.{name}")
            _check(shape.members[name], item, f"{path}.{name}")
    elif kind == "list":
        if not isinstance(value, list):
            raise invalid(f"{path} must be a list")
        _bounds(len(value), meta, path)
        for i, item in enumerate(value):
            _check(shape.member, item, f"{path}[{i}]")
    elif kind == "string":
        if not isinstance(value, str):
            raise invalid(f"{path} must be a string")
        _bounds(len(value), meta, path)
        if shape.enum and value not in shape.enum:
            raise invalid(f"{path} must be one of {shape.enum}")
        pattern = meta.get("pattern")
        if pattern and not re.fullmatch(pattern, value):
            raise invalid(f"{path} does not match {pattern}")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(f"{path} must be an integer")
        _bounds(value, meta, path)
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalid(f"{path} must be a number")
        _bounds(value, meta, path)
    elif kind == "boolean" and not isinstance(value, bool):
        raise invalid(f"{path} must be a boolean")


def _bounds(value: float, meta: dict, path: str) -> None:
    if "min" in meta and value < meta["min"]:
        raise invalid(f"{path} is below the minimum {meta['min']}")
    if "max" in meta and value > meta["max"]:
        raise invalid(f"{path} is above the maximum {meta['max']}")


def validate(operation: str, params: Any) -> dict:
    """Validate ``params`` against the input shape of ``operation``; return it."""
    shape = service_model().operation_model(operation).input_shape
    if shape is not None:
        _check(shape, params, operation)
    return params
