"""Alert services on SQLite and PostgreSQL: roles, validation, approval, audit, derive."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session

from broadcast import alerts
from broadcast.alerts import AlertDraft
from broadcast.areas import AreaRow, load_areas, load_official
from broadcast.db import Database
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
    AuditEntry,
    Brandname,
    Carrier,
    MsgType,
    User,
)
from broadcast.policy import PolicyViolation, as_utc
from broadcast.web.api.schemas import AlertOut
from broadcast.web.refusals import say
from tests.alerts.conftest import DAYTIME, People

NIGHT = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)  # 23:00 in Ha Tinh


def _audit(session: Session, alert_id: int) -> list[tuple[str, str, Any, Any]]:
    rows = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.object_type == "alert", AuditEntry.object_id == str(alert_id))
        .order_by(AuditEntry.id)
    )
    return [(r.actor, r.action, r.before, r.after) for r in rows]


def _count(session: Session, model: Any) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def _pending(session: Session, people: People, draft: AlertDraft) -> Alert:
    alert = alerts.create_draft(session, draft, user=people["drafter"], now=DAYTIME)
    return alerts.submit_for_approval(session, alert.id, user=people["drafter"], now=DAYTIME)


# --- drafting and roles ----------------------------------------------------------------------


def test_drafter_creates_version_one_audited(
    session: Session, people: People, draft: AlertDraft
) -> None:
    alert = alerts.create_draft(session, draft, user=people["drafter"], now=DAYTIME)
    assert alert.status == AlertStatus.DRAFT
    assert alert.msg_type == MsgType.ALERT
    assert [a.code for a in alert.areas] == ["18073"]
    assert [c.code for c in alert.carriers] == ["viettel", "vinaphone"]
    assert alert.parts == 1  # 68 characters of UCS-2 (Vietnamese with diacritics): one part
    version = session.scalar(select(AlertVersion).where(AlertVersion.alert_id == alert.id))
    assert version is not None and version.version == 1
    assert version.content["body"] == draft.body
    [(actor, action, _, after)] = _audit(session, alert.id)
    assert (actor, action, after["status"], after["title"]) == (
        "drafter",
        "alert.create",
        "draft",
        draft.title,
    )


@pytest.mark.parametrize("role", ["carrier", "auditor"])
def test_carrier_and_auditor_cannot_draft(
    session: Session, people: People, draft: AlertDraft, role: str
) -> None:
    user = people[role]
    with pytest.raises(PermissionDenied, match=f"'{role}' is {role}"):
        alerts.create_draft(session, draft, user=user, now=DAYTIME)
    assert _count(session, Alert) == 0


def test_deactivated_user_cannot_draft(session: Session, people: People, draft: AlertDraft) -> None:
    user = people["drafter"]
    user.active = False
    with pytest.raises(PermissionDenied, match="deactivated"):
        alerts.create_draft(session, draft, user=user, now=DAYTIME)


BAD_DRAFTS: list[tuple[dict[str, Any], str, str]] = [
    ({"title": "  "}, "title", "required"),
    ({"title": "x" * 201}, "title", "at most 200"),
    ({"body": ""}, "body", "required"),
    ({"body": "ạ" * 700}, "body", "at most 10"),
    ({"area_codes": ()}, "area_codes", "at least one"),
    ({"area_codes": ("18073", "99999")}, "area_codes", "99999"),
    ({"carrier_codes": ()}, "carrier_codes", "at least one"),
    ({"carrier_codes": ("viettel", "orange")}, "carrier_codes", "orange"),
    ({"brandname": ""}, "brandname", "required"),
    ({"brandname": "UBND Ha Tinh1"}, "brandname", "at most 11"),
    ({"brandname": "UBND HàTĩnh"}, "brandname", "à ĩ"),
    ({"brandname": "19001234"}, "brandname", "all digits"),
    ({"urgency": "Soon"}, "urgency", "'Soon'"),
    ({"severity": "Bad"}, "severity", "Extreme"),
    ({"certainty": "Sure"}, "certainty", "Observed"),
    ({"web": "javascript:alert(1)"}, "web", "http"),
    ({"schedule_at": datetime(2026, 11, 21, 10, 0)}, "schedule_at", "time zone"),
    ({"schedule_at": DAYTIME - timedelta(hours=1)}, "schedule_at", "past"),
    ({"expires_at": DAYTIME - timedelta(hours=1)}, "expires_at", "past"),
    (
        {
            "schedule_at": DAYTIME + timedelta(hours=5),
            "expires_at": DAYTIME + timedelta(hours=4),
        },
        "expires_at",
        "before it is sent",
    ),
]


def test_bad_draft_refused_by_field_and_nothing_written(
    session: Session, people: People, make_draft: Callable[..., AlertDraft]
) -> None:
    user = people["drafter"]
    for changes, field, words in BAD_DRAFTS:
        with pytest.raises(ValidationFailed) as err:
            alerts.create_draft(session, make_draft(**changes), user=user, now=DAYTIME)
        assert field in str(err.value), changes
        assert any(words in m for m in err.value.details[field]), (changes, err.value.details)
    assert _count(session, Alert) == 0


def test_every_problem_reported_at_once(
    session: Session, people: People, make_draft: Callable[..., AlertDraft]
) -> None:
    bad = make_draft(title="", body="", area_codes=(), carrier_codes=(), brandname="1")
    with pytest.raises(ValidationFailed) as err:
        alerts.create_draft(session, bad, user=people["drafter"], now=DAYTIME)
    assert set(err.value.details) == {"title", "body", "area_codes", "carrier_codes", "brandname"}


def test_long_text_fits_when_folded(
    session: Session, people: People, make_draft: Callable[..., AlertDraft]
) -> None:
    body = "Đường ngập sâu, không đi qua. " * 25  # 750 characters: 12 UCS-2 parts, 5 folded
    with pytest.raises(ValidationFailed, match="body"):
        alerts.validate_draft(session, make_draft(body=body), now=DAYTIME)
    alert = alerts.create_draft(session, make_draft(body=body, fold=True), user=people["drafter"])
    assert alert.parts == 5
    assert alerts.alert_text(alert).startswith("Duong ngap sau")


def test_registered_brandnames_are_enforced_once_any_exist(
    session: Session, people: People, make_draft: Callable[..., AlertDraft]
) -> None:
    alerts.validate_draft(session, make_draft(brandname="Anything"), now=DAYTIME)  # none yet
    session.add(Brandname(name="UBND HaTinh"))
    session.flush()
    alerts.validate_draft(session, make_draft(), now=DAYTIME)
    with pytest.raises(ValidationFailed) as err:
        alerts.validate_draft(session, make_draft(brandname="Anything"), now=DAYTIME)
    assert "not a registered brandname" in err.value.details["brandname"][0]


def test_inactive_carrier_refused(
    session: Session, people: People, make_draft: Callable[..., AlertDraft]
) -> None:
    carrier = session.scalar(select(Carrier).where(Carrier.code == "gmobile"))
    assert carrier is not None
    carrier.active = False
    with pytest.raises(ValidationFailed, match="carrier_codes") as err:
        alerts.validate_draft(session, make_draft(carrier_codes=("gmobile",)), now=DAYTIME)
    assert "not active: gmobile" in err.value.details["carrier_codes"][0]


def test_update_draft_versions_and_audits_before_after(
    session: Session, people: People, draft: AlertDraft, make_draft: Callable[..., AlertDraft]
) -> None:
    alert = alerts.create_draft(session, draft, user=people["drafter"], now=DAYTIME)
    new = make_draft(title="Cảnh báo lũ khẩn", area_codes=("18073", "18100"))
    alerts.update_draft(session, alert.id, new, user=people["drafter"], now=DAYTIME)
    assert alert.version == 2 and alert.title == "Cảnh báo lũ khẩn"
    assert sorted(a.code for a in alert.areas) == ["18073", "18100"]
    assert [v["version"] for v in alerts.versions(session, alert.id)] == [1, 2]
    _, action, before, after = _audit(session, alert.id)[-1]
    assert action == "alert.update"
    assert (before["title"], before["area_codes"], before["version"]) == (
        "Cảnh báo lũ",
        ["18073"],
        1,
    )
    assert (after["title"], after["area_codes"], after["version"]) == (
        "Cảnh báo lũ khẩn",
        ["18073", "18100"],
        2,
    )


def test_only_the_author_edits_and_only_a_draft(
    session: Session, people: People, draft: AlertDraft
) -> None:
    alert = alerts.create_draft(session, draft, user=people["drafter"], now=DAYTIME)
    with pytest.raises(PermissionDenied, match="only the author"):
        alerts.update_draft(session, alert.id, draft, user=people["approver"], now=DAYTIME)
    alerts.submit_for_approval(session, alert.id, user=people["drafter"], now=DAYTIME)
    with pytest.raises(InvalidTransition, match="pending_approval"):
        alerts.update_draft(session, alert.id, draft, user=people["drafter"], now=DAYTIME)
    assert alert.version == 1


def test_missing_alert_is_not_found(session: Session, people: People) -> None:
    with pytest.raises(NotFound, match="alert 999"):
        alerts.submit_for_approval(session, 999, user=people["drafter"])


# --- approval --------------------------------------------------------------------------------


def test_full_life_every_transition_audited(
    session: Session, people: People, draft: AlertDraft
) -> None:
    alert = _pending(session, people, draft)
    alerts.approve(session, alert.id, version=alert.version, user=people["approver"], now=DAYTIME)
    assert alert.status == AlertStatus.APPROVED and alert.approved_by == people["approver"].id
    alerts.mark_sending(session, alert.id, now=DAYTIME)
    alerts.mark_sending(session, alert.id, now=DAYTIME)  # idempotent: a retried fan-out
    alerts.pause(session, alert.id, user=people["approver"])
    alerts.resume(session, alert.id, user=people["admin"])
    alerts.mark_completed(session, alert.id)
    alerts.mark_completed(session, alert.id)  # idempotent
    assert alert.status == AlertStatus.COMPLETED and alert.completed_at is not None
    trail = [
        (actor, action, before, after["status"])
        for actor, action, before, after in _audit(session, alert.id)
    ]
    assert trail == [
        ("drafter", "alert.create", None, "draft"),
        ("drafter", "alert.submit", {"status": "draft"}, "pending_approval"),
        ("approver", "alert.approve", {"status": "pending_approval"}, "approved"),
        ("system", "alert.start", {"status": "approved"}, "sending"),
        ("approver", "alert.pause", {"status": "sending"}, "paused"),
        ("admin", "alert.resume", {"status": "paused"}, "sending"),
        ("system", "alert.complete", {"status": "sending"}, "completed"),
    ]
    [approval] = session.scalars(select(Approval).where(Approval.alert_id == alert.id))
    assert (approval.decision, approval.user_id, approval.alert_version) == (
        "approved",
        people["approver"].id,
        1,
    )


def test_drafter_cannot_approve_own_alert(
    session: Session, people: People, draft: AlertDraft
) -> None:
    approver = people["approver"]
    alert = alerts.create_draft(session, draft, user=approver, now=DAYTIME)  # approvers draft too
    alerts.submit_for_approval(session, alert.id, user=approver, now=DAYTIME)
    with pytest.raises(PermissionDenied, match="a drafter cannot approve their own alert"):
        alerts.approve(session, alert.id, version=alert.version, user=approver, now=DAYTIME)
    with pytest.raises(PermissionDenied, match="own alert"):
        alerts.reject(session, alert.id, user=approver, reason="oops")
    assert alert.status == AlertStatus.PENDING_APPROVAL
    assert _count(session, Approval) == 0
    alerts.approve(session, alert.id, version=alert.version, user=people["approver2"], now=DAYTIME)
    assert alert.status == AlertStatus.APPROVED


@pytest.mark.parametrize("role", ["drafter2", "admin", "auditor", "carrier"])
def test_only_approvers_approve(
    session: Session, people: People, draft: AlertDraft, role: str
) -> None:
    alert = _pending(session, people, draft)
    with pytest.raises(PermissionDenied, match="approver role"):
        alerts.approve(session, alert.id, version=alert.version, user=people[role], now=DAYTIME)
    assert alert.status == AlertStatus.PENDING_APPROVAL


def test_reject_needs_a_reason_and_returns_to_draft(
    session: Session, people: People, draft: AlertDraft
) -> None:
    alert = _pending(session, people, draft)
    with pytest.raises(ValidationFailed, match="reason") as err:
        alerts.reject(session, alert.id, user=people["approver"], reason="   ")
    assert err.value.details == {"reason": ["is required"]}
    assert alert.status == AlertStatus.PENDING_APPROVAL
    alerts.reject(session, alert.id, user=people["approver"], reason="Sai địa bàn")
    assert alert.status == AlertStatus.DRAFT
    [approval] = session.scalars(select(Approval).where(Approval.alert_id == alert.id))
    assert (approval.decision, approval.reason) == ("rejected", "Sai địa bàn")
    _, action, _, after = _audit(session, alert.id)[-1]
    assert (action, after["status"], after["reason"]) == ("alert.reject", "draft", "Sai địa bàn")
    # the author fixes it and asks again
    alerts.update_draft(session, alert.id, draft, user=people["drafter"], now=DAYTIME)
    alerts.submit_for_approval(session, alert.id, user=people["drafter"], now=DAYTIME)
    assert alert.status == AlertStatus.PENDING_APPROVAL and alert.version == 2


def test_withdraw_is_for_the_author(session: Session, people: People, draft: AlertDraft) -> None:
    alert = _pending(session, people, draft)
    with pytest.raises(PermissionDenied, match="only the author"):
        alerts.withdraw(session, alert.id, user=people["drafter2"])
    with pytest.raises(PermissionDenied, match="only the author"):
        alerts.submit_for_approval(session, alert.id, user=people["drafter2"])
    alerts.withdraw(session, alert.id, user=people["drafter"])
    assert alert.status == AlertStatus.DRAFT


def test_approving_a_draft_is_an_invalid_transition(
    session: Session, people: People, draft: AlertDraft
) -> None:
    alert = alerts.create_draft(session, draft, user=people["drafter"], now=DAYTIME)
    with pytest.raises(InvalidTransition, match="'draft' cannot 'approve'"):
        alerts.approve(
            session, alert.id, version=alert.version, user=people["approver"], now=DAYTIME
        )
    with pytest.raises(InvalidTransition, match="'draft' cannot 'pause'"):
        alerts.pause(session, alert.id, user=people["approver"])
    with pytest.raises(InvalidTransition, match="'draft' cannot 'start'"):
        alerts.mark_sending(session, alert.id)
    alerts.submit_for_approval(session, alert.id, user=people["drafter"], now=DAYTIME)
    with pytest.raises(InvalidTransition, match="'pending_approval' cannot 'submit'"):
        alerts.submit_for_approval(session, alert.id, user=people["drafter"], now=DAYTIME)


def test_future_schedule_is_scheduled_then_started(
    session: Session, people: People, make_draft: Callable[..., AlertDraft]
) -> None:
    at = DAYTIME + timedelta(hours=2)
    alert = _pending(session, people, make_draft(schedule_at=at))
    alerts.approve(session, alert.id, version=alert.version, user=people["approver"], now=DAYTIME)
    assert alert.status == AlertStatus.SCHEDULED
    _, action, _, after = _audit(session, alert.id)[-1]
    assert (action, after["status"], after["schedule_at"]) == (
        "alert.schedule",
        "scheduled",
        at.isoformat(),
    )
    alerts.mark_sending(session, alert.id, now=at)
    assert alert.status == AlertStatus.SENDING


def test_expired_alert_cannot_be_approved(
    session: Session, people: People, make_draft: Callable[..., AlertDraft]
) -> None:
    alert = _pending(session, people, make_draft(expires_at=DAYTIME + timedelta(hours=1)))
    with pytest.raises(ValidationFailed) as late:
        alerts.approve(
            session,
            alert.id,
            version=alert.version,
            user=people["approver"],
            now=DAYTIME + timedelta(hours=2),
        )
    assert str(late.value.reason) == (
        "the alert has already expired; edit its expiry or derive a new one"
    )
    assert late.value.details["expires_at"] == ["already expired"]
    assert alert.status == AlertStatus.PENDING_APPROVAL


# --- quiet hours -----------------------------------------------------------------------------


def test_quiet_hours_refuse_a_warning_at_23h_unless_waived(
    session: Session, people: People, draft: AlertDraft
) -> None:
    alert = _pending(session, people, draft)
    with pytest.raises(PolicyViolation) as err:
        alerts.approve(session, alert.id, version=alert.version, user=people["approver"], now=NIGHT)
    assert "quiet hours 22:00–07:00" in str(err.value)
    assert "at 23:00" in str(err.value) and "2026-11-21 07:00" in str(err.value)
    assert err.value.code == "policy_violation" and "quiet_hours" in err.value.details
    assert alert.status == AlertStatus.PENDING_APPROVAL and _count(session, Approval) == 0
    alerts.approve(
        session,
        alert.id,
        version=alert.version,
        user=people["approver"],
        now=NIGHT,
        waive_quiet_hours=True,
        waive_daily_cap=True,
    )
    # Both waivers asked for reach the alert, the approval row and the audit record.
    assert alert.status == AlertStatus.APPROVED
    assert (alert.waive_quiet_hours, alert.waive_daily_cap) == (True, True)
    [approval] = session.scalars(select(Approval).where(Approval.alert_id == alert.id))
    assert (approval.waive_quiet_hours, approval.waive_daily_cap) == (True, True)
    after = _audit(session, alert.id)[-1][3]
    assert (after["waive_quiet_hours"], after["waive_daily_cap"]) == (True, True)


@pytest.mark.parametrize("category", [AlertCategory.EMERGENCY, AlertCategory.TEST])
def test_emergency_and_test_go_at_night(
    session: Session, people: People, make_draft: Callable[..., AlertDraft], category: AlertCategory
) -> None:
    alert = _pending(session, people, make_draft(category=category))
    alerts.approve(session, alert.id, version=alert.version, user=people["approver"], now=NIGHT)
    assert alert.status == AlertStatus.APPROVED


def test_quiet_hours_judge_the_scheduled_time(
    session: Session, people: People, make_draft: Callable[..., AlertDraft], tmp_path: Any
) -> None:
    from tests.conftest import make_settings

    settings = make_settings(tmp_path, policy={"quiet_hours_start": "21:00"})
    at = datetime(2026, 11, 20, 21, 30, tzinfo=timezone(timedelta(hours=7)))
    alert = _pending(session, people, make_draft(schedule_at=at))
    with pytest.raises(PolicyViolation, match="quiet hours 21:00–07:00"):
        alerts.approve(
            session,
            alert.id,
            version=alert.version,
            user=people["approver"],
            now=DAYTIME,
            settings=settings,
        )
    alerts.approve(
        session, alert.id, version=alert.version, user=people["approver"], now=DAYTIME
    )  # default 22:00
    assert alert.status == AlertStatus.SCHEDULED


# --- control ---------------------------------------------------------------------------------


def test_cancel_pause_resume_need_approver_or_admin(
    session: Session, people: People, draft: AlertDraft
) -> None:
    alert = _pending(session, people, draft)
    alerts.approve(session, alert.id, version=alert.version, user=people["approver"], now=DAYTIME)
    alerts.mark_sending(session, alert.id)
    for action in (alerts.pause, alerts.cancel):
        with pytest.raises(PermissionDenied, match="admin or approver role"):
            action(session, alert.id, user=people["drafter"])
    alerts.cancel(session, alert.id, user=people["admin"])
    assert alert.status == AlertStatus.CANCELLED and alert.cancelled_at is not None
    alerts.mark_completed(session, alert.id)  # workers finishing after a cancel change nothing
    assert alert.status == AlertStatus.CANCELLED
    with pytest.raises(InvalidTransition, match="'cancelled' cannot 'resume'"):
        alerts.resume(session, alert.id, user=people["approver"])
    with pytest.raises(InvalidTransition, match="'cancelled' cannot 'start'"):
        alerts.mark_sending(session, alert.id)


def test_author_discards_own_draft_but_not_anothers(
    session: Session, people: People, draft: AlertDraft
) -> None:
    alert = alerts.create_draft(session, draft, user=people["drafter"], now=DAYTIME)
    with pytest.raises(PermissionDenied):
        alerts.cancel(session, alert.id, user=people["drafter2"])
    alerts.cancel(session, alert.id, user=people["drafter"])
    assert alert.status == AlertStatus.CANCELLED
    assert _audit(session, alert.id)[-1][:2] == ("drafter", "alert.cancel")


# --- derive ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "msg_type", "words"),
    [
        ("update", MsgType.UPDATE, "CẬP NHẬT"),
        ("correction", MsgType.UPDATE, "ĐÍNH CHÍNH"),
        ("all_clear", MsgType.CANCEL, "đã kết thúc"),
    ],
)
def test_derive_references_the_original(
    session: Session, people: People, draft: AlertDraft, kind: str, msg_type: MsgType, words: str
) -> None:
    original = _pending(session, people, draft)
    alerts.approve(
        session, original.id, version=original.version, user=people["approver"], now=DAYTIME
    )
    derived = alerts.derive(session, original.id, kind=kind, user=people["approver"], now=DAYTIME)
    assert derived.id != original.id and derived.status == AlertStatus.DRAFT
    assert (derived.msg_type, derived.references_id) == (msg_type, original.id)
    assert words in derived.body and "UBND HaTinh" in derived.body
    assert "10:00 20/11/2026" in derived.body  # the original's time, local
    assert [a.code for a in derived.areas] == ["18073"]
    assert [c.code for c in derived.carriers] == ["viettel", "vinaphone"]
    assert derived.category == original.category and derived.created_by == people["approver"].id
    # a second person approves it: here the drafter of the original, an approver it is not
    alerts.submit_for_approval(session, derived.id, user=people["approver"], now=DAYTIME)
    alerts.approve(
        session, derived.id, version=derived.version, user=people["approver2"], now=DAYTIME
    )
    assert derived.status == AlertStatus.APPROVED


def test_derive_needs_an_approved_original(
    session: Session, people: People, draft: AlertDraft
) -> None:
    alert = alerts.create_draft(session, draft, user=people["drafter"], now=DAYTIME)
    with pytest.raises(InvalidTransition, match="never approved"):
        alerts.derive(session, alert.id, kind="all_clear", user=people["drafter"])
    with pytest.raises(ValidationFailed, match="unknown kind"):
        alerts.derive(session, alert.id, kind="retract", user=people["drafter"])
    with pytest.raises(PermissionDenied):
        alerts.derive(session, alert.id, kind="update", user=people["auditor"])
    assert _count(session, Alert) == 1


def test_summary_is_json(session: Session, people: People, make_draft: Any) -> None:
    alert = alerts.create_draft(
        session, make_draft(category=AlertCategory.TEST, body="Thu nghiem"), user=people["drafter"]
    )
    summary = AlertOut().dump(alert)
    json.dumps(summary)
    assert summary["test"] is True and summary["text"] == "[TEST - THU NGHIEM] Thu nghiem"
    assert summary["allowed_actions"] == ["submit", "cancel"]
    assert summary["areas"] == [{"code": "18073", "name": "Phường Thành Sen"}]


def test_a_retired_area_cannot_be_targeted(
    session: Session, people: People, make_draft: Callable[..., AlertDraft]
) -> None:
    district = [AreaRow(1, "436", "Thành phố Hà Tĩnh", "42", "district")]
    load_areas(session, district)
    alerts.create_draft(
        session, make_draft(area_codes=("436",)), user=people["drafter"], now=DAYTIME
    )
    # The official list again: the abolished district is not in it, so it is retired.
    assert load_official(session, "42").retired == ["436"]
    with pytest.raises(ValidationFailed) as refused:
        alerts.create_draft(
            session, make_draft(area_codes=("436",)), user=people["drafter"], now=DAYTIME
        )
    assert refused.value.details == {
        "area_codes": ["retired area code(s), no longer targetable: 436"]
    }


def test_each_decision_names_its_maker_and_keeps_its_time(
    session: Session, people: People, draft: AlertDraft
) -> None:
    """Found by mutation testing (docs/testing.md): who withdrew, rejected, cancelled or
    completed an alert, and when, as the audit log and the alert's stamps say."""
    alert = _pending(session, people, draft)
    alerts.withdraw(session, alert.id, user=people["drafter"])
    alerts.submit_for_approval(session, alert.id, user=people["drafter"], now=DAYTIME)
    alerts.reject(session, alert.id, user=people["approver"], reason="Sai địa bàn")
    log = _audit(session, alert.id)
    assert [(actor, action) for actor, action, _, _ in log[-3:]] == [
        (people["drafter"].username, "alert.withdraw"),
        (people["drafter"].username, "alert.submit"),
        (people["approver"].username, "alert.reject"),
    ]
    assert log[-1][3]["version"] == alert.version
    later = DAYTIME + timedelta(minutes=5)
    alerts.cancel(session, alert.id, user=people["drafter"], now=later)
    assert alert.status == AlertStatus.CANCELLED and alert.cancelled_at == later
    sent = _pending(session, people, draft)
    alerts.approve(session, sent.id, version=sent.version, user=people["approver"], now=DAYTIME)
    alerts.mark_sending(session, sent.id, now=DAYTIME)
    alerts.mark_completed(session, sent.id, now=later)
    assert sent.status == AlertStatus.COMPLETED and sent.completed_at == later
    assert _audit(session, sent.id)[-1][:2] == ("system", "alert.complete")


