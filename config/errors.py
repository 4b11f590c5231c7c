"""One error tree, one renderer: every failure leaves syndic as RFC 9457 problem+json.

Domain errors subclass the classes below and set a kebab-case ``slug``; the ``type`` member
of the body is ``/problems/<slug>``. Plain HTTP errors (routing 404/405, 413) use
``about:blank`` with the HTTP phrase as title, as RFC 9457 suggests.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, has_request_context, json, request
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

__all__ = [
    "AppError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "MalformedJSON",
    "NotFound",
    "PayloadTooLarge",
    "PreconditionFailed",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "ValidationFailed",
    "flatten_messages",
    "problem_response",
    "register_error_handlers",
    "request_id",
]

log = logging.getLogger("syndic.errors")

PROBLEM_JSON = "application/problem+json"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class AppError(Exception):
    """Base of every error syndic answers on purpose.

    ``detail`` is a human sentence for this occurrence; ``errors`` maps field names to
    messages; any other keyword becomes an extension member of the problem body
    (``allowed``, ``cycle``, ``etag`` ...), shown only when it carries data.
    """

    status = 500
    title = "Internal Server Error"
    slug = "internal-error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = dict(errors) if errors else None
        self.headers = dict(headers or {})
        self.extra = extra

    def to_problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"/problems/{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        body.update({k: v for k, v in self.extra.items() if v not in (None, [], {}, ())})
        return body


class BadRequest(AppError):
    status, title, slug = 400, "Bad Request", "bad-request"


class MalformedJSON(BadRequest):
    slug = "malformed-json"


class Unauthorized(AppError):
    status, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        super().__init__(detail or "A valid bearer token is required.", **kw)
        self.headers.setdefault("WWW-Authenticate", 'Bearer realm="syndic"')


class Forbidden(AppError):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(AppError):
    status, title, slug = 404, "Not Found", "not-found"


class Conflict(AppError):
    status, title, slug = 409, "Conflict", "conflict"


class PreconditionFailed(AppError):
    status, title, slug = 412, "Precondition Failed", "precondition-failed"


class PayloadTooLarge(AppError):
    status, title, slug = 413, "Content Too Large", "payload-too-large"


class UnsupportedMediaType(AppError):
    status, title, slug = 415, "Unsupported Media Type", "unsupported-media-type"


class ValidationFailed(AppError):
    status, title, slug = 422, "Unprocessable Content", "validation-failed"


class TooManyRequests(AppError):
    status, title, slug = 429, "Too Many Requests", "too-many-requests"


class ServiceUnavailable(AppError):
    status, title, slug = 503, "Service Unavailable", "service-unavailable"


# -- rendering ---------------------------------------------------------------------------


def request_id() -> str:
    """The id of the current request (from ``X-Request-Id`` when sane, else generated)."""
    if not has_request_context():
        return "-"
    rid: str | None = g.get("request_id")
    if rid is None:
        incoming = request.headers.get("X-Request-Id", "")
        rid = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        g.request_id = rid
    return rid


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    type_: str = "about:blank",
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status}
    body["detail"] = detail or title
    body.update({k: v for k, v in extra.items() if v not in (None, [], {}, ())})
    resp = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def _page() -> bool:
    """True for browser pages, which get HTML error pages instead of problem+json."""
    if not has_request_context():
        return False
    from config.web import is_page_request

    return is_page_request()


def render_app_error(err: AppError) -> Response:
    if _page():
        from config.web import render_error_page

        resp = render_error_page(err.status, err.title, err.detail)
        for key, value in err.headers.items():
            resp.headers[key] = value
        return resp
    resp = Response(json.dumps(err.to_problem()), status=err.status, mimetype=PROBLEM_JSON)
    for key, value in err.headers.items():
        resp.headers[key] = value
    return resp


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into ``{"field.sub": ["message", ...]}``.

    webargs nests them under the location (``{"json": {...}}``); callers drop that level.
    """
    out: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                name = prefix or "_schema"
            for k, v in flatten_messages(value, name).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(messages, list | tuple):
        if all(isinstance(m, str) for m in messages):
            out.setdefault(prefix or "_schema", []).extend(messages)
        else:
            for item in messages:
                for k, v in flatten_messages(item, prefix).items():
                    out.setdefault(k, []).extend(v)
    else:
        out.setdefault(prefix or "_schema", []).append(str(messages))
    return out


