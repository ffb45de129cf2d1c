"""Reach by area: how many of an alert's numbers in each commune were delivered or failed.

One GROUP BY over the alert's deliveries (each row carries its subscriber's area from the
snapshot), ranked by the share reached, lowest first: the communes not getting the message
(a base station down) come at the top. Numbers without an area are not listed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from broadcast.models import FAILED_DELIVERY_STATES, Area, Delivery, DeliveryState


def share_reached(row: dict[str, Any]) -> float:
    """Delivered over total (0 for an empty area)."""
    return row["delivered"] / row["total"] if row["total"] else 0.0


def area_progress(session: Session, alert_id: int) -> list[dict[str, Any]]:
    """[{code, name, total, delivered, failed}] per area, lowest share reached first (then by
    code), with failed = undeliverable + expired + rejected."""
    delivered = func.sum(case((Delivery.state == DeliveryState.DELIVERED.value, 1), else_=0))
    failed = func.sum(
        case((Delivery.state.in_([s.value for s in FAILED_DELIVERY_STATES]), 1), else_=0)
    )
    per_area = (
        select(
            Delivery.area_id,
            func.count().label("total"),
            delivered.label("delivered"),
            failed.label("failed"),
        )
        .where(Delivery.alert_id == alert_id, Delivery.area_id.is_not(None))
        .group_by(Delivery.area_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Area.code, Area.name, per_area.c.total, per_area.c.delivered, per_area.c.failed
        ).join(per_area, per_area.c.area_id == Area.id)
    )
    out = [
        {
            "code": code,
            "name": name,
            "total": int(total),
            "delivered": int(done or 0),
            "failed": int(bad or 0),
        }
        for code, name, total, done, bad in rows
    ]
    out.sort(key=lambda r: (share_reached(r), r["code"]))
    return out
