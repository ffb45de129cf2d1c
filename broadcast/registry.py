"""What an administrator registers: sender brandnames and the test group.

Business rules only (no Flask): the console and the API call these and show their refusals.
A brandname is validated by the Decree 91/2020 rule (`alerts.validate_brandname`) and never
deleted (old alerts name it): it is deactivated, and adding it again reactivates it. A test
recipient's number is normalised by the function the caller passes (the web hands in
subscriber_import's normaliser, which the core may not import) and sent through the carrier
the administrator chose: the prefix is not the carrier (number portability).
Every change is audited in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from broadcast import audit, text
from broadcast.alerts import validate_brandname
from broadcast.errors import NotFound, Reason, ValidationFailed
from broadcast.models import Brandname, Carrier, RecipientGroup, TestRecipient, User

Normaliser = Callable[[str], str | None]
Actor = User | str


@dataclass(frozen=True)
class Recipient:
    """A test recipient with its carrier's code (what lists and answers show)."""

    id: int
    msisdn: str
    carrier_code: str
    name: str


# -- brandnames -------------------------------------------------------------------------------


def list_brandnames(session: Session) -> list[Brandname]:
    return list(session.scalars(select(Brandname).order_by(Brandname.name)))


def add_brandname(session: Session, name: str, *, actor: Actor, ip: str | None = None) -> Brandname:
    """Register a brandname (or reactivate a deactivated one); refuses invalid or active twins."""
    name = (name or "").strip()
    problems = validate_brandname(name)
    if problems:
        raise ValidationFailed(Reason("brandname_refused", "brandname refused"), {"name": problems})
    existing = session.scalar(select(Brandname).where(func.lower(Brandname.name) == name.lower()))
    if existing is not None and existing.active:
        raise ValidationFailed(
            Reason("brandname_refused", "brandname refused"),
            {
                "name": [
                    Reason(
                        "brandname_registered",
                        "%(name)r is already registered",
                        name=existing.name,
                    )
                ]
            },
        )
    if existing is not None:
        existing.active = True
        audit.record(
            session,
            actor=actor,
            action="brandname.activate",
            object_type="brandname",
            object_id=existing.id,
            before={"name": existing.name, "active": False},
            after={"name": existing.name, "active": True},
            ip=ip,
        )
        return existing
    row = Brandname(name=name, active=True)
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="brandname.add",
        object_type="brandname",
        object_id=row.id,
        after={"name": name, "active": True},
        ip=ip,
    )
    return row


def deactivate_brandname(
    session: Session, brandname_id: int, *, actor: Actor, ip: str | None = None
) -> Brandname:
    """New drafts can no longer use it; alerts already sent keep naming it."""
    row = session.get(Brandname, brandname_id)
    if row is None:
        raise NotFound(Reason("brandname_not_found", "brandname %(id)s not found", id=brandname_id))
    if row.active:
        row.active = False
        audit.record(
            session,
            actor=actor,
            action="brandname.deactivate",
            object_type="brandname",
            object_id=row.id,
            before={"name": row.name, "active": True},
            after={"name": row.name, "active": False},
            ip=ip,
        )
    return row


# -- the test and drill groups ----------------------------------------------------------------

GROUP_NAMES = {RecipientGroup.TEST: "test group", RecipientGroup.DRILL: "drill group"}


def list_test_recipients(
    session: Session, group: RecipientGroup = RecipientGroup.TEST
) -> list[Recipient]:
    rows = session.execute(
        select(TestRecipient.id, TestRecipient.msisdn, Carrier.code, TestRecipient.name)
        .join(Carrier, Carrier.id == TestRecipient.carrier_id)
        .where(TestRecipient.kind == RecipientGroup(group))
        .order_by(Carrier.code, TestRecipient.msisdn)
    )
    return [Recipient(*row) for row in rows]


def add_test_recipient(
    session: Session,
    *,
    msisdn: str,
    carrier_code: str,
    name: str = "",
    normalise: Normaliser,
    actor: Actor,
    ip: str | None = None,
    group: RecipientGroup = RecipientGroup.TEST,
) -> Recipient:
    """Add a number to the test (or drill) group, normalised to E.164 digits; refusals name
    the field."""
    group = RecipientGroup(group)
    problems: dict[str, list[str]] = {}
    raw = (msisdn or "").strip()
    number = normalise(raw) if raw else None
    if number is None:
        problems["msisdn"] = [
            Reason("msisdn_invalid", "%(value)r is not a Vietnamese mobile number", value=raw)
        ]
    carrier = session.scalar(select(Carrier).where(Carrier.code == carrier_code))
    if carrier is None or not carrier.active:
        known = session.scalars(select(Carrier.code).where(Carrier.active).order_by(Carrier.code))
        problems["carrier"] = [
            Reason(
                "carrier_unknown_of",
                "unknown carrier %(carrier)r; known: %(known)s",
                carrier=carrier_code,
                known=list(known),
            )
        ]
    name = (name or "").strip()
    refused = text.problems(name, text.RECIPIENT_NAME)
    if refused:
        problems["name"] = refused
    if number is not None:
        twin = session.scalar(
            select(TestRecipient).where(TestRecipient.msisdn == number, TestRecipient.kind == group)
        )
        if twin is not None:
            problems.setdefault("msisdn", []).append(
                Reason(
                    "group_twin",
                    "%(msisdn)s is already in the %(group)s",
                    msisdn=number,
                    group=GROUP_NAMES[group],
                )
            )
    if problems:
        raise ValidationFailed(
            Reason(
                "group_recipient_refused",
                "%(group)s recipient refused",
                group=GROUP_NAMES[group],
            ),
            problems,
        )
    assert carrier is not None and number is not None
    row = TestRecipient(msisdn=number, carrier_id=carrier.id, name=name, kind=group)
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="test_recipient.add",
        object_type="test_recipient",
        object_id=row.id,
        after={"msisdn": number, "carrier": carrier.code, "name": name, "group": group.value},
        ip=ip,
    )
    return Recipient(row.id, number, carrier.code, name)


def remove_test_recipient(
    session: Session,
    recipient_id: int,
    *,
    actor: Actor,
    ip: str | None = None,
    group: RecipientGroup = RecipientGroup.TEST,
) -> Recipient:
    row = session.get(TestRecipient, recipient_id)
    if row is None or RecipientGroup(row.kind) != RecipientGroup(group):
        raise NotFound(
            Reason(
                "group_recipient_not_found",
                "%(group)s recipient %(id)s not found",
                group=GROUP_NAMES[RecipientGroup(group)],
                id=recipient_id,
            )
        )
    carrier = session.get(Carrier, row.carrier_id)
    gone = Recipient(row.id, row.msisdn, carrier.code if carrier else "", row.name)
    session.delete(row)
    audit.record(
        session,
        actor=actor,
        action="test_recipient.remove",
        object_type="test_recipient",
        object_id=gone.id,
        before={
            "msisdn": gone.msisdn,
            "carrier": gone.carrier_code,
            "name": gone.name,
            "group": RecipientGroup(group).value,
        },
        ip=ip,
    )
    return gone
