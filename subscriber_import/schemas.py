"""The report as JSON: one Marshmallow schema shared by the API, the CLI and stored reports."""

from __future__ import annotations

from marshmallow import Schema, fields


class AreaTotalSchema(Schema):
    area_code = fields.String(allow_none=True)
    area_name = fields.String()
    accepted = fields.Integer()
    reported = fields.Integer(allow_none=True)
    as_of = fields.Date(allow_none=True)


class ImportReportSchema(Schema):
    import_id = fields.Integer()
    carrier = fields.String()
    kind = fields.String()
    filename = fields.String()
    format = fields.String()
    rows = fields.Integer()
    accepted = fields.Integer()
    converted = fields.Integer()
    duplicates = fields.Integer()
    conflicts = fields.Integer()
    conflicts_by_carrier = fields.Dict(keys=fields.String(), values=fields.Integer())
    rejected = fields.Dict(keys=fields.String(), values=fields.Integer())
    mapped = fields.Integer()
    warnings = fields.Dict(keys=fields.String(), values=fields.Integer())
    warning_samples = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))
    possible_ported = fields.Integer()
    possible_ported_by_carrier = fields.Dict(keys=fields.String(), values=fields.Integer())
    per_area = fields.List(fields.Nested(AreaTotalSchema))
    list_id = fields.Integer(allow_none=True)
    version = fields.Integer(allow_none=True)
    replaced_list_id = fields.Integer(allow_none=True)
    replaced_count = fields.Integer(allow_none=True)
    shrink_confirmed = fields.Boolean()
    as_of = fields.Date(allow_none=True)
    rejects_csv = fields.String(allow_none=True)
    seconds = fields.Float()
