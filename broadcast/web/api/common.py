"""Helpers every API module uses: JSON in through a schema, JSON out, endpoint documentation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import request
from marshmallow import Schema

from broadcast.errors import ValidationFailed
from broadcast.models import Role
from broadcast.web.security import roles_required

F = TypeVar("F", bound=Callable[..., Any])


class BadRequest(ValidationFailed):
    """The body is not a JSON object at all (as opposed to a field being refused)."""

    code = "bad_json"
    http_status = 400


@dataclass
class EndpointDoc:
    summary: str
    roles: tuple[Role, ...]
    tag: str
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    response: type[Schema] | None = None
    many: bool = False
    status: int = 200
    multipart: bool = False
    produces: str = "application/json"
    errors: tuple[int, ...] = field(default=(401, 403))


DOCS: dict[str, EndpointDoc] = {}


def document(summary: str, *, roles: tuple[Role, ...], tag: str, **kwargs: Any) -> Callable[[F], F]:
    """The one declaration of an endpoint's roles: enforced (403 for other roles, 401 for no
    one) and recorded for the OpenAPI document (built from these records)."""

    def decorate(view: F) -> F:
        DOCS[f"api.{view.__name__}"] = EndpointDoc(summary, roles, tag, **kwargs)
        return roles_required(*roles)(view)

    return decorate


def load_json(schema: Schema) -> dict[str, Any]:
    """Parse the body as a JSON object and load it; 400 if not JSON, 422 naming bad fields."""
    try:
        data = request.get_json(force=True, silent=True)
    except RecursionError:  # "[[[[…" nested deeper than the parser goes
        data = None
    if data is None:
        raise BadRequest("the request body must be JSON", {"body": ["not valid JSON"]})
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object", {"body": ["not an object"]})
    where = _lone_surrogate(data)
    if where is not None:
        raise BadRequest(
            "the request body holds a lone UTF-16 surrogate (\\ud800-\\udfff), not text",
            {where or "body": ["not valid Unicode text"]},
        )
    return schema.load(data)


def _lone_surrogate(value: Any, path: str = "") -> str | None:
    """Where the parsed JSON holds a lone surrogate (JSON allows "\\ud800"; no database
    stores it), as a dotted path; None when it holds none."""
    if isinstance(value, str):
        return path if any("\ud800" <= c <= "\udfff" for c in value) else None
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        here = f"{path}.{key}" if path else str(key)
        if isinstance(key, str) and _lone_surrogate(key) is not None:
            return path or "body"
        found = _lone_surrogate(item, here)
        if found is not None:
            return found
    return None


def load_query(schema: Schema) -> dict[str, Any]:
    return schema.load(request.args.to_dict())
