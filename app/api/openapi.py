"""The OpenAPI document, generated from the same route table that drives authorization."""

from __future__ import annotations

import re

from flask import jsonify

from app.api.framework import ROUTES, bp
from app.gate import requires

_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")
ERROR = {"$ref": "#/components/schemas/Error"}


def _path(rule: str) -> tuple[str, list[dict]]:
    params = []
    for converter, name in _PARAM.findall(rule):
        schema = {"type": "integer"} if converter == "int" else {"type": "string"}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    return "/api/v1" + _PARAM.sub(r"{\2}", rule), params


def document() -> dict:
    paths: dict[str, dict] = {}
    for r in ROUTES:
        path, params = _path(r.rule)
        op: dict = {
            "operationId": r.endpoint,
            "summary": r.summary,
            "parameters": params,
            "responses": {
                "200": {"description": "OK"},
                "400": {
                    "description": "invalid input",
                    "content": {"application/json": {"schema": ERROR}},
                },
            },
        }
        if r.action is None:
            op["security"] = []
        else:
            op["x-cargohold-authorization"] = {"action": r.action, "resource": r.resource}
            op["responses"]["401"] = {"description": "authentication required"}
            op["responses"]["403"] = {"description": "denied"}
        if r.body:
            props = {name: {"type": kind} for name, (kind, _req) in r.body.items()}
            required = [name for name, (_kind, req) in r.body.items() if req]
            op["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"type": "object", "properties": props, "required": required}
                    }
                },
            }
        paths.setdefault(path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Cargohold management API", "version": "1"},
        "components": {
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {
                        "errors": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "code": {"type": "string"},
                                    "message": {"type": "string"},
                                },
                            },
                        }
                    },
                }
            },
        },
        "security": [{"basic": []}, {"bearer": []}],
        "paths": paths,
    }


@bp.get("/openapi.json")
@requires(None, "public")
def openapi_json():
    return jsonify(document())
