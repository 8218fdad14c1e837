"""The error bodies the sandbox answers with, in the platform's shape.

Every body has ``message, code, status, messageWithParams, messageParams, contextId, details,
errors``; some add ``entityId``/``entityName`` or ``limit``. The codes are the platform's generic,
documented ones. The exact messages it returns for each launch mistake are not published, so the
messages, ``details`` and ``messageParams`` here are this sandbox's model of them: close enough to
exercise error-body parsing and diagnosis, not a transcript of production responses.

Each kind of error is one :class:`ErrorKind` below (status, code, message templates); a new
failure mode is one more. Everything here is a pure function of its arguments.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._flows import SandboxFlow
from ._inputs import InputProblem

__all__ = [
    "AUTHENTICATION_REQUIRED",
    "BAD_CREDENTIALS",
    "BODY_TOO_LARGE",
    "CREDENTIALS_EXPIRED",
    "INTERNAL_ERROR",
    "UNSUPPORTED_MEDIA_TYPE",
    "ErrorBody",
    "ErrorKind",
    "bad_inputs",
    "bad_request",
    "error_body",
    "flow_deleted",
    "flow_failed",
    "generic_code",
    "invalid_value",
    "missing_field",
    "not_found",
    "oauth_error",
    "too_many_requests",
    "unknown_keys",
]

#: An error body as sent: ``status`` in it is the HTTP status of the reply.
ErrorBody = dict[str, Any]


def error_body(
    status: int,
    code: str,
    message: str,
    correlation_id: str,
    *,
    message_with_params: str | None = None,
    params: Mapping[str, str] | None = None,
    details: Sequence[Mapping[str, Any]] = (),
    errors: Sequence[ErrorBody] = (),
) -> ErrorBody:
    """The common shape; ``contextId`` repeats the reply's ``ININ-Correlation-Id``."""
    return {
        "message": message,
        "code": code,
        "status": status,
        "messageWithParams": message_with_params or message,
        "messageParams": dict(params or {}),
        "contextId": correlation_id,
        "details": [dict(detail) for detail in details],
        "errors": list(errors),
    }


@dataclass(frozen=True)
class ErrorKind:
    """One kind of error: its status, code and message templates (``str.format`` fields).

    ``message`` is what a person reads; ``with_params`` is sent as ``messageWithParams`` (the
    message itself when empty). ``params`` names the values sent as ``messageParams``; by default
    the fields of ``with_params``.
    """

    status: int
    code: str
    message: str
    with_params: str = ""
    params: tuple[str, ...] | None = None

    def body(
        self,
        correlation_id: str,
        *,
        details: Sequence[Mapping[str, Any]] = (),
        errors: Sequence[ErrorBody] = (),
        **values: object,
    ) -> ErrorBody:
        """The body, the templates filled with ``values``."""
        names = self.params if self.params is not None else _fields(self.with_params)
        return error_body(
            self.status,
            self.code,
            self.message.format(**values),
            correlation_id,
            message_with_params=self.with_params,
            params={name: str(values[name]) for name in names},
            details=details,
            errors=errors,
        )


def _fields(template: str) -> tuple[str, ...]:
    return tuple(name for _, name, _, _ in string.Formatter().parse(template) if name)


INTERNAL_ERROR = ErrorKind(500, "internal.server.error", "The sandbox failed.")
AUTHENTICATION_REQUIRED = ErrorKind(
    401,
    "authentication.required",
    "No authentication bearer token specified in authorization header.",
)
#: A bearer token this sandbox never issued.
BAD_CREDENTIALS = ErrorKind(401, "bad.credentials", "Invalid login credentials.")
#: A token past its ``expires_in``.
CREDENTIALS_EXPIRED = ErrorKind(
    401,
    "credentials.expired",
    "The supplied credentials are expired and cannot be used.",
)
_TOO_MANY_REQUESTS = ErrorKind(
    429,
    "too.many.requests",
    "Rate limit exceeded the maximum of {limit} requests in 60 seconds. "
    "Retry the request in {retryAfter} seconds.",
    "Rate limit exceeded the maximum of {limit} requests in 60 seconds.",
    params=("limit", "retryAfter"),
)
#: ``size`` says how big the body was, as far as it was read.
BODY_TOO_LARGE = ErrorKind(
    413,
    "request.entity.too.large",
    "The request body is too large ({size}); the limit is {limit} bytes.",
    "The request body is over the limit of {limit} bytes.",
)
UNSUPPORTED_MEDIA_TYPE = ErrorKind(
    415,
    "unsupported.media.type",
    "Unsupported Media Type: {contentType}. Send the body as application/json.",
    "Unsupported Media Type: {contentType}",
)
_MISSING_FIELD = ErrorKind(400, "bad.request", "Invalid input: {field} is required.", params=())
_UNRECOGNIZED_FIELDS = ErrorKind(
    400,
    "bad.request",
    "Invalid input",
    "Invalid input: unrecognized field(s) {fields}",
)
_UNRECOGNIZED_FIELD = ErrorKind(
    400,
    "invalid.value",
    'Unrecognized field "{field}": a launch body takes only '
    "flowId, flowVersion, inputData and name.",
    'Unrecognized field "{field}"',
)
_INVALID_VALUE = ErrorKind(
    400,
    "invalid.value",
    "Invalid value for {field}: {reason}.",
    "Invalid value for {field}",
)
#: One ``inputData`` key: the message is the check's own.
_INVALID_INPUT = ErrorKind(400, "invalid.value", "{reason}", "Invalid value for {field}")
_BAD_INPUTS = ErrorKind(
    400,
    "invalid.value",
    "The input data does not match the input schema of flow {flowName} "
    "version {flowVersion}: {reasons}.",
    "Invalid input data for flow {flowId} version {flowVersion}: {fields}",
)
_FLOW_DELETED = ErrorKind(
    410,
    "architect.flow.deleted",
    "Flow {flowName} ({flowId}) has been deleted.",
    "Flow {flowId} has been deleted.",
)
_FLOW_FAILED = ErrorKind(
    500,
    "internal.server.error",
    "Flow {flowName} failed: a data action returned an error.",
    "Flow {flowName} failed: a data action returned an error.",
)

