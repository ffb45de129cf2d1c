"""Alert rules: the state machine, validation, roles and the services the console calls.

Every service takes the caller's session and changes nothing on refusal (it raises before
writing, and the caller's transaction rolls back anyway). Every transition writes an audit
entry in the same transaction. Queues and Redis are the caller's business: after `approve` the
web enqueues keys.FAN_OUT_JOB; after pause/resume/cancel it flips keys.alert_control_key.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from broadcast import audience, audit, templates, text
from broadcast.errors import (
    InvalidTransition,
    NotFound,
    PermissionDenied,
    Reason,
    ValidationFailed,
    VersionChanged,
)
from broadcast.models import (
    Alert,
    AlertCategory,
    AlertStatus,
    AlertVersion,
    Approval,
    Area,
    Brandname,
    Carrier,
    MsgType,
    Role,
    User,
)
from broadcast.policy import Policy, as_utc, check_quiet_hours
from broadcast.replies import ReplyKeyword, keyword_problems, keywords_from
from smpp_gateway.encoding import Preview, preview

if TYPE_CHECKING:
    from broadcast.settings import Settings

SYSTEM = "system"
MAX_PARTS = 10  # a public alert should fit 1–2 parts; 10 UCS-2 parts is already 670 characters
TEST_PREFIX = "[TEST - THU NGHIEM] "  # GSM-7 only, so it never forces UCS-2 on its own
# A drill says so in Vietnamese first; folded (không dấu) it reads "[DIEN TAP] ".
DRILL_PREFIX = "[DIỄN TẬP] "
CONCATENATION = "udh"  # the parts figure stored on the alert; senders recount per gateway

URGENCY = ("Immediate", "Expected", "Future", "Past", "Unknown")
SEVERITY = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
CERTAINTY = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")
BRANDNAME_RE = re.compile(r"^[A-Za-z0-9\-_. ]{1,11}$")


class Action(str, Enum):
    SUBMIT = "submit"
    WITHDRAW = "withdraw"  # the drafter takes a submitted alert back to draft
    APPROVE = "approve"
    SCHEDULE = "schedule"  # approve, with a schedule time in the future
    REJECT = "reject"
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    COMPLETE = "complete"


S = AlertStatus
TRANSITIONS: dict[tuple[AlertStatus, Action], AlertStatus] = {
    (S.DRAFT, Action.SUBMIT): S.PENDING_APPROVAL,
    (S.DRAFT, Action.CANCEL): S.CANCELLED,
    (S.PENDING_APPROVAL, Action.WITHDRAW): S.DRAFT,
    (S.PENDING_APPROVAL, Action.APPROVE): S.APPROVED,
    (S.PENDING_APPROVAL, Action.SCHEDULE): S.SCHEDULED,
    (S.PENDING_APPROVAL, Action.REJECT): S.DRAFT,
    (S.PENDING_APPROVAL, Action.CANCEL): S.CANCELLED,
    (S.APPROVED, Action.START): S.SENDING,
    (S.APPROVED, Action.CANCEL): S.CANCELLED,
    (S.SCHEDULED, Action.START): S.SENDING,
    (S.SCHEDULED, Action.CANCEL): S.CANCELLED,
    (S.SENDING, Action.PAUSE): S.PAUSED,
    (S.SENDING, Action.CANCEL): S.CANCELLED,
    (S.SENDING, Action.COMPLETE): S.COMPLETED,
    (S.PAUSED, Action.RESUME): S.SENDING,
    (S.PAUSED, Action.CANCEL): S.CANCELLED,
    (S.PAUSED, Action.COMPLETE): S.COMPLETED,  # everything reached a final state while paused
}
FINAL_STATUSES = frozenset({S.COMPLETED, S.CANCELLED})
# Statuses in which the alert went (or goes) out: it can be updated, corrected or cleared.
RELEASED_STATUSES = frozenset({S.APPROVED, S.SCHEDULED, S.SENDING, S.PAUSED, S.COMPLETED})

DRAFT_ROLES = frozenset({Role.DRAFTER, Role.APPROVER, Role.ADMIN})
APPROVE_ROLES = frozenset({Role.APPROVER})
CONTROL_ROLES = frozenset({Role.APPROVER, Role.ADMIN})


class UnfilledPlaceholder(ValidationFailed):
    """A text still holds a template marker such as `[[địa bàn]]`: nobody wrote the real value."""

    code = "unfilled_placeholder"

    def __init__(self, message: str, details: dict[str, list[str]], markers: list[str]) -> None:
        super().__init__(message, details)
        self.markers = markers


def next_status(status: AlertStatus, action: Action) -> AlertStatus:
    """The state machine, pure: the status after `action`, or InvalidTransition."""
    try:
        return TRANSITIONS[(AlertStatus(status), Action(action))]
    except (KeyError, ValueError):
        allowed = sorted(a.value for (s, a) in TRANSITIONS if s == status)
        status_name = getattr(status, "value", status)
        action_name = getattr(action, "value", action)
        raise InvalidTransition(
            Reason(
                "transition_refused",
                "an alert in status %(status)r cannot %(action)r; allowed: %(allowed)s",
                status=status_name,
                action=action_name,
                allowed=allowed or ["nothing (final)"],
            )
        ) from None


def allowed_actions(status: AlertStatus) -> list[Action]:
    """Actions the console may offer for an alert in this status (roles aside)."""
    return [a for (s, a) in TRANSITIONS if s == status]


# --- drafts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertDraft:
    """What a drafter submits; validated by validate_draft before anything is stored."""

    title: str
    body: str
    category: AlertCategory
    area_codes: tuple[str, ...]
    carrier_codes: tuple[str, ...]
    brandname: str
    fold: bool = False
    schedule_at: datetime | None = None
    expires_at: datetime | None = None
    event: str = ""
    urgency: str = "Unknown"
    severity: str = "Unknown"
    certainty: str = "Unknown"
    instruction: str = ""
    web: str = ""
    # The answers people may text back (broadcast/replies.py); empty: every reply is "other".
    reply_keywords: tuple[ReplyKeyword, ...] = ()

    def content(self) -> dict[str, Any]:
        """JSON-able content, as stored in AlertVersion and the audit log."""
        data = asdict(self)
        data["category"] = AlertCategory(self.category).value
        data["area_codes"] = list(self.area_codes)
        data["carrier_codes"] = list(self.carrier_codes)
        data["reply_keywords"] = [k.as_dict() for k in self.reply_keywords]
        for key in ("schedule_at", "expires_at"):
            value = data[key]
            data[key] = as_utc(value).isoformat() if value else None
        return data


def sms_text(*, body: str, category: AlertCategory) -> str:
    """The text that goes on the air: test alerts and drills carry an unmistakable prefix."""
    if AlertCategory(category) == AlertCategory.TEST:
        return TEST_PREFIX + body
    if AlertCategory(category) == AlertCategory.EXERCISE:
        return DRILL_PREFIX + body
    return body


def preview_draft(draft: AlertDraft) -> Preview:
    """Encoding, parts and characters left, as the sender will send it."""
    return preview(
        sms_text(body=draft.body, category=draft.category),
        fold=draft.fold,
        concatenation=CONCATENATION,
    )


def alert_preview(alert: Alert) -> Preview:
    """The alert's text as the senders will send it: encoding, parts, the folded text."""
    text = sms_text(body=alert.body, category=alert.category)
    return preview(text, fold=alert.fold, concatenation=CONCATENATION)


