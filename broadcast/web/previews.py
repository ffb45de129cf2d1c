"""The draft page's live preview: the text as it goes on the air, audience and ETA.

Shared by the API endpoint and the console; the arithmetic lives in smpp_gateway.encoding,
broadcast.alerts and broadcast.audience, this only puts their answers side by side.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from flask_babel import format_decimal
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcast import audience, network, policy, templates
from broadcast import eta as estimate
from broadcast.alerts import CONCATENATION, sms_text
from broadcast.models import Alert, AlertCategory, Carrier
from broadcast.settings import Settings
from smpp_gateway import encoding


def _text_info(text: str, fold: bool) -> dict[str, Any]:
    info = asdict(encoding.preview(text, fold=fold, concatenation=CONCATENATION))
    info["ucs2_chars"] = list(info["ucs2_chars"])
    return info


def _is_short(row: dict[str, Any]) -> bool:
    return audience.short_of_reported(row["audience"], row["reported"])


def _short_list(row: dict[str, Any]) -> dict[str, Any]:
    """The warning for a carrier whose list holds far fewer numbers than it reported."""
    message = _(
        "%(carrier)s's list holds %(listed)s numbers in these areas, but %(carrier)s reported "
        "%(reported)s subscribers there: this alert would miss most of its people.",
        carrier=row["name"],
        listed=format_decimal(row["audience"]),
        reported=format_decimal(row["reported"]),
    )
    return {
        "code": "list_short_of_reported",
        "carrier": row["carrier"],
        "audience": row["audience"],
        "reported": row["reported"],
        "message": message,
    }


def network_warnings(
    session: Session, areas: list[str], carriers: list[str]
) -> list[dict[str, Any]]:
    """Targeted areas a chosen carrier reports degraded or down: its people there may not get
    the message now (a resend once the carrier reports normal again reaches them)."""
    out = []
    for row in network.affected(session, area_codes=areas, carrier_codes=carriers):
        template = (
            _("%(carrier)s reports its network down in %(area)s%(note)s")
            if row["state"] == "down"
            else _("%(carrier)s reports its network degraded in %(area)s%(note)s")
        )
        out.append(
            {
                "code": f"network_{row['state']}",
                "carrier": row["carrier"],
                "area": row["code"],
                "message": template
                % {
                    "carrier": row["carrier_name"],
                    "area": row["name"],
                    "note": f": {row['note']}" if row["note"] else "",
                },
            }
        )
    return out


def rule_notes(
    category: str, settings: Settings, *, send_at: datetime | None = None
) -> list[dict[str, str]]:
    """What quiet hours and the daily cap mean for this alert, said before they bite: the
    drafter sees them while writing, the approver before approving."""
    rules = policy.rules_for(
        AlertCategory(category),
        send_at or datetime.now(UTC),
        policy.Policy.from_settings(settings),
    )
    if not rules.applies:
        return [
            {
                "code": "exempt",
                "message": _(
                    "Quiet hours and the daily cap do not hold back emergency and test alerts."
                ),
            }
        ]
    notes = []
    if rules.quiet_window:
        if rules.in_quiet_hours:
            message = _(
                "Quiet hours %(window)s apply to this alert and sending would start at "
                "%(start)s, inside them: approval will be refused unless the approver waives "
                "quiet hours, or the alert is scheduled for %(resume)s or later.",
                window=rules.quiet_window,
                start=f"{rules.start:%H:%M}",
                resume=f"{rules.resume:%H:%M %d/%m/%Y}",
            )
            notes.append({"code": "quiet_hours_now", "message": message})
        else:
            message = _(
                "Quiet hours %(window)s apply to this alert: it cannot start sending inside "
                "them unless the approver waives them (waiving means people are woken at night).",
                window=rules.quiet_window,
            )
            notes.append({"code": "quiet_hours", "message": message})
    if rules.daily_cap > 0:
        message = _(
            "Daily cap: people who already received %(cap)s alerts in the last 24 hours are "
            "left out, unless the approver waives the cap (waiving sends to them as well).",
            cap=rules.daily_cap,
        )
        notes.append({"code": "daily_cap", "message": message})
    return notes


def alert_audience(session: Session, settings: Settings, alert: Alert) -> dict[str, Any]:
    """The draft preview's figures for a stored alert: the read-back and the alert page say
    the same numbers the drafter saw."""
    scheduled = policy.as_utc(alert.schedule_at) if alert.schedule_at else None
    return build_preview(
        session,
        settings,
        text=alert.body,
        fold=alert.fold,
        areas=[a.code for a in alert.areas],
        carriers=[c.code for c in alert.carriers],
        category=AlertCategory(alert.category).value,
        send_at=scheduled if scheduled and scheduled > datetime.now(UTC) else None,
        resend_of=alert.resend_of_id,
        resend_id=alert.id,
    )


def build_preview(
    session: Session,
    settings: Settings,
    *,
    text: str,
    fold: bool = False,
    areas: list[str] | None = None,
    carriers: list[str] | None = None,
    category: str = "information",
    send_at: datetime | None = None,
    resend_of: int | None = None,
    resend_id: int | None = None,
) -> dict[str, Any]:
    """`resend_of`: the draft is a resend of that alert (`resend_id` once stored), and its
    audience is that alert's unreached numbers in these areas and carriers."""
    on_air = sms_text(body=text, category=AlertCategory(category))
    shown = _text_info(on_air, fold)
    result: dict[str, Any] = {
        "preview": shown,
        "folded": _text_info(on_air, True),
        "audience": [],
        "audience_total": None,
        "eta_seconds": None,
        "audience_available": False,
        "warnings": [],
        "rules": rule_notes(category, settings, send_at=send_at),
        "placeholders": templates.unfilled(text),
    }
    known = {code: name for code, name in session.execute(select(Carrier.code, Carrier.name))}
    chosen = [c for c in (carriers or []) if c in known]
    group = audience.recipient_group(AlertCategory(category))
    if not chosen or (not areas and group is None):
        return result
    test = group is not None
    counts = audience.audience_counts(
        session,
        area_codes=areas or [],
        carrier_codes=chosen,
        group=group,
        resend_of=resend_of,
        resend_id=resend_id,
    )
    reported = (
        {c: None for c in chosen}
        if test or resend_of is not None
        else audience.reported_counts(session, area_codes=areas or [], carrier_codes=chosen)
    )
    mps = settings.rate_limits
    parts = max(shown["parts"], 1)
    rows = []
    for code in chosen:
        eta = estimate.slowest({code: counts.get(code, 0)}, parts, mps)
        rows.append(
            {
                "carrier": code,
                "name": known[code],
                "audience": counts.get(code, 0),
                "reported": reported.get(code),
                "eta_seconds": None if math.isinf(eta) else eta,
            }
        )
    eta = estimate.slowest(counts, parts, mps)
    result["warnings"] = [_short_list(row) for row in rows if _is_short(row)]
    if not test:
        result["warnings"] += network_warnings(session, areas or [], chosen)
    result.update(
        audience=rows,
        audience_total=sum(counts.values()),
        eta_seconds=None if math.isinf(eta) else eta,
        audience_available=True,
    )
    return result
