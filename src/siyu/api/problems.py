"""One error shape for every failure: RFC 9457 problem details, naming field and rule."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from siyu.auth.errors import AuthenticationError
from siyu.errors import ConflictError, ForbiddenError, NotFoundError, SiyuError, ValidationError
from siyu.identity.errors import MergeError

MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """Raise from a route to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        code: str,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.code = status, title, detail, code
        self.errors = errors or []
        self.headers = headers or {}


def problem_response(request: Request, problem: Problem) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://siyu.dev/problems/{problem.code}",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "code": problem.code,
        "instance": request.url.path,
    }
    if problem.errors:
        body["errors"] = problem.errors
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    return JSONResponse(
        body, status_code=problem.status, media_type=MEDIA_TYPE, headers=problem.headers
    )


def from_exception(exc: Exception) -> Problem:
    """Map siyu's own errors to HTTP; anything else is the caller's 500."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, AuthenticationError):
        return Problem(
            401, "Unauthenticated", str(exc), exc.code, headers={"WWW-Authenticate": "Bearer"}
        )
    if isinstance(exc, ValidationError):
        return Problem(
            422, "Invalid input", str(exc), exc.code, [{"field": exc.field, "rule": exc.rule}]
        )
    if isinstance(exc, NotFoundError):
        return Problem(404, "Not found", str(exc), exc.code)
    if isinstance(exc, ForbiddenError):
        return Problem(403, "Forbidden", str(exc), exc.code)
    if isinstance(exc, ConflictError | MergeError):
        return Problem(409, "Conflict", str(exc), exc.code)
    if isinstance(exc, SiyuError):
        return Problem(400, "Bad request", str(exc), exc.code)
    return Problem(
        500,
        "Internal error",
        "an unexpected error; see the server log with the request id",
        "internal_error",
    )


async def handle_siyu_error(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(request, from_exception(exc))


async def handle_request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": ".".join(
                str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path", "header")
            ),
            "rule": e.get("msg", "invalid"),
        }
        for e in exc.errors()
    ]
    detail = "; ".join(f"{e['field']}: {e['rule']}" for e in errors) or "invalid request"
    return problem_response(
        request, Problem(422, "Invalid input", detail, "validation_failed", errors)
    )


async def handle_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    titles = {
        404: "Not found",
        405: "Method not allowed",
        401: "Unauthenticated",
        403: "Forbidden",
        429: "Too many requests",
    }
    return problem_response(
        request,
        Problem(
            exc.status_code,
            titles.get(exc.status_code, "Error"),
            str(exc.detail),
            f"http_{exc.status_code}",
            headers=dict(exc.headers or {}),
        ),
    )


def not_the_path(field: str, in_body: str, in_path: str) -> Problem:
    """422 for a document whose `field` (its code) is not the one its URL names: PUT
    /things/A with a body for B is a mistake, never a rename."""
    return Problem(
        422,
        "Invalid input",
        f"{field}: the body's {field} {in_body!r} is not the path's {in_path!r}",
        "validation_failed",
        [{"field": field, "rule": "equals the path"}],
    )