def alert_text(alert: Alert) -> str:
    """The exact text the senders split and send (folded when the alert says so)."""
    return alert_preview(alert).text


def validate_brandname(name: str) -> list[str]:
    """Decree 91/2020: ≤ 11 of Latin letters, digits, - _ . and space; not all digits."""
    if not name or not name.strip():
        return [Reason("brandname_required", "a sender brandname is required")]
    problems: list[str] = []
    if len(name) > 11:
        problems.append(
            Reason(
                "brandname_too_long",
                "%(name)r is %(length)s characters; at most 11",
                name=name,
                length=len(name),
            )
        )
    if not BRANDNAME_RE.fullmatch(name[:11] or " "):
        bad = sorted({c for c in name if not re.fullmatch(r"[A-Za-z0-9\-_. ]", c)})
        problems.append(
            Reason(
                "brandname_characters",
                "%(name)r has characters not allowed: %(chars)s",
                name=name,
                chars=" ".join(bad),
            )
        )
    if name.replace(" ", "").isdigit():
        problems.append(Reason("brandname_digits", "%(name)r is all digits", name=name))
    return problems


def _aware(value: datetime | None, field_name: str, problems: dict[str, list[str]]) -> bool:
    if value is not None and value.tzinfo is None:
        problems.setdefault(field_name, []).append(
            Reason("time_zone_missing", "needs a time zone offset")
        )
        return False
    return True


# The typed fields of a draft and their rules (lengths match the columns of Alert).
TEXT_RULES = {
    "title": text.TITLE,
    "body": text.SMS_BODY,
    "event": text.EVENT,
    "instruction": text.INSTRUCTION,
    "web": text.WEB,
}


