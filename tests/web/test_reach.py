"""After the alert: reach by commune, carriers' network status, resend to the unreached.

An alert goes to eight numbers in two communes over two carriers; the test writes the outcome
each number's receipt would have (the end-to-end resend over the SMSC simulator is in
tests/delivery/test_resend.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, insert, select
from webtools import People, assert_error, hidden_fields, login, page_csrf

from broadcast import alerts, deliveries
from broadcast.db import Database
from broadcast.models import (
    Alert,
    Area,
    AuditEntry,
    Carrier,
    Delivery,
    DeliveryState,
    ListStatus,
    NetworkStatus,
    Subscriber,
    SubscriberList,
)

# 18073 = Phường Thành Sen, 18100 = Phường Trần Phú, 18196: a commune the alert does not target.
NUMBERS = {
    "viettel": {"84961000001": "18073", "84961000002": "18073", "84961000003": "18100",
                "84961000004": "18100"},
    "mobifone": {"84901000001": "18073", "84901000002": "18073", "84901000003": "18100",
                 "84901000004": "18100"},
}  # fmt: skip
OUTCOME = {
    "84961000001": DeliveryState.UNDELIVERABLE,
    "84961000002": DeliveryState.DELIVERED,
    "84901000001": DeliveryState.EXPIRED,
    "84901000002": DeliveryState.REJECTED,
    "84961000003": DeliveryState.DELIVERED,
    "84961000004": DeliveryState.DELIVERED,
    "84901000003": DeliveryState.DELIVERED,
    "84901000004": DeliveryState.UNDELIVERABLE,
}
UNREACHED = {m for m, state in OUTCOME.items() if state != DeliveryState.DELIVERED}
ALERT = {
    "title": "Lũ quét",
    "body": "Lũ quét tại Thành Sen và Trần Phú. Di chuyển lên cao ngay.",
    "category": "emergency",
    "areas": ["18073", "18100"],
    "carriers": ["viettel", "mobifone"],
    "brandname": "UBND HaTinh",
}


@pytest.fixture
def lists(seeded_database: Database) -> None:
    with seeded_database.session() as s:
        areas = dict(s.execute(select(Area.code, Area.id)).all())
        for code, numbers in NUMBERS.items():
            carrier_id = s.scalar(select(Carrier.id).where(Carrier.code == code))
            row = SubscriberList(carrier_id=carrier_id, version=1, status=ListStatus.ACTIVE)
            s.add(row)
            s.flush()
            s.execute(
                insert(Subscriber),
                [{"list_id": row.id, "msisdn": m, "area_id": areas[a]} for m, a in numbers.items()],
            )


def _post(client: FlaskClient, path: str, who: str, people: People, **body: Any) -> Any:
    return client.post(path, json=body or None, headers=people.auth(who))


def approve(
    client: FlaskClient, people: People, alert: dict[str, Any], who: str = "approver"
) -> Any:
    submitted = _post(client, f"/api/v1/alerts/{alert['id']}/submit", "drafter", people)
    assert submitted.status_code == 200, submitted.get_json()
    return _post(
        client, f"/api/v1/alerts/{alert['id']}/approve", who, people, version=alert["version"]
    )


def snapshot(database: Database, alert_id: int) -> set[str]:
    """What the fan-out job writes (its INSERT … SELECT): the numbers the alert goes to."""
    with database.session() as s:
        deliveries.write_audience(s, s.get(Alert, alert_id), batch_size=50)
        alerts.mark_sending(s, alert_id)
    with database.session() as s:
        return set(s.scalars(select(Delivery.msisdn).where(Delivery.alert_id == alert_id)))


def finish(database: Database, alert_id: int, outcome: dict[str, DeliveryState]) -> None:
    """Every number's receipt came back: the states the senders would have written."""
    with database.session() as s:
        for row in s.scalars(select(Delivery).where(Delivery.alert_id == alert_id)):
            row.state = outcome.get(row.msisdn, DeliveryState.DELIVERED)
        s.flush()
        alerts.mark_completed(s, alert_id)


@pytest.fixture
def sent(client: FlaskClient, people: People, seeded_database: Database, lists: None) -> int:
    created = client.post("/api/v1/alerts", json=ALERT, headers=people.auth("drafter"))
    assert created.status_code == 201, created.get_json()
    alert = created.get_json()
    assert approve(client, people, alert).status_code == 200
    assert snapshot(seeded_database, alert["id"]) == set(OUTCOME)
    finish(seeded_database, alert["id"], OUTCOME)
    return alert["id"]


