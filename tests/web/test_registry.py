"""Brandnames and the test group: the core rules (broadcast.registry), the API and the console
pages; administrators only, every change audited, refusals name the field and change nothing."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from webtools import People, assert_error, login, page_csrf

from broadcast import registry
from broadcast.db import Database
from broadcast.errors import NotFound, ValidationFailed
from broadcast.models import AuditEntry, Brandname, TestRecipient
from broadcast.settings import Settings
from subscriber_import.numbers import normalise_one
from subscriber_import.service import load_plan


@pytest.fixture
def normalise(settings: Settings) -> registry.Normaliser:
    plan = load_plan(settings)
    return lambda value: normalise_one(value, plan)


def _actions(database: Database) -> list[str]:
    with database.session() as s:
        return list(
            s.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.object_type.in_(["brandname", "test_recipient"]))
                .order_by(AuditEntry.id)
            )
        )


def test_brandnames_are_validated_deactivated_and_reactivated(seeded_database: Database) -> None:
    with seeded_database.session() as s:
        row = registry.add_brandname(s, "  UBND HaTinh ", actor="admin")
        assert (row.name, row.active) == ("UBND HaTinh", True)
        first_id = row.id
    for bad, says in [
        ("", "required"),
        ("So TTTT Ha Tinh", "at most 11"),
        ("Sở TTTT", "not allowed"),
        ("113", "all digits"),
        ("ubnd hatinh", "already registered"),
    ]:
        with pytest.raises(ValidationFailed) as caught, seeded_database.session() as s:
            registry.add_brandname(s, bad, actor="admin")
        assert says in " ".join(caught.value.details["name"]), bad
    with seeded_database.session() as s:
        assert registry.deactivate_brandname(s, first_id, actor="admin").active is False
        registry.deactivate_brandname(s, first_id, actor="admin")  # twice: nothing more to say
    with seeded_database.session() as s:
        again = registry.add_brandname(s, "UBND HaTinh", actor="admin")
        assert again.id == first_id and again.active
        assert [b.name for b in registry.list_brandnames(s)] == ["UBND HaTinh"]
    with pytest.raises(NotFound), seeded_database.session() as s:
        registry.deactivate_brandname(s, 999, actor="admin")
    assert _actions(seeded_database) == [
        "brandname.add",
        "brandname.deactivate",
        "brandname.activate",
    ]


def test_test_recipients_are_normalised_and_carried_by_the_chosen_carrier(
    seeded_database: Database, normalise: registry.Normaliser
) -> None:
    with seeded_database.session() as s:
        # a Viettel prefix kept after porting to MobiFone: the administrator's choice stands
        added = registry.add_test_recipient(
            s,
            msisdn="+84 96-123.4567",
            carrier_code="mobifone",
            name="Ms Lan",
            normalise=normalise,
            actor="admin",
        )
        assert (added.msisdn, added.carrier_code) == ("84961234567", "mobifone")
        old = registry.add_test_recipient(
            s, msisdn="01662345678", carrier_code="viettel", normalise=normalise, actor="admin"
        )
        assert old.msisdn == "84362345678"  # 11-digit Viettel 0166 → 036
    refusals = [
        ({"msisdn": "0961234567", "carrier_code": "viettel"}, {"msisdn": "already in"}),
        ({"msisdn": "024 3825 1234", "carrier_code": "viettel"}, {"msisdn": "not a Vietnamese"}),
        ({"msisdn": "", "carrier_code": "nowhere"}, {"msisdn": "''", "carrier": "unknown"}),
        ({"msisdn": "0912345678", "carrier_code": "viettel", "name": "x" * 201}, {"name": "201"}),
    ]
    for kwargs, says in refusals:
        with pytest.raises(ValidationFailed) as caught, seeded_database.session() as s:
            registry.add_test_recipient(s, normalise=normalise, actor="admin", **kwargs)
        for field, text in says.items():
            assert text in " ".join(caught.value.details[field]), (kwargs, caught.value.details)
    with seeded_database.session() as s:
        listed = registry.list_test_recipients(s)
        assert [(r.msisdn, r.carrier_code) for r in listed] == [
            ("84961234567", "mobifone"),
            ("84362345678", "viettel"),
        ]
        gone = registry.remove_test_recipient(s, listed[0].id, actor="admin")
        assert gone.msisdn == "84961234567"
    with pytest.raises(NotFound), seeded_database.session() as s:
        registry.remove_test_recipient(s, listed[0].id, actor="admin")
    with seeded_database.session() as s:
        assert s.scalar(select(func.count(TestRecipient.id))) == 1
    assert _actions(seeded_database) == [
        "test_recipient.add",
        "test_recipient.add",
        "test_recipient.remove",
    ]


def test_api_brandnames_and_test_group(
    client: FlaskClient, people: People, seeded_database: Database
) -> None:
    admin = people.auth("admin")
    created = client.post("/api/v1/brandnames", json={"name": "UBND HaTinh"}, headers=admin)
    assert created.status_code == 201 and created.get_json()["active"] is True
    bid = created.get_json()["id"]
    error = assert_error(
        client.post("/api/v1/brandnames", json={"name": "123456"}, headers=admin),
        422,
        "validation_failed",
    )
    assert "all digits" in error["details"]["name"][0]
    off = client.post(f"/api/v1/brandnames/{bid}/deactivate", headers=admin)
    assert off.status_code == 200 and off.get_json()["active"] is False
    assert client.get("/api/v1/brandnames", headers=admin).get_json() == [
        {"id": bid, "name": "UBND HaTinh", "active": False}
    ]
    assert_error(client.post("/api/v1/brandnames/999/deactivate", headers=admin), 404)

    added = client.post(
        "/api/v1/test-recipients",
        json={"msisdn": "0912 345 678", "carrier": "vinaphone", "name": "Anh Minh"},
        headers=admin,
    )
    assert added.status_code == 201
    assert added.get_json() == {
        "id": added.get_json()["id"],
        "msisdn": "84912345678",
        "carrier": "vinaphone",
        "name": "Anh Minh",
    }
    bad = client.post(
        "/api/v1/test-recipients", json={"msisdn": "12", "carrier": "vinaphone"}, headers=admin
    )
    assert "msisdn" in assert_error(bad, 422)["details"]
    listed = client.get("/api/v1/test-recipients", headers=admin).get_json()
    assert [r["msisdn"] for r in listed] == ["84912345678"]
    rid = listed[0]["id"]
    assert client.delete(f"/api/v1/test-recipients/{rid}", headers=admin).status_code == 200
    assert_error(client.delete(f"/api/v1/test-recipients/{rid}", headers=admin), 404)
    with seeded_database.session() as s:
        entries = s.scalars(
            select(AuditEntry).where(AuditEntry.object_type.in_(["brandname", "test_recipient"]))
        ).all()
        assert {(e.actor, e.action) for e in entries} == {
            ("admin", "brandname.add"),
            ("admin", "brandname.deactivate"),
            ("admin", "test_recipient.add"),
            ("admin", "test_recipient.remove"),
        }


def test_console_brandnames_and_test_group(
    client: FlaskClient, people: People, seeded_database: Database
) -> None:
    login(client, "drafter")
    assert client.get("/admin/brandnames").status_code == 403
    assert client.get("/admin/test-group").status_code == 403
    token = page_csrf(client)
    assert (
        client.post("/admin/brandnames", data={"csrf_token": token, "name": "X"}).status_code == 403
    )
    login(client, "admin")
    token = page_csrf(client, "/admin/brandnames")
    page = client.post(
        "/admin/brandnames",
        data={"csrf_token": token, "name": "UBND HaTinh"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert 'data-brandname="UBND HaTinh"' in page and "Đang hoạt động" in page
    refused = client.post(
        "/admin/brandnames", data={"csrf_token": token, "name": "Sở TTTT Hà Tĩnh"}
    ).get_data(as_text=True)
    assert "tối đa 11" in refused and "không được phép" in refused and "at most" not in refused
    with seeded_database.session() as s:
        bid = s.scalar(select(Brandname.id).where(Brandname.name == "UBND HaTinh"))
        assert s.scalar(select(func.count(Brandname.id))) == 1
    page = client.post(
        f"/admin/brandnames/{bid}/deactivate", data={"csrf_token": token}, follow_redirects=True
    ).get_data(as_text=True)
    assert "Đã ngừng dùng" in page
    assert (
        client.post("/admin/brandnames/999/deactivate", data={"csrf_token": token}).status_code
        == 404
    )

    page = client.post(
        "/admin/test-group",
        data={"csrf_token": token, "msisdn": "0961234567", "carrier": "viettel", "name": "Lan"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert 'data-msisdn="84961234567"' in page
    refused = client.post(
        "/admin/test-group",
        data={"csrf_token": token, "msisdn": "0961 234 567", "carrier": "viettel"},
    ).get_data(as_text=True)
    assert "đã có trong nhóm thử nghiệm" in refused and 'value="0961 234 567"' in refused
    with seeded_database.session() as s:
        rid = s.scalar(select(TestRecipient.id))
    page = client.post(
        f"/admin/test-group/{rid}/remove", data={"csrf_token": token}, follow_redirects=True
    ).get_data(as_text=True)
    assert 'data-msisdn="84961234567"' not in page
    assert (
        client.post(f"/admin/test-group/{rid}/remove", data={"csrf_token": token}).status_code
        == 404
    )
    audit = client.get("/admin/audit").get_data(as_text=True)
    assert "brandname.deactivate" in audit and "test_recipient.remove" in audit