def validate_draft(session: Session, draft: AlertDraft, *, now: datetime) -> None:
    """Refuse a draft with every problem at once, keyed by field (ValidationFailed.details)."""
    p: dict[str, list[str]] = {}

    def add(key: str, message: str) -> None:
        p.setdefault(key, []).append(message)

    for name, rule in TEXT_RULES.items():
        for message in text.problems(getattr(draft, name), rule):
            add(name, message)
    markers: dict[str, None] = {}
    for name in ("title", "body", "instruction"):
        for found in templates.unfilled(getattr(draft, name)):
            markers[found] = None
            add(
                name,
                Reason(
                    "placeholder_unfilled",
                    "unfilled placeholder %(marker)s: write the real value in its place",
                    marker=found,
                ),
            )
    try:
        category = AlertCategory(draft.category)
    except ValueError:
        category = None
        add(
            "category",
            Reason(
                "category_unknown",
                "unknown category %(value)r; one of %(known)s",
                value=draft.category,
                known=[c.value for c in AlertCategory],
            ),
        )
    if "body" not in p and category is not None:
        shown = preview_draft(draft)
        if shown.parts > MAX_PARTS:
            add(
                "body",
                Reason(
                    "too_many_parts",
                    "the text needs %(parts)s SMS parts (%(encoding)s); "
                    "at most %(most)s: shorten it or fold it (không dấu)",
                    parts=shown.parts,
                    encoding=shown.encoding,
                    most=MAX_PARTS,
                ),
            )

    area_codes = list(dict.fromkeys(draft.area_codes))
    if not area_codes:
        add("area_codes", Reason("areas_none", "choose at least one area"))
    else:
        query = select(Area.code, Area.retired_at).where(Area.code.in_(area_codes))
        known = {code: retired_at for code, retired_at in session.execute(query)}
        unknown = [c for c in area_codes if c not in known]
        if unknown:
            add(
                "area_codes",
                Reason("areas_unknown", "unknown area code(s): %(codes)s", codes=unknown),
            )
        retired = [c for c in area_codes if known.get(c) is not None]
        if retired:
            add(
                "area_codes",
                Reason(
                    "areas_retired",
                    "retired area code(s), no longer targetable: %(codes)s",
                    codes=retired,
                ),
            )

    carrier_codes = list(dict.fromkeys(draft.carrier_codes))
    if not carrier_codes:
        add("carrier_codes", Reason("carriers_none", "choose at least one carrier"))
    else:
        rows = {
            c.code: c
            for c in session.scalars(select(Carrier).where(Carrier.code.in_(carrier_codes)))
        }
        unknown = [c for c in carrier_codes if c not in rows]
        inactive = [c for c in carrier_codes if c in rows and not rows[c].active]
        if unknown:
            add(
                "carrier_codes",
                Reason("carriers_unknown", "unknown carrier(s): %(codes)s", codes=unknown),
            )
        if inactive:
            add(
                "carrier_codes",
                Reason("carriers_inactive", "carrier(s) not active: %(codes)s", codes=inactive),
            )

    for message in validate_brandname(draft.brandname):
        add("brandname", message)
    if "brandname" not in p:
        registered = set(session.scalars(select(Brandname.name).where(Brandname.active)))
        if registered and draft.brandname not in registered:
            add(
                "brandname",
                Reason(
                    "brandname_unregistered",
                    "%(name)r is not a registered brandname; registered: %(known)s",
                    name=draft.brandname,
                    known=sorted(registered),
                ),
            )

    now = as_utc(now)
    if _aware(draft.schedule_at, "schedule_at", p) and draft.schedule_at is not None:  # noqa: SIM102
        if as_utc(draft.schedule_at) < now:
            add(
                "schedule_at",
                Reason("time_past", "%(time)s is in the past", time=draft.schedule_at.isoformat()),
            )
    if _aware(draft.expires_at, "expires_at", p) and draft.expires_at is not None:
        expires = as_utc(draft.expires_at)
        if expires <= now:
            add(
                "expires_at",
                Reason("time_past", "%(time)s is in the past", time=draft.expires_at.isoformat()),
            )
        elif (
            draft.schedule_at is not None
            and draft.schedule_at.tzinfo is not None
            and expires <= as_utc(draft.schedule_at)
        ):
            add(
                "expires_at",
                Reason(
                    "expires_before_sent",
                    "the alert would expire before it is sent (expires_at ≤ schedule_at)",
                ),
            )

    for name, allowed in (("urgency", URGENCY), ("severity", SEVERITY), ("certainty", CERTAINTY)):
        value = getattr(draft, name)
        if value not in allowed:
            add(
                name,
                Reason(
                    "cap_value_unknown",
                    "%(value)r is not a CAP %(field)s; one of %(known)s",
                    value=value,
                    field=name,
                    known=list(allowed),
                ),
            )
    if draft.web and "web" not in p and not re.match(r"^https?://\S+$", draft.web):
        add(
            "web",
            Reason("web_address", "%(value)r is not an http(s) address", value=draft.web[:80]),
        )
    for message in keyword_problems(draft.reply_keywords):
        add("reply_keywords", message)

    if p:
        if markers:
            raise UnfilledPlaceholder(
                Reason(
                    "placeholders_unfilled",
                    "alert refused: unfilled placeholder(s) %(markers)s; check %(fields)s",
                    markers=list(markers),
                    fields=list(p),
                ),
                p,
                list(markers),
            )
        raise ValidationFailed(
            Reason("alert_refused", "alert refused: check %(fields)s", fields=list(p)), p
        )


