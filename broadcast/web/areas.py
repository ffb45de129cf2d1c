"""Area headings shared by the draft's area picker and the carriers' coverage page."""

from __future__ import annotations

from flask_babel import gettext as _


def area_group_labels() -> dict[str, str]:
    """Headings by area level, in the order shown (wards first, as the GSO lists them)."""
    return {
        "ward": _("Wards"),
        "commune": _("Communes"),
        "special_zone": _("Special zones"),
        "district": _("Districts"),
    }