def test_the_refusals_read_in_full(session: Session, people: People, draft: AlertDraft) -> None:
    """The sentences the API and console show, word for word (mutation testing changed them
    without a test noticing while tests matched key words only)."""
    alert = _pending(session, people, draft)
    with pytest.raises(PermissionDenied) as other:
        alerts.withdraw(session, alert.id, user=people["drafter2"])
    assert str(other.value) == "only the author can withdraw an alert from approval"
    with pytest.raises(ValidationFailed) as empty:
        alerts.reject(session, alert.id, user=people["approver"], reason="")
    assert str(empty.value) == "the rejection reason was refused (reason: is required)"
    assert empty.value.details == {"reason": ["is required"]}
    approver = people["approver"]
    own = alerts.create_draft(session, draft, user=approver, now=DAYTIME)
    alerts.submit_for_approval(session, own.id, user=approver, now=DAYTIME)
    with pytest.raises(PermissionDenied) as self_reject:
        alerts.reject(session, own.id, user=approver, reason="oops")
    assert str(self_reject.value) == (
        "a drafter cannot reject their own alert; withdraw it instead"
    )
    with pytest.raises(PermissionDenied) as pause:
        alerts.pause(session, alert.id, user=people["drafter"])
    assert (
        str(pause.value)
        == "pause of an alert needs the admin or approver role; 'drafter' is drafter"
    )
    # The console and the API say each in the reader's words, found by the refusal's key (its
    # English console text here, outside a request; a wrong key falls back to the core's).
    said = [say(e.value.reason, "Asia/Ho_Chi_Minh") for e in (other, empty, self_reject)]
    assert said == [
        "Only the author can take an alert back from approval.",
        "The reason for the rejection was refused.",
        "A drafter cannot reject their own alert; take it back instead.",
    ]