# --- helpers ---------------------------------------------------------------------------------


def _now(now: datetime | None = None) -> datetime:
    return as_utc(now) if now is not None else datetime.now(UTC)


def get_alert(session: Session, alert_id: int, *, lock: bool = False) -> Alert:
    """The alert, locked when it is about to change: two approvers clicking at once approve it
    once. PostgreSQL locks the row FOR NO KEY UPDATE: changes to the same alert wait for each
    other, but not for a transaction inserting its deliveries (their foreign key holds KEY
    SHARE on the row), so a pause or a cancel does not wait for the fan-out's chunk in flight.
    SQLite has no row locks and does not even begin a transaction before the first write, so a
    no-op write first takes its database-wide write lock and the other click waits, then reads
    what this one wrote."""
    if lock and session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(Alert).where(Alert.id == alert_id).values(updated_at=Alert.updated_at)
        )
    alert = session.get(
        Alert, alert_id, with_for_update={"key_share": True} if lock else None,
        populate_existing=lock,
    )  # fmt: skip
    if alert is None:
        raise NotFound(Reason("alert_not_found", "alert %(alert)s not found", alert=alert_id))
    return alert


def _require_active(user: User) -> None:
    if not user.active:
        raise PermissionDenied(
            Reason("user_deactivated", "user %(user)r is deactivated", user=user.username)
        )


def _require_role(user: User, roles: frozenset[Role], what: str) -> None:
    _require_active(user)
    if user.role not in roles:
        raise PermissionDenied(
            Reason(
                "role_needed",
                f"{what} needs the {' or '.join(sorted(r.value for r in roles))} role; "
                "%(user)r is %(role)s",
                roles=sorted(r.value for r in roles),
                user=user.username,
                role=Role(user.role).value,
            )
        )


def _apply(session: Session, alert: Alert, draft: AlertDraft) -> None:
    areas = list(session.scalars(select(Area).where(Area.code.in_(draft.area_codes))))
    carriers = list(session.scalars(select(Carrier).where(Carrier.code.in_(draft.carrier_codes))))
    alert.title = draft.title.strip()
    alert.body = draft.body
    alert.fold = draft.fold
    alert.category = AlertCategory(draft.category)
    alert.brandname = draft.brandname
    alert.event = draft.event
    alert.urgency, alert.severity, alert.certainty = draft.urgency, draft.severity, draft.certainty
    alert.instruction = draft.instruction
    alert.web = draft.web
    alert.reply_keywords = [k.as_dict() for k in draft.reply_keywords] or None
    alert.schedule_at = as_utc(draft.schedule_at) if draft.schedule_at else None
    alert.expires_at = as_utc(draft.expires_at) if draft.expires_at else None
    alert.parts = preview_draft(draft).parts
    alert.areas = sorted(areas, key=lambda a: a.path)
    alert.carriers = sorted(carriers, key=lambda c: c.code)


def draft_of(alert: Alert) -> AlertDraft:
    """The alert's content as a draft: what an edit form starts from."""
    return AlertDraft(
        title=alert.title,
        body=alert.body,
        category=AlertCategory(alert.category),
        area_codes=tuple(a.code for a in alert.areas),
        carrier_codes=tuple(c.code for c in alert.carriers),
        brandname=alert.brandname,
        fold=alert.fold,
        schedule_at=as_utc(alert.schedule_at) if alert.schedule_at else None,
        expires_at=as_utc(alert.expires_at) if alert.expires_at else None,
        event=alert.event,
        urgency=alert.urgency,
        severity=alert.severity,
        certainty=alert.certainty,
        instruction=alert.instruction,
        web=alert.web,
        reply_keywords=keywords_from(alert.reply_keywords),
    )


def _save_version(session: Session, alert: Alert, draft: AlertDraft, user: User) -> None:
    session.add(
        AlertVersion(
            alert_id=alert.id, version=alert.version, content=draft.content(), created_by=user.id
        )
    )