def test_progress_ranks_communes_by_share_reached_lowest_first(
    client: FlaskClient, people: People, sent: int
) -> None:
    progress = client.get(f"/api/v1/alerts/{sent}/progress", headers=people.auth("auditor"))
    assert progress.status_code == 200
    areas = progress.get_json()["areas"]
    assert [(a["code"], a["total"], a["delivered"], a["failed"]) for a in areas] == [
        ("18073", 4, 1, 3),
        ("18100", 4, 3, 1),
    ]
    assert areas[0]["name"] == "Phường Thành Sen"


def status_of(client: FlaskClient, people: People, carrier: str, who: str = "admin") -> Any:
    response = client.get(f"/api/v1/carriers/{carrier}/status", headers=people.auth(who))
    assert response.status_code == 200, response.get_json()
    return {(r["code"], r["state"], r["note"]) for r in response.get_json()}


def put_status(client: FlaskClient, people: People, carrier: str, who: str, *areas: Any) -> Any:
    return client.put(
        f"/api/v1/carriers/{carrier}/status",
        json={"areas": [{"code": c, "state": s, "note": n} for c, s, n in areas]},
        headers=people.auth(who),
    )


def test_a_carrier_reports_its_own_network_only(
    client: FlaskClient, people: People, seeded_database: Database
) -> None:
    down = ("18073", "down", "Trạm BTS mất điện")
    ok = put_status(client, people, "viettel", "viettel", down)
    assert ok.status_code == 200, ok.get_json()
    assert status_of(client, people, "viettel", who="viettel") == {down}
    # another carrier's network: refused, and nothing written
    error = assert_error(
        put_status(client, people, "mobifone", "viettel", ("18100", "down", "")), 403
    )
    assert "mạng của nhà mạng mình" in error["message"]
    assert_error(put_status(client, people, "viettel", "mobifone", ("18073", "normal", "")), 403)
    assert status_of(client, people, "mobifone") == set()
    assert status_of(client, people, "viettel") == {down}
    # nor may a drafter; another carrier's status is not even visible to a carrier
    assert_error(put_status(client, people, "viettel", "drafter", ("18073", "normal", "")), 403)
    assert_error(
        client.get("/api/v1/carriers/mobifone/status", headers=people.auth("viettel")), 404
    )
    # an admin may
    assert (
        put_status(client, people, "mobifone", "admin", ("18100", "degraded", "")).status_code
        == 200
    )
    assert status_of(client, people, "mobifone") == {("18100", "degraded", "")}


def test_network_status_refusals_name_the_row_and_change_nothing(
    client: FlaskClient, people: People, seeded_database: Database
) -> None:
    bad_state = assert_error(
        put_status(client, people, "viettel", "viettel", ("18073", "gone", "")), 422
    )
    assert "state" in str(bad_state["details"])
    unknown = assert_error(
        put_status(
            client, people, "viettel", "viettel", ("18073", "down", ""), ("99999", "down", "")
        ),
        422,
    )
    assert "areas[1]" in unknown["details"] and "99999" in str(unknown["details"])
    twice = assert_error(
        put_status(
            client, people, "viettel", "viettel", ("18073", "down", ""), ("18073", "normal", "")
        ),
        422,
    )
    assert "areas[1]" in twice["details"]
    assert_error(client.put("/api/v1/carriers/viettel/status", json={"areas": []},
                            headers=people.auth("viettel")), 422)  # fmt: skip
    assert_error(put_status(client, people, "nobody", "admin", ("18073", "down", "")), 404)
    assert status_of(client, people, "viettel") == set()


def test_status_history_is_kept_audited_and_a_replay_adds_nothing(
    client: FlaskClient, people: People, seeded_database: Database
) -> None:
    for state in ("down", "down", "normal"):
        response = put_status(client, people, "viettel", "viettel", ("18073", state, ""))
        assert response.status_code == 200
    assert status_of(client, people, "viettel") == {("18073", "normal", "")}
    with seeded_database.session() as s:
        history = s.scalars(select(NetworkStatus.state).order_by(NetworkStatus.id)).all()
        audited = s.scalars(
            select(AuditEntry.after).where(AuditEntry.action == "carrier.network_status")
        ).all()
    assert [h.value for h in history] == ["down", "normal"]
    assert [a["18073"]["state"] for a in audited] == ["down", "normal"]


