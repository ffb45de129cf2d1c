"""Marshmallow schemas of the API: what comes in is validated here, what goes out is shaped here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from broadcast import replies
from broadcast import text as textrules
from broadcast.alerts import (
    CERTAINTY,
    DERIVE_KINDS,
    SEVERITY,
    URGENCY,
    alert_preview,
    allowed_actions,
)
from broadcast.models import Alert, AlertCategory, AlertStatus, NetworkState, Role
from broadcast.network import MAX_AREAS_PER_CHANGE
from broadcast.policy import as_utc
from broadcast.replies import keywords_from
from broadcast.text import TextRule

# The id columns a client can name are INTEGER on PostgreSQL: a larger id cannot exist, and
# sending it to the database would be an error there, not an empty answer.
MAX_ID = 2**31 - 1
FIRST_YEAR, LAST_YEAR = 2000, 2999  # times outside are typing mistakes, and overflow in UTC


class Strict(Schema):
    class Meta:
        unknown = RAISE


class _TextRuleValidator(validate.Validator):
    def __init__(self, rule: TextRule) -> None:
        self.rule = rule

    def __call__(self, value: str) -> str:
        found = textrules.problems(value, self.rule)
        if found:
            raise ValidationError(found)
        return value


def Text(rule: TextRule, **kwargs: Any) -> fields.String:
    """A string field under one of broadcast.text's rules (documented as maxLength)."""
    metadata = {"maxLength": rule.max_length}
    if rule.required:
        metadata["minLength"] = 1
    return fields.String(validate=_TextRuleValidator(rule), metadata=metadata, **kwargs)


def Code(**kwargs: Any) -> fields.String:
    """An area, carrier or similar code."""
    return Text(textrules.CODE, **kwargs)


def Id(**kwargs: Any) -> fields.Integer:
    """A row id: 1..MAX_ID, like `<int:…>` in URLs (broadcast.web.inputs)."""
    return fields.Integer(validate=validate.Range(min=1, max=MAX_ID), **kwargs)


