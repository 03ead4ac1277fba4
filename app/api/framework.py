"""How management routes are declared: each names the action and resource it needs, so one
table drives authorization, the OpenAPI document and the authorization test."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from app.errors import CoreError
from app.gate import requires
from app.web import BASIC_CHALLENGE, read_json_body, refuse_large_body

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@dataclass(frozen=True)
class ApiRoute:
    method: str
    rule: str
    endpoint: str
    action: str | None  # None: public (the handler checks what it needs itself)
    resource: str  # the gate's resource kind: "site", "org", "registry" or "public"
    summary: str
    body: dict = field(default_factory=dict)  # JSON fields: name -> (type, required)


ROUTES: list[ApiRoute] = []


class ApiError(CoreError):
    """A refusal particular to one management route, with its own code."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message, headers=headers)
        self.status, self.code = status, code


def error_response(status: int, code: str, message: str, headers: dict | None = None):
    resp = jsonify({"errors": [{"code": code, "message": message}]})
    resp.status_code = status
    resp.headers.update(headers or {})
    return resp


@bp.errorhandler(CoreError)
def _core_error(exc: CoreError):
    """Every refusal as /api/v1 JSON; a 401 carries the Basic challenge."""
    headers = {k: v for k, v in exc.headers.items() if v and k != "WWW-Authenticate"}
    if exc.status == 401:
        headers["WWW-Authenticate"] = BASIC_CHALLENGE
    return error_response(exc.status, exc.code, exc.message, headers)


@bp.before_request
def _bounded_body() -> None:
    # Every management endpoint takes at most a small JSON or form body; a larger one is
    # refused before a byte of it is read, whoever sends it.
    refuse_large_body()
    _refuse_nul()


def _refuse_nul() -> None:
    """A NUL in a path segment or query argument names nothing, and PostgreSQL text cannot hold
    one: its driver would raise instead of finding no row."""
    path_values = [v for v in (request.view_args or {}).values() if isinstance(v, str)]
    if b"%00" in request.query_string or any("\x00" in v for v in path_values):
        raise ApiError(400, "INVALID", "names and query arguments cannot hold a NUL character")


@bp.errorhandler(RequestEntityTooLarge)
def _form_too_large(_exc):
    return error_response(413, "TOO_LARGE", "the request body is too large")


@bp.errorhandler(404)
@bp.errorhandler(405)
def unmatched(exc: HTTPException):
    """No route at this URL (404), or none for this method (405, with the Allow header naming
    those there are). The app answers every /api/v1 URL no route matches with it too: a routing
    error belongs to no blueprint, so this blueprint's handler alone would never see one."""
    if isinstance(exc, MethodNotAllowed):
        allow = {"Allow": ", ".join(exc.valid_methods)} if exc.valid_methods else None
        message = "method not allowed on this endpoint"
        return error_response(405, "METHOD_NOT_ALLOWED", message, allow)
    return error_response(404, "NOT_FOUND", "no such endpoint")


def json_body() -> dict:
    data = read_json_body()
    if not isinstance(data, dict):
        raise ApiError(400, "INVALID", "the request body must be a JSON object")
    if _holds_nul(data):
        raise ApiError(400, "INVALID", "strings in the body cannot hold a NUL character")
    return data


def _holds_nul(value) -> bool:
    """Whether a string anywhere in the parsed body (its depth is bounded) holds a NUL, which
    PostgreSQL text cannot store."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def field_of(data: dict, name: str, kind: type, default=None, required: bool = False):
    if name not in data or data[name] is None:
        if required:
            raise ApiError(400, "INVALID", f"{name!r} is required")
        return default
    value = data[name]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise ApiError(400, "INVALID", f"{name!r} must be a {kind.__name__}")
    return value


def route(
    method: str,
    rule: str,
    action: str | None,
    resource: str,
    body: dict | None = None,
) -> Callable:
    """Declare a management route: its requirement (an action on a resource kind of the gate,
    or action None for a public route), its OpenAPI entry, its URL rule."""

    def decorate(fn: Callable) -> Callable:
        view = requires(action, resource if action is not None else "public")(fn)
        summary = (fn.__doc__ or fn.__name__).strip().splitlines()[0]
        ROUTES.append(ApiRoute(method, rule, fn.__name__, action, resource, summary, body or {}))
        bp.add_url_rule(rule, endpoint=fn.__name__, view_func=view, methods=[method])
        return view

    return decorate