def test_preview_and_progress_show_targeted_communes_down(
    client: FlaskClient, people: People, sent: int
) -> None:
    put_status(client, people, "viettel", "viettel", ("18073", "down", "Trạm BTS mất điện"))
    put_status(client, people, "mobifone", "mobifone", ("18196", "down", ""))  # not targeted
    preview = client.post(
        "/api/v1/preview",
        json={"text": "x", "areas": ["18073", "18100"], "carriers": ["viettel", "mobifone"]},
        headers=people.auth("drafter"),
    ).get_json()
    network = [w for w in preview["warnings"] if w["code"].startswith("network")]
    assert [(w["code"], w["carrier"], w["area"]) for w in network] == [
        ("network_down", "viettel", "18073")
    ]
    assert "Phường Thành Sen" in network[0]["message"] and "mất điện" in network[0]["message"]
    progress = client.get(f"/api/v1/alerts/{sent}/progress", headers=people.auth("auditor"))
    assert [(n["carrier"], n["code"], n["state"]) for n in progress.get_json()["network"]] == [
        ("viettel", "18073", "down")
    ]


def derive(
    client: FlaskClient, people: People, alert_id: int, who: str = "drafter", **body: Any
) -> Any:
    return client.post(
        f"/api/v1/alerts/{alert_id}/derive",
        json={"kind": "resend", **body},
        headers=people.auth(who),
    )


def readback_total(client: FlaskClient, alert_id: int, who: str = "drafter") -> str:
    login(client, who)
    page = client.get(f"/alerts/{alert_id}").get_data(as_text=True)
    client.post("/logout")
    found = re.search(r'id="audience-total"[^>]*>([^<]*)<', page)
    assert found, page
    return found.group(1).strip()


def test_resend_goes_to_exactly_the_unreached_after_two_person_approval(
    client: FlaskClient, people: People, seeded_database: Database, sent: int
) -> None:
    created = derive(client, people, sent)
    assert created.status_code == 201, created.get_json()
    resend = created.get_json()
    assert resend["status"] == "draft" and resend["resend_of_id"] == sent
    assert resend["body"] == ALERT["body"]
    assert readback_total(client, resend["id"]) == "4"
    # the edit form's live preview counts the same (draft.js sends the alert it resends)
    preview = client.post(
        "/api/v1/preview",
        json={"text": ALERT["body"], "areas": ALERT["areas"], "carriers": ALERT["carriers"],
              "category": "emergency", "resend_of": sent},
        headers=people.auth("drafter"),
    ).get_json()  # fmt: skip
    assert preview["audience_total"] == 4
    assert {r["carrier"]: r["audience"] for r in preview["audience"]} == {
        "viettel": 1,
        "mobifone": 3,
    }
    # the drafter cannot approve it, nor can an approver who drafted a resend
    assert_error(
        _post(client, f"/api/v1/alerts/{resend['id']}/approve", "drafter", people, version=1), 403
    )
    own = derive(client, people, sent, who="approver").get_json()
    _post(client, f"/api/v1/alerts/{own['id']}/submit", "approver", people)
    error = assert_error(
        _post(client, f"/api/v1/alerts/{own['id']}/approve", "approver", people, version=1), 403
    )
    assert "tự phê duyệt" in error["message"]
    assert approve(client, people, resend).status_code == 200
    assert snapshot(seeded_database, resend["id"]) == UNREACHED
    with seeded_database.session() as s:
        areas = dict(s.execute(select(Area.id, Area.code)).all())
        written = {
            m: areas[a]
            for m, a in s.execute(
                select(Delivery.msisdn, Delivery.area_id).where(Delivery.alert_id == resend["id"])
            )
        }
    assert written == {m: a for nums in NUMBERS.values() for m, a in nums.items() if m in UNREACHED}
    finish(seeded_database, resend["id"], {})
    # everybody is reached now: a second resend is refused, and names why
    error = assert_error(derive(client, people, sent), 409)
    assert "không còn ai chưa nhận" in error["message"]


def test_a_resend_narrowed_to_a_commune_and_a_carrier(
    client: FlaskClient, people: People, seeded_database: Database, sent: int
) -> None:
    created = derive(client, people, sent, areas=["18073"], carriers=["mobifone"])
    assert created.status_code == 201, created.get_json()
    resend = created.get_json()
    assert [a["code"] for a in resend["areas"]] == ["18073"] and resend["carriers"] == ["mobifone"]
    assert readback_total(client, resend["id"]) == "2"
    assert approve(client, people, resend).status_code == 200
    assert snapshot(seeded_database, resend["id"]) == {"84901000001", "84901000002"}
    # while that resend sends, a full resend leaves its numbers out (nobody texted twice)
    again = derive(client, people, sent)
    assert again.status_code == 201
    assert readback_total(client, again.get_json()["id"]) == "2"