def _click(session: Session, who: str, action: str, alert_id: int, version: int) -> Alert:
    """One person's click on an alert, through the service the API and console call."""
    if action == "complete":  # the sender worker, when every delivery is final
        return alerts.mark_completed(session, alert_id, now=DAYTIME)
    if action == "start":  # the fan-out job, when it begins
        return alerts.mark_sending(session, alert_id, now=DAYTIME)
    user = People(session)[who]
    if action == "approve":
        return alerts.approve(session, alert_id, version=version, user=user, now=DAYTIME)
    if action == "reject":
        return alerts.reject(session, alert_id, user=user, reason=f"{who}: sai địa bàn")
    if action == "withdraw":
        return alerts.withdraw(session, alert_id, user=user, now=DAYTIME)
    if action == "submit":
        return alerts.submit_for_approval(session, alert_id, user=user, now=DAYTIME)
    assert action == "cancel"
    return alerts.cancel(session, alert_id, user=user, now=DAYTIME)


# first click (who, action), the click racing it, and what the second one reads once the first
# is committed: refused with that sentence, or (None) nothing to do for the worker
RACES = {
    "submit-submit": ("drafter", "submit", "drafter", "submit", "pending_approval"),
    "approve-approve": ("approver", "approve", "approver2", "approve", "approved"),
    "approve-withdraw": ("approver", "approve", "drafter", "withdraw", "approved"),
    "approve-reject": ("approver", "approve", "approver2", "reject", "approved"),
    "reject-approve": ("approver", "reject", "approver2", "approve", "draft"),
    "reject-reject": ("approver", "reject", "approver2", "reject", "draft"),
    "cancel-complete": ("approver2", "cancel", "worker", "complete", "cancelled"),
    "complete-cancel": ("worker", "complete", "approver2", "cancel", "completed"),
    "cancel-start": ("approver2", "cancel", "worker", "start", "cancelled"),
}
ALLOWED = {
    "approved": "cancel, start",
    "draft": "cancel, submit",
    "pending_approval": "approve, cancel, reject, schedule, withdraw",
    "completed": "nothing (final)",
    "cancelled": "nothing (final)",
}


