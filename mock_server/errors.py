"""HTTP-level errors and each API's error envelope.

    RequestError                 found by the spec layer, before any handler runs
    ├── RouteNotFound            no path of the spec matches
    ├── MethodNotAllowed         the path exists, the method does not
    └── RequestInvalid           a parameter or the body breaks the spec (names the field)
    RateLimited                  the caller exceeded the profile's rate limit
    Unavailable                  a shared store kept refusing the request's change (503)

Model errors (`mock_server.model.errors`) and these meet here: an `Envelope` maps each to the
API's status and code, as class attributes, and renders the API's own body shape. Nothing else
builds error responses.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from .model import errors as model
from .responses import JSONResponse


class RequestError(Exception):
    pass


class RouteNotFound(RequestError):
    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"no route for {method} {path}")
        self.method = method
        self.path = path


class MethodNotAllowed(RequestError):
    def __init__(self, method: str, path: str, allowed: tuple[str, ...]) -> None:
        super().__init__(f"{method} is not allowed on {path} (allowed: {', '.join(allowed)})")
        self.allowed = allowed


class RequestInvalid(RequestError):
    def __init__(self, location: str, field: str, message: str) -> None:
        super().__init__(message)
        self.location = location
        self.field = field
        self.message = message


class RateLimited(Exception):
    def __init__(self, retry_after_s: int, limit: int) -> None:
        super().__init__(f"rate limit of {limit} requests exceeded; retry after {retry_after_s}s")
        self.retry_after_s = retry_after_s
        self.limit = limit


class Unavailable(Exception):
    """The server cannot take the request now (a shared store kept refusing its commit)."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class InternalError(Exception):
    """Stands for any unexpected exception, so the envelope never leaks a traceback."""


class Envelope:
    """One API's error vocabulary: (status, code) per error kind, and the body shape."""

    api: ClassVar[str]
    codes: ClassVar[Mapping[str, tuple[int, str]]]

    def kind_of(self, exc: Exception) -> str:
        if isinstance(exc, RouteNotFound):
            return "route_not_found"
        if isinstance(exc, MethodNotAllowed):
            return "method_not_allowed"
        if isinstance(exc, RequestInvalid):
            return "invalid"
        if isinstance(exc, RateLimited):
            return "rate_limited"
        if isinstance(exc, Unavailable):
            return "unavailable"
        if isinstance(exc, model.Unauthenticated):
            return "unauthenticated"
        if isinstance(exc, model.Forbidden):
            return exc.reason
        if isinstance(exc, model.NotFound):
            return "not_found"
        if isinstance(exc, model.IllegalTransition):
            return "illegal_transition"
        if isinstance(exc, model.InvalidInput):
            return "invalid"
        if isinstance(exc, model.Conflict):
            return "conflict"
        return "internal"

    def render(self, exc: Exception) -> JSONResponse:
        kind = self.kind_of(exc)
        status, code = self.codes.get(kind, self.codes["internal"])
        message = str(exc) if kind != "internal" else "internal server error"
        if isinstance(exc, model.ModelError | RequestInvalid):
            message = exc.message
        headers: dict[str, str] = {}
        if isinstance(exc, MethodNotAllowed) and status == 405:
            headers["Allow"] = ", ".join(exc.allowed)
        if isinstance(exc, RateLimited | Unavailable):
            headers["Retry-After"] = str(exc.retry_after_s)
        return JSONResponse(self.body(code, message, exc), status_code=status, headers=headers)

    def body(self, code: str, message: str, exc: Exception) -> dict[str, Any]:
        raise NotImplementedError


def field_of(exc: Exception) -> str | None:
    if isinstance(exc, RequestInvalid | model.InvalidInput) and exc.field:
        return exc.field
    return None


