"""The OpenAPI 3 document, built with apispec from the routes and their `document` records."""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import current_app, jsonify

from broadcast.web.api import bp
from broadcast.web.api.common import DOCS, EndpointDoc
from broadcast.web.api.schemas import Error

_CONVERTER = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")
_ERROR_TEXT = {
    400: "Malformed request (not JSON, CSRF)",
    401: "No or invalid Bearer token",
    403: "The role may not do this",
    404: "Not found (or belongs to another carrier)",
    409: "Not allowed in the current state",
    413: "File too large",
    422: "A field was refused; details name it",
}


def _operation(rule: Any, doc: EndpointDoc) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": doc.summary,
        "tags": [doc.tag],
        "description": "Roles: " + ", ".join(r.value for r in doc.roles),
        "responses": {},
    }
    params = [
        {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
        for name in _CONVERTER.findall(rule.rule)
    ]
    if doc.query is not None:
        params.append({"in": "query", "schema": doc.query})
    if params:
        op["parameters"] = params
    if doc.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": doc.body}},
        }
    if doc.multipart:
        op["requestBody"] = {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "kind": {"type": "string", "enum": ["list", "counts"]},
                            "sheet": {"type": "string"},
                            "progress_token": {"type": "string"},
                            "allow_shrink": {"type": "boolean", "default": False},
                        },
                        "required": ["file", "kind"],
                    }
                }
            },
        }
    ok: dict[str, Any] = {"description": "OK"}
    if doc.response is not None:
        schema: Any = doc.response
        if doc.many:
            schema = {"type": "array", "items": doc.response}
        ok["content"] = {doc.produces: {"schema": schema}}
    elif doc.produces != "application/json":
        ok["content"] = {doc.produces: {"schema": {"type": "string"}}}
    op["responses"][str(doc.status)] = ok
    for status in sorted(set(doc.errors) | {401}):
        op["responses"][str(status)] = {
            "description": _ERROR_TEXT.get(status, "Error"),
            "content": {"application/json": {"schema": "Error"}},
        }
    return op


def build_spec() -> dict[str, Any]:
    spec = APISpec(
        title="Loa API",
        version="1.0.0",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": "Mass SMS public alerts. Authenticate with 'Bearer <token>'."},
        servers=[{"url": "/"}],
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", schema=Error)
    paths: dict[str, dict[str, Any]] = {}
    for rule in current_app.url_map.iter_rules():
        doc = DOCS.get(rule.endpoint)
        if doc is None:
            continue
        path = _CONVERTER.sub(r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(rule, doc)
    for path, operations in sorted(paths.items()):
        spec.path(path=path, operations=operations)
    out = spec.to_dict()
    out["security"] = [{"bearer": []}]
    return out


@bp.get("/openapi.json")
def openapi():  # type: ignore[no-untyped-def]
    return jsonify(build_spec())