# An ungranted lock in this database: a transaction waiting for another's (PostgreSQL).
WAITING_ON_A_LOCK = text(
    "SELECT count(*) FROM pg_locks JOIN pg_stat_activity USING (pid) "
    "WHERE NOT pg_locks.granted AND pg_stat_activity.datname = current_database()"
)


@contextmanager
def _statements_in_flight(database: Database) -> Iterator[dict[int, str]]:
    """The statement each thread has sent to the database and not yet had answered."""
    in_flight: dict[int, str] = {}

    def sent(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        in_flight[threading.get_ident()] = statement

    def answered(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        in_flight.pop(threading.get_ident(), None)

    event.listen(database.engine, "before_cursor_execute", sent)
    event.listen(database.engine, "after_cursor_execute", answered)
    try:
        yield in_flight
    finally:
        event.remove(database.engine, "before_cursor_execute", sent)
        event.remove(database.engine, "after_cursor_execute", answered)


def _waits_on_the_lock(database: Database, thread: threading.Thread, sent: dict[int, str]) -> bool:
    """Whether `thread` is held by the lock the caller's open transaction holds: on PostgreSQL
    a lock not granted; on SQLite (one writer at a time) a write of the thread's in flight."""
    if database.dialect == "postgresql":
        with database.engine.connect() as conn:
            return bool(conn.scalar(WAITING_ON_A_LOCK))
    statement = sent.get(thread.ident or 0, "")
    return statement.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))