class Moment(fields.AwareDateTime):
    """An ISO 8601 time with its offset, between FIRST_YEAR and LAST_YEAR."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            year = moment.astimezone(UTC).year
        except (OverflowError, ValueError):
            year = 0
        if not FIRST_YEAR <= year <= LAST_YEAR:
            raise ValidationError(f"must be between the years {FIRST_YEAR} and {LAST_YEAR}")
        return moment


class ErrorBody(Schema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    details = fields.Dict()


class Error(Schema):
    error = fields.Nested(ErrorBody, required=True)


class Me(Schema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    role = fields.Function(lambda u: u.role.value)
    carrier = fields.String(attribute="carrier_code", allow_none=True)


MAX_AREAS = 2000  # more than the communes of a province
MAX_CARRIERS = 50


class PreviewIn(Strict):
    text = Text(textrules.SMS_PREVIEW, required=True)
    fold = fields.Boolean(load_default=False)
    areas = fields.List(Code(), load_default=list, validate=validate.Length(max=MAX_AREAS))
    carriers = fields.List(Code(), load_default=list, validate=validate.Length(max=MAX_CARRIERS))
    category = fields.String(
        load_default="information",
        validate=validate.OneOf([c.value for c in AlertCategory]),
    )
    resend_of = Id(
        load_default=None,
        allow_none=True,
        metadata={"description": "Editing a resend: count that alert's unreached numbers"},
    )


class TextInfo(Schema):
    text = fields.String()
    encoding = fields.String()
    units = fields.Integer()
    parts = fields.Integer()
    chars_left = fields.Integer()
    ucs2_chars = fields.List(fields.String())


class CarrierAudience(Schema):
    carrier = fields.String()
    name = fields.String()
    audience = fields.Integer(allow_none=True)
    reported = fields.Integer(allow_none=True)
    eta_seconds = fields.Float(allow_none=True)


class PreviewWarning(Schema):
    code = fields.String()
    carrier = fields.String()
    area = fields.String(metadata={"description": "network_degraded / network_down: the area"})
    audience = fields.Integer()
    reported = fields.Integer()
    message = fields.String()


class RuleNote(Schema):
    code = fields.String()
    message = fields.String()


class PreviewOut(Schema):
    preview = fields.Nested(TextInfo)
    folded = fields.Nested(TextInfo)
    audience = fields.List(fields.Nested(CarrierAudience))
    audience_total = fields.Integer(allow_none=True)
    eta_seconds = fields.Float(allow_none=True)
    audience_available = fields.Boolean()
    warnings = fields.List(fields.Nested(PreviewWarning))
    rules = fields.List(fields.Nested(RuleNote))
    placeholders = fields.List(fields.String())


class AreaOut(Schema):
    code = fields.String()
    name = fields.String()
    level = fields.String()
    parent = fields.String(allow_none=True)


class CarrierOut(Schema):
    code = fields.String()
    name = fields.String()
    mps = fields.Integer()
    active = fields.Boolean()


class UserOut(Schema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    role = fields.Function(lambda u: Role(u.role).value)
    carrier = fields.Function(lambda u: u.carrier.code if u.carrier else None, allow_none=True)
    active = fields.Boolean()


class UserIn(Strict):
    username = Text(textrules.USERNAME, required=True)
    password = Text(textrules.PASSWORD, required=True, load_only=True)
    role = fields.String(required=True, validate=validate.OneOf([r.value for r in Role]))
    display_name = Text(textrules.DISPLAY_NAME, load_default="")
    carrier = Code(load_default=None, allow_none=True)


class UserPatch(Strict):
    active = fields.Boolean()
    password = Text(textrules.PASSWORD, load_only=True)
    display_name = Text(textrules.DISPLAY_NAME)
    # Between staff roles only (a carrier account stays one); ends the user's sessions.
    role = fields.String(validate=validate.OneOf([r.value for r in Role]))


class TokenIn(Strict):
    name = Text(textrules.TOKEN_NAME, required=True)
    # Only one's own id is accepted: nobody makes a token that acts as someone else.
    user_id = Id(load_default=None, allow_none=True)
    # Absent: web.token_expiry_days; null: the token never expires.
    expires_in_days = fields.Integer(
        strict=False, allow_none=True, validate=validate.Range(min=1, max=3650)
    )


class TokenOut(Schema):
    id = fields.Integer()
    name = fields.String()
    prefix = fields.String()
    user = fields.Function(lambda t: t.user.username)
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True)
    expires_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)


class TokenCreated(TokenOut):
    token = fields.String()


class BrandnameIn(Strict):
    name = Text(textrules.BRANDNAME, required=True)


class BrandnameOut(Schema):
    id = fields.Integer()
    name = fields.String()
    active = fields.Boolean()


class TestRecipientIn(Strict):
    msisdn = Text(textrules.MSISDN, required=True)
    carrier = Code(required=True)
    name = Text(textrules.RECIPIENT_NAME, load_default="")


class DrillScheduleIn(Strict):
    title = Text(textrules.TITLE, required=True)
    body = Text(textrules.SMS_BODY, required=True)
    areas = fields.List(Code(), required=True, validate=validate.Length(max=MAX_AREAS))
    carriers = fields.List(Code(), required=True, validate=validate.Length(max=MAX_CARRIERS))
    brandname = Text(textrules.BRANDNAME, required=True)
    fold = fields.Boolean(load_default=False)
    day_of_month = fields.Integer(
        required=True, validate=validate.Range(min=1, max=28), metadata={"example": 15}
    )
    at_time = fields.String(
        required=True,
        validate=validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$"),
        metadata={"example": "09:00", "description": "local time (settings.timezone)"},
    )
    lead_days = fields.Integer(load_default=7, validate=validate.Range(min=1, max=27))


class DrillScheduleOut(Schema):
    id = fields.Integer()
    title = fields.String()
    body = fields.String()
    fold = fields.Boolean()
    brandname = fields.String()
    areas = fields.List(fields.String())
    carriers = fields.List(fields.String())
    day_of_month = fields.Integer()
    at_time = fields.String()
    lead_days = fields.Integer()
    next_at = fields.String(metadata={"description": "the next drill's time (UTC, ISO 8601)"})
    active = fields.Boolean()
    last_alert_id = fields.Integer(allow_none=True)


class TestRecipientOut(Schema):
    id = fields.Integer()
    msisdn = fields.String()
    carrier = fields.Function(lambda t: t.carrier_code)
    name = fields.String()


CATEGORIES = [c.value for c in AlertCategory]


class ReplyKeywordIn(Strict):
    """An answer people may text back: matched folded and case-insensitively on the reply's
    first words; `help` marks a call for help (its numbers go to rescue teams)."""

    word = Text(replies.WORD, required=True)
    label = Text(replies.LABEL, required=True)
    help = fields.Boolean(load_default=False)


class ReplyKeywordOut(Schema):
    word = fields.String()
    label = fields.String()
    help = fields.Boolean()


class AlertIn(Strict):
    title = Text(textrules.TITLE, required=True)
    body = Text(textrules.SMS_BODY, required=True)
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    areas = fields.List(Code(), required=True, validate=validate.Length(max=MAX_AREAS))
    carriers = fields.List(Code(), required=True, validate=validate.Length(max=MAX_CARRIERS))
    brandname = Text(textrules.BRANDNAME, required=True)
    fold = fields.Boolean(load_default=False)
    schedule_at = Moment(load_default=None, allow_none=True)
    expires_at = Moment(load_default=None, allow_none=True)
    event = Text(textrules.EVENT, load_default="")
    urgency = fields.String(load_default="Unknown", validate=validate.OneOf(URGENCY))
    severity = fields.String(load_default="Unknown", validate=validate.OneOf(SEVERITY))
    certainty = fields.String(load_default="Unknown", validate=validate.OneOf(CERTAINTY))
    instruction = Text(textrules.INSTRUCTION, load_default="")
    web = Text(textrules.WEB, load_default="")
    # Absent: the templates' default ("1" safe, "2" need help); [] asks for no keywords.
    reply_keywords = fields.List(
        fields.Nested(ReplyKeywordIn),
        load_default=lambda: [k.as_dict() for k in replies.DEFAULT_KEYWORDS],
        validate=validate.Length(max=replies.MAX_KEYWORDS),
    )


class AreaRef(Schema):
    code = fields.String()
    name = fields.String()


class CarrierRef(Schema):
    code = fields.String()


class UtcTime(fields.String):
    """A stored time as ISO 8601 in UTC (SQLite hands back naive UTC); None stays None."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return as_utc(value).isoformat() if value is not None else None