def test_resend_refusals(
    client: FlaskClient, people: People, seeded_database: Database, sent: int
) -> None:
    draft = client.post("/api/v1/alerts", json=ALERT, headers=people.auth("drafter")).get_json()
    assert "chưa từng được gửi" in assert_error(derive(client, people, draft["id"]), 409)["message"]
    sending = client.post("/api/v1/alerts", json=ALERT, headers=people.auth("drafter")).get_json()
    approve(client, people, sending)
    snapshot(seeded_database, sending["id"])
    assert "chỉ gửi lại khi" in assert_error(derive(client, people, sending["id"]), 409)["message"]
    foreign = assert_error(derive(client, people, sent, carriers=["vinaphone"]), 422)
    assert "vinaphone" in str(foreign["details"]["carriers"])
    outside = assert_error(derive(client, people, sent, areas=["18196"]), 422)
    assert "18196" in str(outside["details"]["areas"])
    assert_error(derive(client, people, sent, who="viettel"), 403)
    assert_error(derive(client, people, sent, who="auditor"), 403)
    assert_error(
        client.post(f"/api/v1/alerts/{sent}/derive", json={"kind": "update", "areas": ["18073"]},
                    headers=people.auth("drafter")),
        422,
    )  # fmt: skip
    with seeded_database.session() as s:
        assert (
            s.scalar(select(func.count()).select_from(Alert).where(Alert.resend_of_id.is_not(None)))
            == 0
        )


def test_console_carrier_reports_its_network(
    client: FlaskClient, people: People, seeded_database: Database
) -> None:
    login(client, "viettel")
    page = client.get("/carriers/viettel/status").get_data(as_text=True)
    form = hidden_fields(page, "status-form")
    done = client.post(
        "/carriers/viettel/status",
        data={**form, "area": "18073", "state": "down", "note": "Trạm BTS mất điện"},
    )
    assert done.status_code == 302
    page = client.get("/carriers/viettel/status").get_data(as_text=True)
    assert 'data-area="18073" data-state="down"' in page and "Trạm BTS mất điện" in page
    assert "Mất sóng" in page
    refused = client.post("/carriers/viettel/status", data={**form, "area": "18073", "state": "x"})
    assert refused.status_code == 302
    assert "gone" not in client.get("/carriers/viettel/status").get_data(as_text=True)
    # another carrier's page does not exist for this carrier, nor can it post there
    assert client.get("/carriers/mobifone/status").status_code == 404
    down = {**form, "area": "18073", "state": "down"}
    other = client.post("/carriers/mobifone/status", data=down)
    assert other.status_code == 404
    assert status_of(client, people, "mobifone") == set()
    client.post("/logout")
    login(client, "drafter")
    page = client.get("/carriers/viettel/status").get_data(as_text=True)
    assert "Trạm BTS mất điện" in page and 'id="status-form"' not in page
    token = page_csrf(client)
    posted = {"csrf_token": token, "area": "18073", "state": "normal"}
    assert client.post("/carriers/viettel/status", data=posted).status_code == 403


def test_console_resend_reads_back_the_count_then_links_both_alerts(
    client: FlaskClient, people: People, seeded_database: Database, sent: int
) -> None:
    put_status(client, people, "mobifone", "mobifone", ("18073", "down", ""))
    put_status(client, people, "mobifone", "mobifone", ("18073", "normal", ""))
    login(client, "drafter")
    page = client.get(f"/alerts/{sent}").get_data(as_text=True)
    assert 'id="do-resend"' in page
    # mobifone is back in 18073, where two of its numbers were not reached: offered
    offer = re.search(
        r'<li data-carrier="mobifone" data-area="18073">([^<]*)<a href="([^"]+)"', page
    )
    assert offer and "2" in offer.group(1), page
    confirm = client.get(offer.group(2).replace("&amp;", "&")).get_data(as_text=True)
    assert re.search(r'id="resend-total">[^<]*\b2\b', confirm), confirm
    made = client.post(f"/alerts/{sent}/derive", data=hidden_fields(confirm, "resend-form"))
    assert made.status_code == 302
    resend_id = int(re.search(r"/alerts/(\d+)/edit", made.headers["Location"]).group(1))
    resend = client.get(f"/alerts/{resend_id}").get_data(as_text=True)
    assert f'href="/alerts/{sent}">#{sent}</a>' in resend and 'id="resend-of"' in resend
    assert re.search(r'id="audience-total"[^>]*>\s*2\s*<', resend)
    original = client.get(f"/alerts/{sent}").get_data(as_text=True)
    assert f'href="/alerts/{resend_id}">#{resend_id}</a>' in original
    # a full read-back counts the four unreached less the two the draft will take… once sent:
    # a draft holds nobody yet, so all four are still offered
    full = client.get(f"/alerts/{sent}/resend").get_data(as_text=True)
    assert re.search(r'id="resend-total">[^<]*\b4\b', full)