@pytest.mark.parametrize("race", list(RACES))
def test_two_clicks_at_once_one_wins_and_the_other_waits_and_reads_its_outcome(
    seeded_database: Database, draft: AlertDraft, race: str
) -> None:
    """Two people act on one alert at the same moment (two approvers, an approver and the
    author, an operator's cancel and the sender finishing), each in their own connection and
    transaction. The first holds the alert's lock (FOR UPDATE on PostgreSQL, the database's
    write lock on SQLite) until it commits; the second waits, then reads the first's outcome
    and is refused with the full sentence (409 in the API), or, for the worker's completion of
    a cancelled alert, does nothing. Exactly one audit entry and one decision row are added:
    the first's. Without the lock (`get_alert(..., lock=False)` in the second's service) the
    second reads the status from before the first and both succeed, the last write winning."""
    first_who, first, second_who, second, reads = RACES[race]
    with seeded_database.session() as session:
        people = People(session)
        if first == "submit":
            alert = alerts.create_draft(session, draft, user=people["drafter"], now=DAYTIME)
        else:
            alert = _pending(session, people, draft)
        alert_id, version = alert.id, alert.version
        for who in {first_who, second_who} - {"worker"}:
            people[who]
        if {"complete", "start"} & {first, second}:  # approved by someone else
            alerts.approve(session, alert_id, version=version, user=people["approver"], now=DAYTIME)
        if "complete" in (first, second):  # then sending
            alerts.mark_sending(session, alert_id, now=DAYTIME)
    with seeded_database.session() as session:
        audit_before = len(_audit(session, alert_id))
        decisions_before = _count(session, Approval)
    outcome: list[object] = []

    def second_click() -> None:
        try:
            with seeded_database.session() as session:
                outcome.append(_click(session, second_who, second, alert_id, version).status)
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=second_click)
    with _statements_in_flight(seeded_database) as sent, seeded_database.session() as session:
        won = _click(session, first_who, first, alert_id, version).status
        thread.start()
        # Seen waiting on the first's lock, not merely slow: polled, with a generous deadline.
        deadline = time.monotonic() + 30
        while not _waits_on_the_lock(seeded_database, thread, sent):
            assert thread.is_alive(), f"the {second} did not wait for the {first}"
            assert time.monotonic() < deadline, f"the {second} never waited on the lock"
            time.sleep(0.02)
        assert thread.is_alive(), f"the {second} did not wait for the {first}"
    thread.join(30)
    assert won == reads
    [result] = outcome
    if second == "complete":
        assert result == AlertStatus.CANCELLED, result  # nothing to complete: left as it is
    else:
        assert isinstance(result, InvalidTransition), result
        assert str(result) == (
            f"an alert in status '{reads}' cannot '{second}'; allowed: {ALLOWED[reads]}"
        )
    with seeded_database.session() as session:
        final = session.get(Alert, alert_id)
        assert final is not None and final.status == reads
        added = [(actor, action) for actor, action, _, _ in _audit(session, alert_id)]
        assert added[audit_before:] == [(first_who.replace("worker", "system"), f"alert.{first}")]
        decisions = session.execute(
            select(User.username, Approval.decision)
            .join(User, User.id == Approval.user_id)
            .order_by(Approval.id)
        ).all()
        made = {"approve": [("approver", "approved")], "reject": [("approver", "rejected")]}
        assert [tuple(d) for d in decisions[decisions_before:]] == made.get(first, [])
        if reads == "approved":
            assert final.approved_by == People(session)["approver"].id
        if reads == "cancelled":
            assert final.cancelled_at is not None and final.completed_at is None
        if reads == "completed":
            assert final.completed_at is not None and final.cancelled_at is None