class EnumValue(fields.String):
    """An enum column as its value."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else str(getattr(value, "value", value))


def _allowed(alert: Alert) -> list[str]:
    return [a.value for a in allowed_actions(AlertStatus(alert.status))]


class AlertOut(Schema):
    """An alert as the API and the console show it, dumped from the Alert row."""

    id = fields.Integer()
    identifier = fields.String()
    title = fields.String()
    body = fields.String()
    text = fields.Function(lambda a: alert_preview(a).text, metadata={"type": "string"})
    encoding = fields.Function(lambda a: alert_preview(a).encoding, metadata={"type": "string"})
    parts = fields.Integer()
    fold = fields.Boolean()
    category = EnumValue()
    test = fields.Function(
        lambda a: AlertCategory(a.category) == AlertCategory.TEST, metadata={"type": "boolean"}
    )
    drill = fields.Function(
        lambda a: AlertCategory(a.category) == AlertCategory.EXERCISE,
        metadata={"type": "boolean", "description": "an exercise alert: only the drill group"},
    )
    status = EnumValue()
    allowed_actions = fields.Function(
        _allowed, metadata={"type": "array", "items": {"type": "string"}}
    )
    msg_type = EnumValue()
    references_id = fields.Integer(allow_none=True)
    resend_of_id = fields.Integer(
        allow_none=True, metadata={"description": "A resend: the alert whose unreached it goes to"}
    )
    brandname = fields.String()
    areas = fields.List(fields.Nested(AreaRef))
    carriers = fields.Pluck(CarrierRef, "code", many=True)
    event = fields.String()
    urgency = fields.String()
    severity = fields.String()
    certainty = fields.String()
    instruction = fields.String()
    web = fields.String()
    reply_keywords = fields.Function(
        lambda a: [k.as_dict() for k in keywords_from(a.reply_keywords)],
        metadata={"type": "array", "items": {"type": "object"}},
    )
    schedule_at = UtcTime(allow_none=True)
    expires_at = UtcTime(allow_none=True)
    waive_quiet_hours = fields.Boolean()
    waive_daily_cap = fields.Boolean()
    version = fields.Integer()
    created_by = fields.Integer()
    approved_by = fields.Integer(allow_none=True)
    created_at = UtcTime(allow_none=True)
    submitted_at = UtcTime(allow_none=True)
    approved_at = UtcTime(allow_none=True)
    started_at = UtcTime(allow_none=True)
    completed_at = UtcTime(allow_none=True)
    cancelled_at = UtcTime(allow_none=True)


class AlertListQuery(Strict):
    status = fields.String(
        load_default=None, validate=validate.OneOf([s.value for s in AlertStatus])
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class ApproveIn(Strict):
    # The version the approver read (AlertOut.version); another one is refused with 409.
    version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    waive_quiet_hours = fields.Boolean(load_default=False)
    waive_daily_cap = fields.Boolean(load_default=False)


class RejectIn(Strict):
    reason = Text(textrules.REASON, required=True)


class DeriveIn(Strict):
    kind = fields.String(required=True, validate=validate.OneOf(DERIVE_KINDS))
    # A resend only: some of the original's areas and carriers (default: all of them).
    areas = fields.List(Code(), validate=validate.Length(max=1000))
    carriers = fields.List(Code(), validate=validate.Length(max=50))


class CarrierProgress(Schema):
    total = fields.Integer()
    pending = fields.Integer()
    queued = fields.Integer()
    submitted = fields.Integer()
    delivered = fields.Integer()
    failed = fields.Integer()
    cancelled = fields.Integer()
    rate_now = fields.Float()
    rate_limit = fields.Float(
        metadata={"description": "Segments/s the senders pace at now: the carrier's limit, "
                  "or less while its SMSC answers ESME_RTHROTTLED / ESME_RMSGQFUL"}
    )  # fmt: skip
    eta_seconds = fields.Float(allow_none=True)
    percent = fields.Float()


class AreaReach(Schema):
    code = fields.String()
    name = fields.String()
    total = fields.Integer()
    delivered = fields.Integer()
    failed = fields.Integer(metadata={"description": "undeliverable, expired or rejected"})


class NetworkStatusOut(Schema):
    carrier = fields.String()
    carrier_name = fields.String()
    code = fields.String()
    name = fields.String()
    state = fields.String()
    note = fields.String()
    set_at = fields.DateTime(allow_none=True)
    set_by = fields.String(allow_none=True)


class NetworkAreaIn(Strict):
    code = Code(required=True)
    state = fields.String(required=True, validate=validate.OneOf([s.value for s in NetworkState]))
    note = Text(textrules.NETWORK_NOTE, load_default="")


class NetworkStatusIn(Strict):
    areas = fields.List(
        fields.Nested(NetworkAreaIn),
        required=True,
        validate=validate.Length(min=1, max=MAX_AREAS_PER_CHANGE),
    )


class ProgressQuery(Strict):
    """history=true also returns the chart's series the server kept (on the first poll)."""

    history = fields.Boolean(load_default=False)


