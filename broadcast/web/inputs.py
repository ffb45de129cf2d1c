"""Limits every request meets before a view runs, stated once for the console and the API:
ids in URLs fit the database's id columns (MAX_ID), page numbers are bounded likewise, and a
body is at most `web.max_body_kb` except on the upload endpoints (`imports.max_file_mb`).

A value out of range is a 404 (no such row can exist) rather than an overflow deep in the
database driver.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, request
from werkzeug.routing import IntegerConverter, ValidationError

from broadcast.web.api.schemas import MAX_ID

UPLOAD_ENDPOINTS = frozenset({"api.upload", "carriers.upload"})


class IdConverter(IntegerConverter):
    """`<int:…>` in every route: 1..MAX_ID; anything else matches no route (404)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)

    def to_python(self, value: str) -> int:
        if len(value) > len(str(MAX_ID)):  # int() refuses 4,300+ digits with a ValueError
            raise ValidationError()
        return super().to_python(value)


def page_arg(size: int, name: str = "page") -> int:
    """The page number in the query string (1 when absent or not a number); beyond
    MAX_ID // size (no table holds that many rows) it is 404."""
    raw = request.args.get(name, "")
    if not raw.isascii() or not raw.isdigit():
        return 1
    if len(raw) > len(str(MAX_ID)) or not 1 <= int(raw) <= MAX_ID // size:
        abort(404)
    return int(raw)


def init_inputs(app: Flask, *, max_body_bytes: int) -> None:
    """Install the id converter (before any blueprint is registered) and the body cap."""
    app.url_map.converters["int"] = IdConverter

    @app.before_request
    def cap_body() -> None:
        if request.endpoint not in UPLOAD_ENDPOINTS:
            request.max_content_length = max_body_bytes