def test_an_approval_records_what_was_decided_and_refuses_at_the_expiry_instant(
    session: Session, people: People, make_draft: Callable[..., AlertDraft]
) -> None:
    """What the fourth mutation round of `approve` found unpinned: the refusal at the very
    instant of expiry (not only after it), each refusal's key, the decision's audit record,
    the waivers off unless asked, and the submit and start times written to their columns."""
    expiry = DAYTIME + timedelta(hours=1)
    alert = _pending(session, people, make_draft(expires_at=expiry))
    assert alert.submitted_at is not None and as_utc(alert.submitted_at) == DAYTIME
    with pytest.raises(PermissionDenied) as own:
        alerts.approve(
            session, alert.id, version=alert.version, user=people["drafter"], now=DAYTIME
        )
    assert own.value.reason is not None and own.value.reason.key == "role_needed"
    assert str(own.value).startswith("approving an alert needs the approver role")
    with pytest.raises(VersionChanged) as stale:
        alerts.approve(session, alert.id, version=7, user=people["approver"], now=DAYTIME)
    assert stale.value.reason is not None
    assert stale.value.reason.params == {"alert": alert.id, "current": alert.version, "read": 7}
    with pytest.raises(ValidationFailed) as late:
        alerts.approve(
            session, alert.id, version=alert.version, user=people["approver"], now=expiry
        )
    assert late.value.reason is not None and late.value.reason.key == "alert_expired"
    [why] = late.value.details["expires_at"]
    assert isinstance(why, Reason) and why.key == "expired"
    assert alert.status == AlertStatus.PENDING_APPROVAL and _count(session, Approval) == 0
    just_before = expiry - timedelta(microseconds=1)
    alerts.approve(
        session, alert.id, version=alert.version, user=people["approver"], now=just_before
    )
    assert (alert.waive_quiet_hours, alert.waive_daily_cap) == (False, False)
    [approval] = session.scalars(select(Approval).where(Approval.alert_id == alert.id))
    assert (approval.waive_quiet_hours, approval.waive_daily_cap) == (False, False)
    _, action, _, after = _audit(session, alert.id)[-1]
    assert action == "alert.approve"
    assert {k: after[k] for k in after if k != "status"} == {
        "version": alert.version,
        "waive_quiet_hours": False,
        "waive_daily_cap": False,
        "schedule_at": None,
        "expires_at": expiry.isoformat(),
    }
    alerts.mark_sending(session, alert.id, now=just_before)
    assert alert.started_at is not None and as_utc(alert.started_at) == just_before