class FailureReasonOut(Schema):
    reason = fields.String()  # in the reader's language
    count = fields.Integer()


class ProgressPointOut(Schema):
    at = fields.Float()  # unix seconds
    rate = fields.Float()  # messages (segments) per second
    done = fields.Integer()  # recipients with a final state


class ProgressOut(Schema):
    reached = fields.Integer()
    failed = fields.Integer()
    failure_reasons = fields.List(fields.Nested(FailureReasonOut))
    history = fields.List(fields.Nested(ProgressPointOut))  # with ?history=true
    id = fields.Integer()
    status = fields.String()
    test = fields.Boolean()
    drill = fields.Boolean()  # an exercise alert: only the drill group
    carriers = fields.Dict(keys=fields.String(), values=fields.Nested(CarrierProgress))
    total = fields.Integer()
    done = fields.Integer()
    percent = fields.Float()
    rate_now = fields.Float()
    eta_seconds = fields.Float(allow_none=True)
    at = fields.Float()
    areas = fields.List(
        fields.Nested(AreaReach),
        metadata={"description": "Reach per area, lowest share delivered first"},
    )
    network = fields.List(
        fields.Nested(NetworkStatusOut),
        metadata={"description": "Targeted areas a chosen carrier reports degraded or down"},
    )


class TemplateQuery(Strict):
    """Names in this language when the template has them (vi or en), else in Vietnamese."""

    language = fields.String(load_default="vi", validate=validate.Length(max=8))