def _transition(
    session: Session,
    alert: Alert,
    action: Action,
    actor: User | str,
    *,
    now: datetime,
    after: dict[str, Any] | None = None,
) -> Alert:
    before_status = AlertStatus(alert.status)
    new_status = next_status(before_status, action)
    alert.status = new_status
    stamps = {
        Action.SUBMIT: "submitted_at",
        Action.START: "started_at",
        Action.COMPLETE: "completed_at",
        Action.CANCEL: "cancelled_at",
    }
    if action in stamps:
        setattr(alert, stamps[action], now)
    audit.record(
        session,
        actor=actor,
        action=f"alert.{action.value}",
        object_type="alert",
        object_id=alert.id,
        before={"status": before_status.value},
        after={"status": new_status.value, **(after or {})},
    )
    session.flush()
    return alert


# --- services --------------------------------------------------------------------------------


def create_draft(
    session: Session,
    draft: AlertDraft,
    *,
    user: User,
    now: datetime | None = None,
    msg_type: MsgType = MsgType.ALERT,
    references: Alert | None = None,
    resend_of: Alert | None = None,
) -> Alert:
    """A new alert in draft, version 1; drafters, approvers and admins may draft."""
    _require_role(user, DRAFT_ROLES, "drafting an alert")
    validate_draft(session, draft, now=_now(now))
    alert = Alert(
        identifier=f"loa-{uuid.uuid4()}",
        status=AlertStatus.DRAFT,
        msg_type=msg_type,
        references_id=references.id if references else None,
        resend_of_id=resend_of.id if resend_of else None,
        version=1,
        created_by=user.id,
    )
    _apply(session, alert, draft)
    session.add(alert)
    session.flush()
    _save_version(session, alert, draft, user)
    audit.record(
        session,
        actor=user,
        action="alert.create",
        object_type="alert",
        object_id=alert.id,
        after={
            "status": "draft",
            "msg_type": MsgType(msg_type).value,
            "references_id": alert.references_id,
            "resend_of_id": alert.resend_of_id,
            **draft.content(),
        },
    )
    session.flush()
    return alert


def update_draft(
    session: Session, alert_id: int, draft: AlertDraft, *, user: User, now: datetime | None = None
) -> Alert:
    """Edit a draft; only its author edits it (nobody changes someone's text silently)."""
    alert = get_alert(session, alert_id, lock=True)
    _require_role(user, DRAFT_ROLES, "editing an alert")
    if alert.created_by != user.id:
        raise PermissionDenied(
            Reason(
                "author_edits",
                "only the author of a draft can edit it; derive an update instead",
            )
        )
    if alert.status != AlertStatus.DRAFT:
        raise InvalidTransition(
            Reason(
                "edit_not_draft",
                "alert %(alert)s is %(status)s; only a draft can be edited",
                alert=alert.id,
                status=AlertStatus(alert.status).value,
            )
        )
    validate_draft(session, draft, now=_now(now))
    before = draft_of(alert).content()
    _apply(session, alert, draft)
    alert.version += 1
    _save_version(session, alert, draft, user)
    audit.record(
        session,
        actor=user,
        action="alert.update",
        object_type="alert",
        object_id=alert.id,
        before={"version": alert.version - 1, **before},
        after={"version": alert.version, **draft.content()},
    )
    session.flush()
    return alert


def submit_for_approval(
    session: Session, alert_id: int, *, user: User, now: datetime | None = None
) -> Alert:
    alert = get_alert(session, alert_id, lock=True)
    _require_active(user)
    if alert.created_by != user.id:
        raise PermissionDenied(
            Reason("author_submits", "only the author of a draft can submit it for approval")
        )
    now = _now(now)
    next_status(AlertStatus(alert.status), Action.SUBMIT)
    validate_draft(session, draft_of(alert), now=now)  # a schedule may have gone stale
    return _transition(
        session, alert, Action.SUBMIT, user, now=now, after={"version": alert.version}
    )


def withdraw(session: Session, alert_id: int, *, user: User, now: datetime | None = None) -> Alert:
    """The author takes a submitted alert back to draft (e.g. to fix a typo before approval)."""
    alert = get_alert(session, alert_id, lock=True)
    _require_active(user)
    if alert.created_by != user.id:
        raise PermissionDenied(
            Reason("author_withdraws", "only the author can withdraw an alert from approval")
        )
    return _transition(session, alert, Action.WITHDRAW, user, now=_now(now))


def _require_second_person(alert: Alert, user: User, what: str) -> None:
    _require_role(user, APPROVE_ROLES, what)
    if alert.created_by == user.id:
        if what.startswith("reject"):
            raise PermissionDenied(
                Reason(
                    "own_alert_reject",
                    "a drafter cannot reject their own alert; withdraw it instead",
                )
            )
        raise PermissionDenied(
            Reason("own_alert_approve", "a drafter cannot approve their own alert")
        )