class AuvyEnvelope(Envelope):
    """Flat `{"code", "message", "field"?}`; an illegal move (cancel after completion) is a 400.
    An undeclared method on a known path is a 405 METHOD_NOT_ALLOWED with `Allow`.
    A 429 also carries `retryAfter` (seconds), which AUVY's SDK reads besides the header."""

    api = "auvy"
    codes: ClassVar[Mapping[str, tuple[int, str]]] = {
        "invalid": (400, "VALIDATION_ERROR"),
        "illegal_transition": (400, "VALIDATION_ERROR"),
        "conflict": (400, "VALIDATION_ERROR"),
        "unauthenticated": (401, "AUTH_REQUIRED"),
        "forbidden": (403, "FORBIDDEN"),
        "trial_expired": (403, "trial_expired"),
        "cost_cap": (403, "cost_cap"),
        "not_found": (404, "RESOURCE_NOT_FOUND"),
        "route_not_found": (404, "NOT_FOUND"),
        # The documents list no 405; a 404 whose message says "not allowed" contradicted itself
        # (x-decision in openapi/auvy.yaml's info).
        "method_not_allowed": (405, "METHOD_NOT_ALLOWED"),
        "rate_limited": (429, "RATE_LIMIT"),
        # The documents' table gives every 5xx the one code INTERNAL_SERVER_ERROR (retryable),
        # and the SDKs map codes to typed errors: a code of our own would be one they lack.
        "unavailable": (503, "INTERNAL_SERVER_ERROR"),
        "internal": (500, "INTERNAL_SERVER_ERROR"),
    }

    def body(self, code: str, message: str, exc: Exception) -> dict[str, Any]:
        out: dict[str, Any] = {"code": code, "message": message}
        name = field_of(exc)
        if name:
            out["field"] = name
        if isinstance(exc, RateLimited):
            out["retryAfter"] = exc.retry_after_s
        return out


class AvaEnvelope(Envelope):
    """`{"error": {"code", "message", "request_id", "docs_url", "fields"?}}`, snake_case codes."""

    api = "ava"
    codes: ClassVar[Mapping[str, tuple[int, str]]] = {
        "invalid": (400, "validation_error"),
        "illegal_transition": (409, "resource_conflict"),
        "conflict": (409, "resource_conflict"),
        "unauthenticated": (401, "unauthorized"),
        "forbidden": (403, "forbidden"),
        "tenant_suspended": (403, "tenant_suspended"),
        "not_found": (404, "resource_not_found"),
        "route_not_found": (404, "resource_not_found"),
        "method_not_allowed": (405, "method_not_allowed"),
        "rate_limited": (429, "rate_limited"),
        "unavailable": (503, "service_unavailable"),
        "internal": (500, "internal_error"),
    }

    def body(self, code: str, message: str, exc: Exception) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": code,
            "message": message,
            "request_id": f"req_{uuid.uuid4().hex[:24]}",
            "docs_url": f"https://docs.hldgroup.org/errors/{code}",
        }
        name = field_of(exc)
        if name:
            error["fields"] = {name: message}
        return {"error": error}


class StraitEnvelope(Envelope):
    """`{"error": {"code", "message", "details"?}, "request_id"}`."""

    api = "strait"
    codes: ClassVar[Mapping[str, tuple[int, str]]] = {
        "invalid": (400, "bad_request"),
        "illegal_transition": (400, "bad_request"),
        "conflict": (409, "conflict"),
        "unprocessable": (422, "validation_failed"),
        "unauthenticated": (401, "authentication_required"),
        "forbidden": (403, "forbidden"),
        "not_found": (404, "not_found"),
        "route_not_found": (404, "not_found"),
        "method_not_allowed": (405, "method_not_allowed"),
        "gone": (410, "gone"),
        "rate_limited": (429, "rate_limited"),
        "unavailable": (503, "service_unavailable"),
        "internal": (500, "internal_error"),
    }

    def kind_of(self, exc: Exception) -> str:
        if isinstance(exc, model.Unprocessable):
            return "unprocessable"
        if isinstance(exc, model.Gone):
            return "gone"
        return super().kind_of(exc)

    def body(self, code: str, message: str, exc: Exception) -> dict[str, Any]:
        error: dict[str, Any] = {"code": code, "message": message}
        name = field_of(exc)
        if name:
            error["details"] = {"field": name}
        return {"error": error, "request_id": str(uuid.uuid4())}
