"""RFC 9457 problem responses for every error, and the typed errors mapped to them.

Services raise :class:`Problem` subclasses (or map their domain errors to one in a single
place); validation errors list each offending field. Nothing ever answers with a bare
500 page: an unexpected exception becomes a 500 problem that hides the internals.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.db import is_transient
from shared.errors import STATUS_OF_KIND, DomainError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://ila.example.eu/problems/"


class Problem(Exception):
    status = 400
    title = "Bad request"
    slug = "bad-request"

    def __init__(self, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra or {}

    def body(self, instance: str | None = None) -> dict[str, Any]:
        return problem_body(self.status, self.title, self.detail, self.slug, instance, self.extra)


class BadRequest(Problem):
    pass


class Unauthorized(Problem):
    status, title, slug = 401, "Unauthorized", "unauthorized"


class Forbidden(Problem):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(Problem):
    status, title, slug = 404, "Not found", "not-found"


class Conflict(Problem):
    status, title, slug = 409, "Conflict", "conflict"


class PreconditionRequired(Problem):
    status, title, slug = 428, "Precondition required", "precondition-required"


class Unprocessable(Problem):
    status, title, slug = 422, "Unprocessable content", "unprocessable"


class ServiceUnavailable(Problem):
    status, title, slug = 503, "Service unavailable", "unavailable"


def problem_body(
    status: int,
    title: str,
    detail: str,
    slug: str,
    instance: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if extra:
        body.update(extra)
    return body


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=body["status"], media_type=PROBLEM_JSON, headers=headers)


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        where = loc[1:] if loc and loc[0] in {"body", "query", "path", "header"} else loc
        if err.get("type") == "json_invalid":
            where = []  # the location is a character offset: the body as a whole is at fault
        errors.append(
            {
                "field": ".".join(where) or "body",
                "in": loc[0] if loc else "body",
                "message": err.get("msg", "invalid"),
                "type": err.get("type", "invalid"),
            }
        )
    return errors


def _is_data_exception(exc: DBAPIError) -> bool:
    orig = exc.orig
    cause = getattr(orig, "__cause__", None)
    for candidate in (orig, cause):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str) and code.startswith("22"):  # class 22: data exception
            return True
        if type(candidate).__name__ in {"DataError", "OverflowError"}:
            return True
    return False


PROBLEM_OF_STATUS: dict[int, type[Problem]] = {
    400: BadRequest,
    404: NotFound,
    403: Forbidden,
    409: Conflict,
    422: Unprocessable,
}


def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("transient database error on %s %s: %s", request.method, request.url.path, exc)
    return problem_response(
        problem_body(
            503,
            "Service unavailable",
            "the database could not complete the request; nothing was changed, try again",
            "unavailable",
            request.url.path,
        ),
        {"Retry-After": "1"},
    )


def internal_error(request: Request) -> JSONResponse:
    """A 500 that hides the internals (they are in the log)."""
    return problem_response(
        problem_body(
            500,
            "Internal error",
            "the request could not be completed; nothing was changed",
            "internal",
            request.url.path,
        )
    )


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return problem_response(exc.body(request.url.path), headers)

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        status = STATUS_OF_KIND.get(exc.problem_kind(), 409)
        if status >= 500:
            log.error("domain invariant broken on %s %s: %s", request.method, request.url.path, exc)
            return internal_error(request)
        kind = PROBLEM_OF_STATUS[status]
        return problem_response(
            problem_body(
                status,
                kind.title,
                exc.problem_detail(),
                kind.slug,
                request.url.path,
                exc.problem_extra(),
            )
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc)
        fields = ", ".join(sorted({e["field"] for e in errors}))
        return problem_response(
            problem_body(
                422,
                "Validation failed",
                f"invalid input: {fields}" if fields else "invalid input",
                "validation",
                request.url.path,
                {"errors": errors},
            )
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {
            404: "Not found",
            405: "Method not allowed",
            401: "Unauthorized",
            413: "Content too large",
        }
        return problem_response(
            problem_body(
                exc.status_code,
                titles.get(exc.status_code, "HTTP error"),
                str(exc.detail),
                f"http-{exc.status_code}",
                request.url.path,
            ),
            dict(exc.headers) if exc.headers else None,
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        if _is_data_exception(exc):
            # a value PostgreSQL cannot take (out of range, malformed): the caller's input
            # got past validation; nothing was written, since the statement failed
            return problem_response(
                problem_body(
                    422,
                    "Unprocessable content",
                    "a value in the request is out of range or malformed",
                    "unprocessable",
                    request.url.path,
                )
            )
        if is_transient(exc):
            # a lost connection (the server restarted), a deadlock, a lock timeout: the
            # transaction was rolled back, and the same request may succeed in a moment
            return _unavailable(request, exc)
        log.exception("database error on %s %s", request.method, request.url.path)
        return internal_error(request)

    @app.exception_handler(PoolTimeout)
    async def _no_connection(request: Request, exc: PoolTimeout) -> JSONResponse:
        # every connection of the pool stayed busy for db_pool_timeout: nothing was done
        return _unavailable(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return internal_error(request)