def approve(
    session: Session,
    alert_id: int,
    *,
    user: User,
    version: int,
    waive_quiet_hours: bool = False,
    waive_daily_cap: bool = False,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> Alert:
    """A second person approves: → approved, or scheduled when schedule_at is in the future.

    `version` is the version the approver read: the author may withdraw, edit and resubmit
    between the approver's reading and the click, and nobody approves text they never saw.
    Quiet hours are checked at the moment sending would start. The caller then enqueues the
    fan-out job (keys.FAN_OUT_JOB), at schedule_at for a scheduled alert.
    """
    alert = get_alert(session, alert_id, lock=True)
    _require_second_person(alert, user, "approving an alert")
    if alert.version != version:
        raise VersionChanged(alert.id, read=version, current=alert.version)
    now = _now(now)
    policy = Policy.from_settings(settings)
    if alert.expires_at is not None and as_utc(alert.expires_at) <= now:
        raise ValidationFailed(
            Reason(
                "alert_expired",
                "the alert has already expired; edit its expiry or derive a new one",
            ),
            {"expires_at": [Reason("expired", "already expired")]},
        )
    scheduled = alert.schedule_at is not None and as_utc(alert.schedule_at) > now
    send_at = as_utc(alert.schedule_at) if scheduled and alert.schedule_at else now
    next_status(AlertStatus(alert.status), Action.APPROVE)  # wrong status before policy errors
    check_quiet_hours(alert.category, send_at, policy, waived=waive_quiet_hours)
    if alert.expires_at is None:
        # Every submit_sm carries the expiry as its validity period: the SMSC, the rows'
        # expiry and the CAP `expires` then all name the same instant.
        alert.expires_at = send_at + timedelta(hours=policy.default_validity_hours)
    alert.waive_quiet_hours = waive_quiet_hours
    alert.waive_daily_cap = waive_daily_cap
    alert.approved_by = user.id
    alert.approved_at = now
    session.add(
        Approval(
            alert_id=alert.id,
            alert_version=alert.version,
            user_id=user.id,
            decision="approved",
            waive_quiet_hours=waive_quiet_hours,
            waive_daily_cap=waive_daily_cap,
        )
    )
    return _transition(
        session,
        alert,
        Action.SCHEDULE if scheduled else Action.APPROVE,
        user,
        now=now,
        after={
            "version": alert.version,
            "waive_quiet_hours": waive_quiet_hours,
            "waive_daily_cap": waive_daily_cap,
            "schedule_at": send_at.isoformat() if scheduled else None,
            "expires_at": as_utc(alert.expires_at).isoformat(),
        },
    )


def reject(
    session: Session, alert_id: int, *, user: User, reason: str, now: datetime | None = None
) -> Alert:
    """Back to draft with a reason the author will read."""
    alert = get_alert(session, alert_id, lock=True)
    _require_second_person(alert, user, "rejecting an alert")
    reason = (reason or "").strip()
    refused = text.problems(reason, text.REASON)
    if refused:
        raise ValidationFailed(
            Reason("reject_reason_refused", "the rejection reason was refused"),
            {"reason": refused},
        )
    next_status(AlertStatus(alert.status), Action.REJECT)
    session.add(
        Approval(
            alert_id=alert.id,
            alert_version=alert.version,
            user_id=user.id,
            decision="rejected",
            reason=reason,
        )
    )
    return _transition(
        session,
        alert,
        Action.REJECT,
        user,
        now=_now(now),
        after={"reason": reason, "version": alert.version},
    )


def _control(
    session: Session, alert_id: int, action: Action, user: User, now: datetime | None
) -> Alert:
    alert = get_alert(session, alert_id, lock=True)
    own_unreleased = (
        action == Action.CANCEL
        and alert.created_by == user.id
        and alert.status in (AlertStatus.DRAFT, AlertStatus.PENDING_APPROVAL)
    )
    if own_unreleased:
        _require_active(user)  # an author may discard their own unapproved alert
    else:
        _require_role(user, CONTROL_ROLES, f"{action.value} of an alert")
    return _transition(session, alert, action, user, now=_now(now))


def pause(session: Session, alert_id: int, *, user: User, now: datetime | None = None) -> Alert:
    return _control(session, alert_id, Action.PAUSE, user, now)


def resume(session: Session, alert_id: int, *, user: User, now: datetime | None = None) -> Alert:
    return _control(session, alert_id, Action.RESUME, user, now)


def cancel(session: Session, alert_id: int, *, user: User, now: datetime | None = None) -> Alert:
    return _control(session, alert_id, Action.CANCEL, user, now)


def mark_sending(session: Session, alert_id: int, *, now: datetime | None = None) -> Alert:
    """Workers: the fan-out started. Idempotent when already sending or paused."""
    alert = get_alert(session, alert_id, lock=True)
    if alert.status in (AlertStatus.SENDING, AlertStatus.PAUSED):
        return alert
    return _transition(session, alert, Action.START, SYSTEM, now=_now(now))


def mark_completed(session: Session, alert_id: int, *, now: datetime | None = None) -> Alert:
    """Workers: every delivery is final. Idempotent on completed; a cancelled alert stays so."""
    alert = get_alert(session, alert_id, lock=True)
    if alert.status in FINAL_STATUSES:
        return alert
    return _transition(session, alert, Action.COMPLETE, SYSTEM, now=_now(now))


DERIVED = {"update": MsgType.UPDATE, "correction": MsgType.UPDATE, "all_clear": MsgType.CANCEL}
RESEND = "resend"
DERIVE_KINDS = (*DERIVED, RESEND)


def sent_at(alert: Alert) -> datetime:
    """The CAP `sent` time of an alert: its approval, or its creation while unapproved."""
    return as_utc(alert.approved_at or alert.created_at or datetime.now(UTC))


def derive(
    session: Session,
    alert_id: int,
    *,
    kind: str,
    user: User,
    now: datetime | None = None,
    timezone: str = "Asia/Ho_Chi_Minh",
    areas: Sequence[str] | None = None,
    carriers: Sequence[str] | None = None,
) -> Alert:
    """A new draft that references an alert: update, correction or all-clear (CAP Cancel), or
    a resend to the numbers it did not reach (see derive_resend; `areas`, `carriers` narrow it).

    Same areas, carriers, brandname and category (an emergency's correction must not wait for
    quiet hours), text prefilled from the templates; it still needs a second person to approve.
    An update keeps the original's CAP urgency, severity and certainty; a correction or an
    all-clear takes its template's (the hazard is over), and the drafter may edit them.
    """
    if kind not in DERIVE_KINDS:
        raise ValidationFailed(
            Reason(
                "derive_kind_unknown",
                "unknown kind %(kind)r; one of %(known)s",
                kind=kind,
                known=list(DERIVE_KINDS),
            ),
            {"kind": [Reason("kind_unknown", "unknown kind %(kind)r", kind=kind)]},
        )
    if kind == RESEND:
        return derive_resend(session, alert_id, user=user, now=now, areas=areas, carriers=carriers)
    if areas or carriers:
        raise ValidationFailed(
            Reason(
                "derive_not_narrowed",
                "an %(kind)s goes to the original's areas and carriers; only a resend narrows them",
                kind=kind,
            ),
            {
                "areas" if areas else "carriers": [
                    Reason("kind_not_allowed", "not allowed for kind %(kind)r", kind=kind)
                ]
            },
        )
    original = get_alert(session, alert_id)
    _require_role(user, DRAFT_ROLES, "drafting an update")
    if original.approved_at is None:
        raise InvalidTransition(
            Reason(
                "derive_never_approved",
                "alert %(alert)s was never approved; edit it instead of issuing an %(kind)s",
                alert=original.id,
                kind=kind,
            )
        )
    local_sent = sent_at(original).astimezone(ZoneInfo(timezone))
    text = templates.render(
        kind,
        sender=original.brandname,
        title=original.title,
        body=original.body,
        sent=f"{local_sent:%H:%M %d/%m/%Y}",
        original_instruction=original.instruction,
    )
    template = templates.get(kind)
    # An update keeps the original's assessment; a correction or all-clear takes the template's.
    assessed = original if kind == "update" else template
    expires = original.expires_at
    if expires is not None and as_utc(expires) <= _now(now):
        expires = None
    draft = replace(
        draft_of(original),
        title=text["title"][:200],
        body=text["body"],
        instruction=text["instruction"],
        urgency=assessed.urgency,
        severity=assessed.severity,
        certainty=assessed.certainty,
        schedule_at=None,
        expires_at=as_utc(expires) if expires else None,
    )
    return create_draft(
        session, draft, user=user, now=now, msg_type=DERIVED[kind], references=original
    )


def _narrowed(
    session: Session,
    original: Alert,
    areas: Sequence[str] | None,
    carriers: Sequence[str] | None,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The resend's areas and carriers: the original's, or a part of them (anything else is
    refused by name: it would only ever reach nobody)."""
    own_carriers = [c.code for c in original.carriers]
    own_paths = [a.path for a in original.areas]
    problems: dict[str, list[str]] = {}
    carrier_codes = tuple(dict.fromkeys(carriers or own_carriers))
    foreign = [c for c in carrier_codes if c not in own_carriers]
    if foreign:
        problems["carriers"] = [
            Reason(
                "resend_foreign_carrier",
                "%(carrier)r was not a carrier of alert %(alert)s (%(own)s)",
                carrier=c,
                alert=original.id,
                own=own_carriers,
            )
            for c in foreign
        ]
    area_codes = tuple(dict.fromkeys(areas or [a.code for a in original.areas]))
    paths = dict(
        session.execute(select(Area.code, Area.path).where(Area.code.in_(area_codes))).all()
    )
    for code in area_codes:
        if code not in paths:
            problems.setdefault("areas", []).append(
                Reason("area_unknown", "unknown area code %(code)r", code=code)
            )
        elif not any(paths[code].startswith(p) for p in own_paths):
            problems.setdefault("areas", []).append(
                Reason(
                    "resend_foreign_area",
                    "area %(code)r is not within the areas of alert %(alert)s",
                    code=code,
                    alert=original.id,
                )
            )
    if problems:
        raise ValidationFailed(
            Reason("resend_refused", "resend refused: check %(fields)s", fields=list(problems)),
            problems,
        )
    return area_codes, carrier_codes


def resend_counts(
    session: Session,
    alert_id: int,
    *,
    areas: Sequence[str] | None = None,
    carriers: Sequence[str] | None = None,
) -> tuple[tuple[str, ...], tuple[str, ...], dict[str, int]]:
    """What a resend of the alert would reach now: its areas, carriers and the unreached
    numbers per carrier code. Refuses (before anything is written) an alert that is not over,
    areas or carriers outside the alert's, and an alert nobody is left to reach in them."""
    original = get_alert(session, alert_id)
    status = AlertStatus(original.status)
    if original.approved_at is None:
        raise InvalidTransition(
            Reason(
                "resend_never_sent",
                "alert %(alert)s was never sent; there is nobody to resend to",
                alert=original.id,
            )
        )
    if status not in FINAL_STATUSES:
        raise InvalidTransition(
            Reason(
                "resend_not_final",
                "alert %(alert)s is %(status)s; resend once it has completed or been cancelled",
                alert=original.id,
                status=status.value,
            )
        )
    area_codes, carrier_codes = _narrowed(session, original, areas, carriers)
    counts = audience.audience_counts(
        session,
        area_codes=area_codes,
        carrier_codes=carrier_codes,
        test=AlertCategory(original.category) == AlertCategory.TEST,
        resend_of=original.id,
    )
    if not sum(counts.values()):
        raise InvalidTransition(
            Reason(
                "resend_nobody",
                "alert %(alert)s has no unreached numbers"
                + (" in these areas and carriers" if areas or carriers else "")
                + " (none undeliverable, expired or rejected, or another resend reached them)",
                alert=original.id,
            )
        )
    return area_codes, carrier_codes, counts


def derive_resend(
    session: Session,
    alert_id: int,
    *,
    user: User,
    now: datetime | None = None,
    areas: Sequence[str] | None = None,
    carriers: Sequence[str] | None = None,
) -> Alert:
    """A draft of the same message to the numbers the alert did not reach (undeliverable,
    expired, rejected), optionally only in some of its areas and carriers. The original must
    be over (completed or cancelled); a second person approves the resend like any alert."""
    original = get_alert(session, alert_id)
    _require_role(user, DRAFT_ROLES, "drafting a resend")
    area_codes, carrier_codes, _counts = resend_counts(
        session, alert_id, areas=areas, carriers=carriers
    )
    expires = original.expires_at
    if expires is not None and as_utc(expires) <= _now(now):
        expires = None
    draft = replace(
        draft_of(original),
        area_codes=area_codes,
        carrier_codes=carrier_codes,
        schedule_at=None,
        expires_at=as_utc(expires) if expires else None,
    )
    return create_draft(session, draft, user=user, now=now, resend_of=original)


def versions(session: Session, alert_id: int) -> list[dict[str, Any]]:
    """Every saved content of an alert, oldest first (no edit is silent)."""
    rows = session.scalars(
        select(AlertVersion).where(AlertVersion.alert_id == alert_id).order_by(AlertVersion.version)
    )
    return [
        {
            "version": v.version,
            "content": v.content,
            "created_by": v.created_by,
            "created_at": as_utc(v.created_at).isoformat() if v.created_at else None,
        }
        for v in rows
    ]


def count_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(Alert.status, func.count()).group_by(Alert.status))
    return {AlertStatus(s).value: n for s, n in rows}
