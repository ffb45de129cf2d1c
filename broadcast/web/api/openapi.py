"""The OpenAPI 3 document, built with apispec from the routes and their `document` records."""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import current_app, jsonify
from flask.typing import ResponseReturnValue
from werkzeug.routing import IntegerConverter

from broadcast import text as textrules
from broadcast.web.api import bp
from broadcast.web.api.common import DOCS, EndpointDoc
from broadcast.web.api.schemas import MAX_ID, Error
from broadcast.web.uploads import TOKEN_RE

_CONVERTER = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")
_ERROR_TEXT = {
    400: "Malformed request (not JSON, not an object, CSRF)",
    401: "No or invalid Bearer token",
    403: "The role may not do this",
    404: "Not found (or belongs to another carrier, or an id out of 1..2^31-1)",
    409: "Not allowed in the current state",
    413: "Body larger than web.max_body_kb (uploads: imports.max_file_mb)",
    422: "A field was refused; details name it",
}


def _path_parameter(rule: Any, name: str) -> dict[str, Any]:
    converter = rule._converters.get(name)
    if isinstance(converter, IntegerConverter):
        schema: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_ID, "example": 1}
    elif name == "token":
        schema = {"type": "string", "pattern": TOKEN_RE.pattern}
    else:
        schema = {"type": "string", "minLength": 1, "maxLength": textrules.CODE.max_length}
    return {"in": "path", "name": name, "required": True, "schema": schema}


def _operation(rule: Any, doc: EndpointDoc) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": doc.summary,
        "tags": [doc.tag],
        "description": "Roles: " + ", ".join(r.value for r in doc.roles),
        "responses": {},
    }
    path_names = _CONVERTER.findall(rule.rule)
    params = [_path_parameter(rule, name) for name in path_names]
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
                            "sheet": {"type": "string", "maxLength": textrules.SHEET.max_length},
                            "progress_token": {"type": "string", "pattern": TOKEN_RE.pattern},
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
    errors = set(doc.errors) | {401}
    if path_names:
        errors.add(404)
    if doc.query is not None:
        errors.add(422)
    if doc.body is not None or doc.multipart:
        errors |= {400, 413, 422}
    for status in sorted(errors):
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
def openapi() -> ResponseReturnValue:
    return jsonify(build_spec())