_GENERIC_CODES: dict[int, str] = {
    400: "bad.request",
    401: "authentication.required",
    404: "not.found",
    408: "request.timeout",
    413: "request.entity.too.large",
    415: "unsupported.media.type",
    429: "too.many.requests",
    503: "service.unavailable",
}


def generic_code(status: int) -> str:
    """The platform's code for a status when nothing more specific applies."""
    return _GENERIC_CODES.get(status, "bad.request" if status < 500 else "internal.server.error")


def bad_request(message: str, correlation_id: str) -> ErrorBody:
    """400 ``bad.request``: the request itself could not be understood."""
    return error_body(400, "bad.request", message, correlation_id)


def not_found(message: str, correlation_id: str) -> ErrorBody:
    """404 ``not.found``: no such route, flow, version or execution."""
    return error_body(404, "not.found", message, correlation_id)


def too_many_requests(limit: int, reset: int, key: str, correlation_id: str) -> ErrorBody:
    """429, naming the budget (``limit.key``) that ran out and when it refills."""
    body = _TOO_MANY_REQUESTS.body(correlation_id, limit=limit, retryAfter=reset)
    body["limit"] = {"key": key, "namespace": "platform.api", "value": limit}
    return body


def missing_field(field_name: str, correlation_id: str) -> ErrorBody:
    """400 on a required launch field that is absent."""
    details = [{"errorCode": "MISSING_FIELD", "fieldName": field_name}]
    return _MISSING_FIELD.body(correlation_id, details=details, field=field_name)


def invalid_value(field_name: str, reason: str, correlation_id: str) -> ErrorBody:
    """400 ``invalid.value`` on one launch field."""
    details = [{"errorCode": "INVALID_VALUE", "fieldName": field_name}]
    return _INVALID_VALUE.body(correlation_id, details=details, field=field_name, reason=reason)


def unknown_keys(keys: Sequence[str], correlation_id: str) -> ErrorBody:
    """400 for launch-body keys the platform does not know, one ``details`` entry each."""
    details = [{"errorCode": "UNRECOGNIZED_FIELD", "fieldName": key} for key in keys]
    nested = _UNRECOGNIZED_FIELD.body(correlation_id, details=details[:1], field=keys[0])
    return _UNRECOGNIZED_FIELDS.body(
        correlation_id, details=details, errors=[nested], fields=", ".join(keys)
    )


def bad_inputs(
    flow: SandboxFlow, problems: Sequence[InputProblem], correlation_id: str
) -> ErrorBody:
    """400 for ``inputData`` the flow's input schema refuses: one nested error per key."""
    fields = [f"inputData.{problem.key}" for problem in problems]
    details = [
        {"errorCode": problem.error_code, "fieldName": field_name}
        for problem, field_name in zip(problems, fields, strict=True)
    ]
    nested = [
        _INVALID_INPUT.body(correlation_id, details=[detail], field=field, reason=problem.message)
        for problem, field, detail in zip(problems, fields, details, strict=True)
    ]
    return _BAD_INPUTS.body(
        correlation_id,
        details=details,
        errors=nested,
        flowName=flow.name,
        flowId=flow.id,
        flowVersion=flow.version,
        reasons="; ".join(problem.message for problem in problems),
        fields=", ".join(fields),
    )


def flow_deleted(flow: SandboxFlow, correlation_id: str) -> ErrorBody:
    """410 ``architect.flow.deleted``, naming the flow as the platform does."""
    body = _FLOW_DELETED.body(correlation_id, flowName=flow.name, flowId=flow.id)
    body["entityId"] = flow.id
    body["entityName"] = flow.name
    return body


def flow_failed(flow: SandboxFlow, correlation_id: str) -> ErrorBody:
    """The ``flowErrorInfo`` of a ``FAILED`` execution."""
    details = [{"errorCode": "DATA_ACTION_FAILED", "entityId": flow.id}]
    return _FLOW_FAILED.body(correlation_id, details=details, flowName=flow.name)


def oauth_error(error: str, description: str) -> dict[str, str]:
    """The token endpoint's own (OAuth) error shape, not the API's."""
    return {"error": error, "description": description, "error_description": description}
