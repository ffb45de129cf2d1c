"""Marshmallow schemas of the API: what comes in is validated here, what goes out is shaped here."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from broadcast.models import AlertStatus, Role


class Strict(Schema):
    class Meta:
        unknown = RAISE


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


class PreviewIn(Strict):
    text = fields.String(required=True, validate=validate.Length(max=5000))
    fold = fields.Boolean(load_default=False)
    areas = fields.List(fields.String(), load_default=list)
    carriers = fields.List(fields.String(), load_default=list)
    category = fields.String(
        load_default="information",
        validate=validate.OneOf(["emergency", "warning", "information", "test"]),
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


class PreviewOut(Schema):
    preview = fields.Nested(TextInfo)
    folded = fields.Nested(TextInfo)
    audience = fields.List(fields.Nested(CarrierAudience))
    audience_total = fields.Integer(allow_none=True)
    eta_seconds = fields.Float(allow_none=True)
    audience_available = fields.Boolean()


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
    username = fields.String(required=True, validate=validate.Length(min=1, max=80))
    password = fields.String(required=True, load_only=True)
    role = fields.String(required=True, validate=validate.OneOf([r.value for r in Role]))
    display_name = fields.String(load_default="")
    carrier = fields.String(load_default=None, allow_none=True)


class UserPatch(Strict):
    active = fields.Boolean()
    password = fields.String(load_only=True)
    display_name = fields.String()


class TokenIn(Strict):
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    user_id = fields.Integer(load_default=None, allow_none=True)


class TokenOut(Schema):
    id = fields.Integer()
    name = fields.String()
    prefix = fields.String()
    user = fields.Function(lambda t: t.user.username)
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)


class TokenCreated(TokenOut):
    token = fields.String()


class BrandnameIn(Strict):
    name = fields.String(required=True)


class BrandnameOut(Schema):
    id = fields.Integer()
    name = fields.String()
    active = fields.Boolean()


class TestRecipientIn(Strict):
    msisdn = fields.String(required=True)
    carrier = fields.String(required=True)
    name = fields.String(load_default="")


class TestRecipientOut(Schema):
    id = fields.Integer()
    msisdn = fields.String()
    carrier = fields.Function(lambda t: t.carrier_code)
    name = fields.String()


CATEGORIES = ["emergency", "warning", "information", "test"]


class AlertIn(Strict):
    title = fields.String(required=True)
    body = fields.String(required=True)
    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    areas = fields.List(fields.String(), required=True)
    carriers = fields.List(fields.String(), required=True)
    brandname = fields.String(required=True)
    fold = fields.Boolean(load_default=False)
    schedule_at = fields.AwareDateTime(load_default=None, allow_none=True)
    expires_at = fields.AwareDateTime(load_default=None, allow_none=True)
    event = fields.String(load_default="")
    urgency = fields.String(load_default="Unknown")
    severity = fields.String(load_default="Unknown")
    certainty = fields.String(load_default="Unknown")
    instruction = fields.String(load_default="")
    web = fields.String(load_default="")


class AreaRef(Schema):
    code = fields.String()
    name = fields.String()


class AlertOut(Schema):
    id = fields.Integer()
    identifier = fields.String()
    title = fields.String()
    body = fields.String()
    text = fields.String()
    encoding = fields.String()
    parts = fields.Integer()
    fold = fields.Boolean()
    category = fields.String()
    test = fields.Boolean()
    status = fields.String()
    allowed_actions = fields.List(fields.String())
    msg_type = fields.String()
    references_id = fields.Integer(allow_none=True)
    brandname = fields.String()
    areas = fields.List(fields.Nested(AreaRef))
    carriers = fields.List(fields.String())
    event = fields.String()
    urgency = fields.String()
    severity = fields.String()
    certainty = fields.String()
    instruction = fields.String()
    web = fields.String()
    schedule_at = fields.String(allow_none=True)
    expires_at = fields.String(allow_none=True)
    waive_quiet_hours = fields.Boolean()
    waive_daily_cap = fields.Boolean()
    version = fields.Integer()
    created_by = fields.Integer()
    approved_by = fields.Integer(allow_none=True)
    created_at = fields.String(allow_none=True)
    submitted_at = fields.String(allow_none=True)
    approved_at = fields.String(allow_none=True)
    started_at = fields.String(allow_none=True)
    completed_at = fields.String(allow_none=True)
    cancelled_at = fields.String(allow_none=True)


class AlertListQuery(Strict):
    status = fields.String(
        load_default=None, validate=validate.OneOf([s.value for s in AlertStatus])
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class ApproveIn(Strict):
    waive_quiet_hours = fields.Boolean(load_default=False)
    waive_daily_cap = fields.Boolean(load_default=False)


class RejectIn(Strict):
    reason = fields.String(required=True)


class DeriveIn(Strict):
    kind = fields.String(
        required=True, validate=validate.OneOf(["update", "correction", "all_clear"])
    )


class CarrierProgress(Schema):
    total = fields.Integer()
    pending = fields.Integer()
    queued = fields.Integer()
    submitted = fields.Integer()
    delivered = fields.Integer()
    failed = fields.Integer()
    cancelled = fields.Integer()
    rate_now = fields.Float()
    eta_seconds = fields.Float(allow_none=True)
    percent = fields.Float()


class ProgressOut(Schema):
    id = fields.Integer()
    status = fields.String()
    test = fields.Boolean()
    carriers = fields.Dict(keys=fields.String(), values=fields.Nested(CarrierProgress))
    total = fields.Integer()
    done = fields.Integer()
    percent = fields.Float()
    rate_now = fields.Float()
    eta_seconds = fields.Float(allow_none=True)
    at = fields.Float()


class TemplateOut(Schema):
    key = fields.String()
    name = fields.String()
    category = fields.String()
    fields_ = fields.List(fields.String(), data_key="fields", attribute="fields")
    event = fields.String()
    urgency = fields.String()
    severity = fields.String()
    certainty = fields.String()


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
    wait = fields.Float(load_default=20.0, validate=validate.Range(min=0, max=120))


class CoverageRow(Schema):
    area_code = fields.String(allow_none=True)
    area_name = fields.String()
    accepted = fields.Integer()
    reported = fields.Integer(allow_none=True)
    as_of = fields.String(allow_none=True)
    conflicts = fields.Integer()
