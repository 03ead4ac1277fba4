"""How management routes are declared: each names the action and resource it needs, so one
table drives authorization, the OpenAPI document and the authorization test."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Blueprint, jsonify
from werkzeug.exceptions import RequestEntityTooLarge

from app.access import SITE, OrgResource, RegistryResource, authorize
from app.access.policy import ORG_READ
from app.auth.credentials import current_caller
from app.registry import limits
from app.registry.errors import RegistryError
from app.web import read_json_body, refuse_large_body

bp = Blueprint("api", __name__, url_prefix="/api/v1")


@dataclass(frozen=True)
class ApiRoute:
    method: str
    rule: str
    endpoint: str
    action: str | None  # None: public (the handler checks what it needs itself)
    resource: str  # "site", "org", "registry" or "public"
    summary: str
    body: dict = field(default_factory=dict)  # JSON fields: name -> (type, required)


ROUTES: list[ApiRoute] = []


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, headers: dict | None = None):
    resp = jsonify({"errors": [{"code": code, "message": message}]})
    resp.status_code = status
    resp.headers.update(headers or {})
    return resp


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    return error_response(exc.status, exc.code, exc.message, exc.headers)


@bp.errorhandler(RegistryError)
def _registry_error(exc: RegistryError):
    headers = dict(exc.headers)
    if exc.code == "UNAUTHORIZED":
        headers["WWW-Authenticate"] = 'Basic realm="Cargohold"'
    return error_response(exc.status, exc.code, exc.detail or exc.code.lower(), headers)


@bp.errorhandler(LookupError)
def _not_found(exc: LookupError):
    return error_response(404, "NOT_FOUND", str(exc).strip("'\""))


@bp.errorhandler(ValueError)
def _invalid(exc: ValueError):
    return error_response(400, "INVALID", str(exc))


@bp.before_request
def _bounded_body() -> None:
    # Every management endpoint takes at most a small JSON or form body; a larger one is
    # refused before a byte of it is read, whoever sends it.
    refuse_large_body()


@bp.errorhandler(limits.InputRejected)
def _input_rejected(exc: limits.InputRejected):
    if isinstance(exc, limits.TooLarge):
        return error_response(413, "TOO_LARGE", str(exc))
    return error_response(400, "INVALID", str(exc))


@bp.errorhandler(RequestEntityTooLarge)
def _form_too_large(_exc):
    return error_response(413, "TOO_LARGE", "the request body is too large")


@bp.errorhandler(404)
def _no_route(_exc):
    return error_response(404, "NOT_FOUND", "no such endpoint")


@bp.errorhandler(405)
def _no_method(_exc):
    return error_response(405, "METHOD_NOT_ALLOWED", "method not allowed on this endpoint")


def json_body() -> dict:
    data = read_json_body()
    if not isinstance(data, dict):
        raise ApiError(400, "INVALID", "the request body must be a JSON object")
    return data


def field_of(data: dict, name: str, kind: type, default=None, required: bool = False):
    if name not in data or data[name] is None:
        if required:
            raise ApiError(400, "INVALID", f"{name!r} is required")
        return default
    value = data[name]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise ApiError(400, "INVALID", f"{name!r} must be a {kind.__name__}")
    return value


def _resource(kind: str, kwargs: dict):
    if kind == "org":
        return OrgResource(kwargs["org"])
    if kind == "registry":
        return RegistryResource(kwargs["org"], kwargs["registry"])
    return SITE


def route(
    method: str,
    rule: str,
    action: str | None,
    resource: str,
    body: dict | None = None,
) -> Callable:
    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def view(**kwargs):
            if action is not None:
                caller = current_caller()
                if caller.access is not None:
                    # Registry tokens carry repository scopes for /v2, nothing more.
                    raise ApiError(
                        401,
                        "UNAUTHORIZED",
                        "registry tokens are for /v2; use a password or an access token",
                        {"WWW-Authenticate": 'Basic realm="Cargohold"'},
                    )
                if not caller.principal.authenticated:
                    raise ApiError(
                        401,
                        "UNAUTHORIZED",
                        "authentication required",
                        {"WWW-Authenticate": 'Basic realm="Cargohold"'},
                    )
                target = _resource(resource, kwargs)
                if not authorize(caller.principal, action, target):
                    # Outsiders learn nothing of an organisation; members learn they lack a role.
                    if isinstance(target, OrgResource) and not authorize(
                        caller.principal, ORG_READ, target
                    ):
                        raise ApiError(404, "NOT_FOUND", f"organisation {target.org!r} not found")
                    raise ApiError(403, "DENIED", f"{caller.principal.name} may not {action}")
            return fn(**kwargs)

        summary = (fn.__doc__ or fn.__name__).strip().splitlines()[0]
        ROUTES.append(ApiRoute(method, rule, fn.__name__, action, resource, summary, body or {}))
        bp.add_url_rule(rule, endpoint=fn.__name__, view_func=view, methods=[method])
        return view

    return decorate
