"""One way to say no: `{"error": {"code", "message", "details"}}` under /api, a page elsewhere."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, render_template, request, session
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from broadcast.errors import (
    InvalidTransition,
    LoaError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
    VersionChanged,
)
from broadcast.web.refusals import field_label, repeats, say
from broadcast.web.templating import import_problem
from subscriber_import.errors import FileTooLarge, ImportRejected

STATUS_FOR = {
    FileTooLarge: 413,
    ImportRejected: 422,
    NotFound: 404,
    PermissionDenied: 403,
    InvalidTransition: 409,
    VersionChanged: 409,
    ValidationFailed: 422,
}

CODE_FOR_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


def error_response(
    status: int, message: str, *, code: str | None = None, details: Any = None
) -> Response:
    """The one JSON error body of the API."""
    body = {
        "error": {
            "code": code or CODE_FOR_STATUS.get(status, "error"),
            "message": message,
            "details": details if details is not None else {},
        }
    }
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="loa"'
    return response


def status_for(exc: LoaError) -> int:
    explicit = getattr(exc, "http_status", None)
    if explicit:
        return int(explicit)
    for cls in type(exc).__mro__:
        if cls in STATUS_FOR:
            return STATUS_FOR[cls]
    return 400


def refusal_text(exc: Exception) -> str:
    """A refusal as one line, in the reader's language: the message, then each field's
    problems, each said once (a detail that only repeats the message is left out). The core's
    `Reason`s are said from their key and parameters (broadcast.web.refusals); an import
    refusal from its code and details; anything else as it came."""
    raw = getattr(exc, "message", None) or (exc.args[0] if exc.args else "") or str(exc)
    if isinstance(exc, ImportRejected):
        return import_problem(exc.code, exc.details, str(exc))
    message = say(raw)
    details = getattr(exc, "details", None) or getattr(exc, "messages", None) or {}
    parts = []
    for key, value in dict(details).items():
        values = value if isinstance(value, list) else [value]
        said = [say(v) for v in values if not repeats(raw, v)]
        said = [v for v in said if v != message]
        if said:
            parts.append(f"{field_label(str(key))}: {'; '.join(said)}")
    return message + (" — " + " | ".join(parts) if parts else "")


def said_details(details: dict[str, Any], message: Any) -> dict[str, list[str]]:
    """Details for the error page, each problem in the reader's language under its field;
    one that only repeats the message is left out."""
    said: dict[str, list[str]] = {}
    for key, value in details.items():
        values = value if isinstance(value, list) else [value]
        kept = [say(v) for v in values if not repeats(message, v)]
        if kept:
            said[field_label(str(key))] = kept
    return said


def message_locale() -> str:
    """The language of an API error's `message`: the one its caller reads everything in
    (i18n.select_locale: a token caller's Accept-Language, else the token user's language; the
    console's own calls the console's). A caller not yet known gets its Accept-Language, else
    English. The `code` and the keys of `details` never change with it."""
    from flask_login import current_user

    from broadcast.web.i18n import LOCALES, select_locale

    if getattr(current_user, "is_authenticated", False):
        return select_locale()
    asked = request.accept_languages.best_match(LOCALES) if request.accept_languages else None
    return asked or "en"


# The console's words for HTTP errors (Werkzeug's texts are English): title and what to do.
HTTP_TEXTS = {
    400: (_l("Bad request"), _l("The request could not be read. Go back and try again.")),
    401: (_l("Please log in"), _l("Log in to open this page.")),
    403: (_l("Not allowed"), _l("Your role may not open this page or do this.")),
    404: (_l("Not found"), _l("There is no such page, or it is not yours to see.")),
    405: (
        _l("Not possible this way"),
        _l("This address cannot be opened like this. Use the buttons on the pages."),
    ),
    409: (_l("Conflict"), _l("The request does not fit the current state. Reload the page.")),
    413: (_l("Too large"), _l("The file or form is larger than allowed.")),
    415: (_l("Unsupported format"), _l("This kind of content is not accepted here.")),
    429: (_l("Too many attempts"), _l("Wait a minute, then try again.")),
    503: (_l("Temporarily unavailable"), _l("Try again in a minute.")),
}


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _page(status: int, title: str, message: str, details: Any = None) -> tuple[str, int]:
    return (
        render_template(
            "errors/error.html", status=status, title=title, message=message, details=details
        ),
        status,
    )


def init_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Any:
        if _wants_json():
            return error_response(400, exc.description, code="csrf_failed")
        return _page(400, _("The form has expired"), _("Reload the page and submit it again."))

    @app.errorhandler(ValidationError)
    def schema_error(exc: ValidationError) -> Any:
        if _wants_json():
            return error_response(422, "invalid input", details=exc.messages)
        return _page(422, _("Invalid input"), _("Some fields were refused."), exc.messages)

    @app.errorhandler(LoaError)
    def loa_error(exc: LoaError) -> Any:
        status = status_for(exc)
        details = dict(getattr(exc, "details", None) or {})
        import_id = getattr(exc, "import_id", None)
        if import_id is not None:
            details["import_id"] = import_id  # the refusal is on record as this import
        if _wants_json():
            with force_locale(message_locale()):
                message = refusal_text(exc)
            return error_response(status, message, code=exc.code, details=details)
        if isinstance(exc, ImportRejected):
            return _page(status, _("Refused"), refusal_text(exc))
        raw = exc.reason or str(exc)
        return _page(status, _("Refused"), say(raw), said_details(details, raw))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        if _wants_json():
            with force_locale(message_locale()):
                message = say(exc.description) if exc.description else exc.name
            if status == 401:
                message = "authentication required: send 'Authorization: Bearer <token>'"
            return error_response(status, message)
        known = HTTP_TEXTS.get(status)
        if known is None:
            return _page(status, exc.name, exc.description or "")
        title, message = known
        # Werkzeug's own English description is replaced; one our code wrote says more.
        custom = exc.description if exc.description != type(exc).description else None
        return _page(status, str(title), str(message), [say(custom)] if custom else None)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def database_away(exc: DBAPIError) -> Any:
        """The database is unreachable (restarting, failing over) or busy: nothing was done;
        the reader tries again in a moment, as with Redis away. Never a 500."""
        app.logger.warning(
            "database unavailable on %s %s: %s", request.method, request.path, exc.orig
        )
        if _wants_json():
            response = error_response(503, "the database is unavailable: try again in a minute")
            response.headers["Retry-After"] = "30"
            return response
        # No user can be looked up: the language is the session's (Redis), else Vietnamese.
        locale = session.get("locale") or "vi"
        with force_locale(locale):
            title, message = HTTP_TEXTS[503]
            # Straight from the Jinja environment: the context processors would load the user.
            page = app.jinja_env.get_template("errors/unavailable.html").render(
                path=request.path,
                locale=locale,
                title=str(title),
                message=str(message),
                again=_("Try again"),
            )
        return page, 503, {"Retry-After": "30"}

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if app.testing and app.config.get("PROPAGATE_UNEXPECTED", True):
            raise exc
        if _wants_json():
            return error_response(500, "internal error")
        return _page(500, _("Something went wrong"), _("The error has been logged."))