def render_http_exception(err: HTTPException) -> Response:
    """Werkzeug / webargs HTTP errors → problem+json.

    webargs attaches validation messages keyed by location: query-string problems are
    400 (the request is malformed), body problems 422 (the content is wrong).
    """
    data = getattr(err, "data", None) or {}
    code = err.code or 500
    headers = dict(data.get("headers") or {})
    if code == 405 and getattr(err, "valid_methods", None):
        headers["Allow"] = ", ".join(err.valid_methods)  # type: ignore[attr-defined]
    messages = data.get("messages")
    if messages:
        if messages == {"json": ["Invalid JSON body."]}:
            return render_app_error(MalformedJSON("The request body is not valid JSON."))
        locations = set(messages)
        errors: dict[str, list[str]] = {}
        for loc_messages in messages.values():
            for k, v in flatten_messages(loc_messages).items():
                errors.setdefault(k, []).extend(v)
        if locations & {"query", "view_args", "path", "headers", "cookies"}:
            # A repeated query parameter is one field for the caller: drop list indices.
            query_errors: dict[str, list[str]] = {}
            for key, msgs in errors.items():
                name = ".".join(p for p in key.split(".") if not p.isdigit()) or key
                query_errors.setdefault(name, []).extend(
                    m for m in msgs if m not in query_errors.get(name, [])
                )
            bad = BadRequest("Invalid query parameters.", errors=query_errors)
            return render_app_error(_with_headers(bad, headers))
        return render_app_error(
            _with_headers(ValidationFailed("The request body is invalid.", errors=errors), headers)
        )
    if code == 413:
        return render_app_error(
            PayloadTooLarge("The request body exceeds the maximum allowed size.")
        )
    title = err.name or "Error"
    detail = err.description if isinstance(err.description, str) else None
    if code >= 500:
        return _internal_error(err)
    if _page():
        from config.web import render_error_page

        resp = render_error_page(code, title, detail)
        resp.headers.update(headers)
        return resp
    return problem_response(code, title, detail, headers=headers)


def _with_headers(err: AppError, headers: Mapping[str, str]) -> AppError:
    err.headers.update(headers)
    return err


def _internal_error(exc: BaseException) -> Response:
    rid = request_id()
    log.error("unhandled error, request_id=%s", rid, exc_info=exc)
    if _page():
        from config.web import render_error_page

        return render_error_page(500, "Internal Server Error", f"Request id: {rid}")
    return problem_response(
        500,
        "Internal Server Error",
        "An unexpected error occurred. Quote the request id when reporting it.",
        type_="/problems/internal-error",
        request_id=rid,
    )


def register_error_handlers(app: Flask) -> None:
    """Install the handlers (flask-smorest's HTTPException hook is overridden in config.api)."""
    from config.db import db

    def _rollback() -> None:
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the original error is what matters
            log.exception("rollback after an error failed")

    @app.errorhandler(AppError)
    def _app_error(err: AppError) -> Response:
        return render_app_error(err)

    @app.errorhandler(StaleDataError)
    def _stale(err: StaleDataError) -> Response:
        _rollback()
        return render_app_error(
            PreconditionFailed("The object was changed by someone else; reload it and retry.")
        )

    @app.errorhandler(IntegrityError)
    def _integrity(err: IntegrityError) -> Response:
        _rollback()
        log.info("integrity error answered 409, request_id=%s: %s", request_id(), err.orig)
        return render_app_error(Conflict("The change conflicts with existing data."))

    @app.errorhandler(DataError)
    def _data(err: DataError) -> Response:
        _rollback()
        log.info("data error answered 400, request_id=%s: %s", request_id(), err.orig)
        return render_app_error(BadRequest("A value is out of the range the database accepts."))

    @app.errorhandler(OperationalError)
    def _operational(err: OperationalError) -> Response:
        _rollback()
        log.error("database unavailable, request_id=%s", request_id(), exc_info=err)
        return render_app_error(
            ServiceUnavailable(
                "The database is unavailable; retry shortly.", request_id=request_id()
            )
        )

    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> Response:
        if isinstance(err, HTTPException):
            return render_http_exception(err)
        _rollback()
        return _internal_error(err)