def test_the_author_is_refused_approval_by_its_own_reason(
    session: Session, people: People, draft: AlertDraft
) -> None:
    approver = people["approver"]
    alert = alerts.create_draft(session, draft, user=approver, now=DAYTIME)
    alerts.submit_for_approval(session, alert.id, user=approver, now=DAYTIME)
    with pytest.raises(PermissionDenied) as own:
        alerts.approve(session, alert.id, version=alert.version, user=approver, now=DAYTIME)
    assert own.value.reason is not None and own.value.reason.key == "own_alert_approve"
    with pytest.raises(PermissionDenied) as other:
        alerts.submit_for_approval(session, alert.id, user=people["approver2"], now=DAYTIME)
    assert other.value.reason is not None and other.value.reason.key == "author_submits"


def test_each_refusal_says_its_sentence_with_its_key_and_values(
    session: Session, people: People, draft: AlertDraft, make_draft: Callable[..., AlertDraft]
) -> None:
    """The fifth mutation round's survivors in the refusals: the English sentence (what an
    API client and the CLI read), the key the console translates, and the values it fills
    in, for a deactivated user, a missing role, one's own alert, a
    refused transition and a submit by someone else; and the submit's audit record."""
    alert = _pending(session, people, make_draft(expires_at=DAYTIME + timedelta(hours=1)))
    _, action, _, after = _audit(session, alert.id)[-1]
    assert (action, after) == ("alert.submit", {"status": "pending_approval", "version": 1})

    gone = people["approver2"]
    gone.active = False
    with pytest.raises(PermissionDenied) as inactive:
        alerts.approve(session, alert.id, version=alert.version, user=gone, now=DAYTIME)
    reason = inactive.value.reason
    assert reason is not None
    assert (reason.key, reason.params, str(reason)) == (
        "user_deactivated",
        {"user": "approver2"},
        "user 'approver2' is deactivated",
    )
    with pytest.raises(PermissionDenied) as role:
        alerts.approve(
            session, alert.id, version=alert.version, user=people["auditor"], now=DAYTIME
        )
    assert role.value.reason is not None
    assert role.value.reason.params == {
        "roles": ["approver"],
        "user": "auditor",
        "role": "auditor",
    }

    own = alerts.create_draft(session, draft, user=people["approver"], now=DAYTIME)
    alerts.submit_for_approval(session, own.id, user=people["approver"], now=DAYTIME)
    with pytest.raises(PermissionDenied) as mine:
        alerts.approve(session, own.id, version=own.version, user=people["approver"], now=DAYTIME)
    assert str(mine.value.reason) == "a drafter cannot approve their own alert"
    with pytest.raises(PermissionDenied) as other:
        alerts.submit_for_approval(session, own.id, user=people["drafter2"], now=DAYTIME)
    assert str(other.value.reason) == "only the author of a draft can submit it for approval"

    # Plain strings are accepted for the status and the action, and named in the sentence.
    with pytest.raises(InvalidTransition) as refused:
        alerts.next_status("completed", "submit")  # type: ignore[arg-type]
    reason = refused.value.reason
    assert reason is not None and reason.key == "transition_refused"
    assert str(reason) == (
        "an alert in status 'completed' cannot 'submit'; allowed: nothing (final)"
    )


def test_a_schedule_that_is_now_or_past_at_approval_sends_now(
    session: Session, people: People, make_draft: Callable[..., AlertDraft]
) -> None:
    """A schedule reached while the alert waited for approval is not a schedule any more:
    the alert is approved (not scheduled) and its default validity runs from the approval,
    not from the passed schedule; at the very instant of the schedule, too."""
    for late_by in (timedelta(0), timedelta(hours=3)):
        at = DAYTIME + timedelta(hours=1)
        alert = _pending(session, people, make_draft(schedule_at=at))
        now = at + late_by
        alerts.approve(session, alert.id, version=alert.version, user=people["approver"], now=now)
        assert alert.status == AlertStatus.APPROVED, late_by
        assert alert.expires_at is not None
        assert as_utc(alert.expires_at) == now + timedelta(hours=24), late_by
        _, action, _, after = _audit(session, alert.id)[-1]
        assert (action, after["schedule_at"]) == ("alert.approve", None)