class TemplateOut(Schema):
    key = fields.String()
    name = fields.String()
    category = fields.String()
    fields_ = fields.List(fields.String(), data_key="fields", attribute="fields")
    event = fields.String()
    urgency = fields.String()
    severity = fields.String()
    certainty = fields.String()
    reply_keywords = fields.List(fields.Nested(ReplyKeywordOut))


class AreaReplies(Schema):
    code = fields.String(allow_none=True, metadata={"description": "null: area not known"})
    name = fields.String()
    total = fields.Integer()
    by_keyword = fields.Dict(keys=fields.String(), values=fields.Integer())


class RepliesOut(Schema):
    """Replies attributed to an alert; `by_keyword` has every keyword of the alert and
    `other`, zeros included; areas ranked by replies."""

    total = fields.Integer()
    by_keyword = fields.Dict(keys=fields.String(), values=fields.Integer())
    by_area = fields.List(fields.Nested(AreaReplies))


class ImportOut(Schema):
    id = fields.Integer()
    carrier = fields.String()
    kind = fields.String()
    status = fields.String()
    filename = fields.String()
    started_at = fields.DateTime(allow_none=True)
    finished_at = fields.DateTime(allow_none=True)
    error = fields.String(allow_none=True)
    report = fields.Dict()
    has_rejects = fields.Boolean()  # GET /api/v1/imports/<id>/rejects.csv serves them


class ImportProgress(Schema):
    """queued → running → done | rejected (the file was refused) | failed (stopped by a limit
    or a dead worker: `code` and `import_id` say which; without them, an internal error)."""

    token = fields.String()
    status_url = fields.String()
    state = fields.String()
    carrier = fields.String(allow_none=True)
    filename = fields.String(allow_none=True)
    rows = fields.Integer(allow_none=True)
    total = fields.Integer(allow_none=True)
    import_id = fields.Integer(allow_none=True)
    code = fields.String(allow_none=True)
    message = fields.String(allow_none=True)


class UploadQuery(Strict):
    """`wait` is cut to the setting web.upload_wait_max_seconds (see broadcast.web.uploads)."""

    wait = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0))


class CoverageRow(Schema):
    area_code = fields.String(allow_none=True)
    area_name = fields.String()
    accepted = fields.Integer()
    reported = fields.Integer(allow_none=True)
    as_of = fields.String(allow_none=True)
    conflicts = fields.Integer()
    short_of_reported = fields.Boolean()
