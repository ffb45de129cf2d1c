"""Marshmallow schemas of the API: what comes in is validated here, what goes out is shaped here."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from broadcast.models import Role


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
