"""Replies through the API: keywords on drafts, the summary by keyword and commune, and the
help CSV for rescue teams (approver/admin only, audited, formula-safe, in the reader's language).

The deliveries that reached the numbers are written as a sender writes them (rows submitted,
then delivered); the replies go in through `replies.store_replies`, the service the senders
call (the whole path over SMPP is tests/delivery/test_replies.py)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient
from sqlalchemy import select
from webtools import People, assert_error, login, page_csrf

from broadcast import replies
from broadcast.db import Database
from broadcast.models import (
    AlertCarrier,
    Area,
    AuditEntry,
    Carrier,
    Delivery,
    DeliveryState,
    ListStatus,
    Subscriber,
    SubscriberList,
)
from smpp_gateway.mobile import MobileMessage

ALERT = {
    "title": "Lũ lớn",
    "body": "Lũ lớn tại Hà Tĩnh. Nhắn 1 nếu an toàn, 2 nếu cần giúp.",
    "category": "emergency",
    "areas": ["18073", "18100"],
    "carriers": ["viettel", "mobifone"],
    "brandname": "UBND HaTinh",
}
KEYWORDS = [
    {"word": "1", "label": "An toàn / Safe", "help": False},
    {"word": "2", "label": "Cần giúp / Need help", "help": True},
    {"word": "Cứu", "label": "Cứu / Rescue", "help": True},
]
# number -> (carrier, commune)
AUDIENCE = {
    "84961000001": ("viettel", "18073"),
    "84961000002": ("viettel", "18073"),
    "84961000003": ("viettel", "18100"),
    "84901000004": ("mobifone", "18100"),
    "84901000005": ("mobifone", "18100"),
}
HOSTILE = '=HYPERLINK("http://x")'


def _create(client: FlaskClient, people: People, **over: object) -> dict:
    response = client.post("/api/v1/alerts", json={**ALERT, **over}, headers=people.auth("drafter"))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _reached(database: Database, alert_id: int) -> None:
    """The alert reached every number of AUDIENCE, from lists that place them in communes (the
    snapshot copies each number's commune onto its delivery row)."""
    now = datetime.now(UTC)
    with database.session() as s:
        carriers = {c.code: c.id for c in s.scalars(select(Carrier))}
        areas = {
            a.code: a.id for a in s.scalars(select(Area).where(Area.code.in_(["18073", "18100"])))
        }
        for code in ("viettel", "mobifone"):
            lst = SubscriberList(
                carrier_id=carriers[code], version=1, status=ListStatus.ACTIVE, activated_at=now
            )
            s.add(lst)
            s.flush()
            numbers = [(m, area) for m, (c, area) in AUDIENCE.items() if c == code]
            s.add_all(Subscriber(list_id=lst.id, msisdn=m, area_id=areas[a]) for m, a in numbers)
            link = s.get(AlertCarrier, (alert_id, carriers[code]))
            link.list_id = lst.id
            s.add_all(
                Delivery(
                    alert_id=alert_id,
                    carrier_id=carriers[code],
                    msisdn=m,
                    area_id=areas[a],
                    state=DeliveryState.DELIVERED if m[-1] != "5" else DeliveryState.SUBMITTED,
                    submitted_at=now - timedelta(minutes=30),
                )
                for m, a in numbers
            )


def _csv(response: object) -> list[list[str]]:
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(response.get_data(as_text=True), newline="")))


def _reply(database: Database, carrier: str, *texts: tuple[str, str]) -> None:
    with database.session() as s:
        carrier_id = s.scalar(select(Carrier.id).where(Carrier.code == carrier))
        incoming = [MobileMessage(m, "UBND HaTinh", t, datetime.now(UTC)) for m, t in texts]
        replies.store_replies(s, carrier_id, incoming, window_hours=72)


def test_keywords_are_kept_on_the_draft_and_refused_when_bad(
    client: FlaskClient, people: People
) -> None:
    alert = _create(client, people, reply_keywords=KEYWORDS)
    assert alert["reply_keywords"] == KEYWORDS
    # Absent: the templates' default; [] asks for none.
    assert [k["word"] for k in _create(client, people)["reply_keywords"]] == ["1", "2"]
    assert _create(client, people, reply_keywords=[])["reply_keywords"] == []
    templates = client.get("/api/v1/templates", headers=people.auth("drafter")).get_json()
    by_key = {t["key"]: t["reply_keywords"] for t in templates}
    assert [(k["word"], k["help"]) for k in by_key["flood"]] == [("1", False), ("2", True)]
    assert by_key["test"] == []
    for bad, named in [
        ([{"word": "Cứu", "label": "a"}, {"word": "cuu", "label": "b"}], "same as 'Cứu'"),
        ([{"word": "Other", "label": "x"}], "bucket of the rest"),
        ([{"word": "!!", "label": "x"}], "no letter or digit"),
        ([{"word": "1", "label": " "}], "is required"),  # refused by the schema, same words
    ]:
        error = assert_error(
            client.put(
                f"/api/v1/alerts/{alert['id']}",
                json={**ALERT, "reply_keywords": bad},
                headers=people.auth("drafter"),
            ),
            422,
        )
        assert named in str(error["details"]["reply_keywords"]), error
    error = assert_error(
        client.post(
            "/api/v1/alerts",
            json={**ALERT, "reply_keywords": [{"word": "1"}]},
            headers=people.auth("drafter"),
        ),
        422,
    )
    assert "label" in str(error["details"]["reply_keywords"])
    again = client.get(f"/api/v1/alerts/{alert['id']}", headers=people.auth("drafter"))
    assert again.get_json()["reply_keywords"] == KEYWORDS  # nothing changed


def test_replies_by_keyword_and_by_commune(
    client: FlaskClient, people: People, seeded_database: Database
) -> None:
    alert = _create(client, people, reply_keywords=KEYWORDS)
    aid = alert["id"]
    _reached(seeded_database, aid)
    url = f"/api/v1/alerts/{aid}/replies"
    empty = client.get(url, headers=people.auth("auditor")).get_json()
    assert empty == {
        "total": 0,
        "by_keyword": {"1": 0, "2": 0, "Cứu": 0, "other": 0},
        "by_area": [],
    }
    _reply(
        seeded_database,
        "viettel",
        ("84961000001", "1"),
        ("+84961000002", " 2 nha bi ngap"),  # international form, words after the keyword
        ("0961000003", "CỨU với"),  # national form, diacritics and case
        ("84961000003", "Cam on"),
        ("84969999999", "2"),  # a number no alert reached: stored, attributed to none
    )
    _reply(seeded_database, "mobifone", ("84901000004", "1."), ("84901000005", "22"))
    body = client.get(url, headers=people.auth("approver")).get_json()
    assert body["total"] == 6
    assert body["by_keyword"] == {"1": 2, "2": 1, "Cứu": 1, "other": 2}
    with seeded_database.session() as s:
        names = dict(
            s.execute(select(Area.code, Area.name).where(Area.code.in_(["18073", "18100"]))).all()
        )
    assert body["by_area"] == [
        {
            "code": "18100",
            "name": names["18100"],
            "total": 4,
            "by_keyword": {"1": 1, "2": 0, "Cứu": 1, "other": 2},
        },
        {
            "code": "18073",
            "name": names["18073"],
            "total": 2,
            "by_keyword": {"1": 1, "2": 1, "Cứu": 0, "other": 0},
        },
    ]
    with seeded_database.session() as s:
        stray = s.scalars(select(replies.Reply).where(replies.Reply.alert_id.is_(None))).all()
    assert [(r.msisdn, r.text, r.keyword) for r in stray] == [("84969999999", "2", None)]
    # Drafters and auditors read it; carriers do not; an unknown alert is a 404.
    assert client.get(url, headers=people.auth("drafter")).status_code == 200
    assert_error(client.get(url, headers=people.auth("viettel")), 403, "forbidden")
    assert_error(client.get("/api/v1/alerts/99999/replies", headers=people.auth("admin")), 404)


def test_help_csv_for_rescue_teams(
    client: FlaskClient, people: People, seeded_database: Database
) -> None:
    aid = _create(client, people, reply_keywords=KEYWORDS)["id"]
    _reached(seeded_database, aid)
    _reply(
        seeded_database,
        "viettel",
        ("84961000001", "1"),
        ("84961000002", f"2 {HOSTILE}"),
        ("84961000003", "cuu"),
    )
    _reply(seeded_database, "mobifone", ("84901000004", HOSTILE))
    url = f"/api/v1/alerts/{aid}/help.csv"
    for who in ("drafter", "auditor", "viettel", "mobifone"):
        assert_error(client.get(url, headers=people.auth(who)), 403, "forbidden")
    assert_error(client.get("/api/v1/alerts/99999/help.csv", headers=people.auth("admin")), 404)
    response = client.get(url, headers=people.auth("approver"))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert f"loa-alert-{aid}-help.csv" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True), newline="")))
    # The API user's language is Vietnamese (the default): headers in Vietnamese.
    assert rows[0] == ["Số thuê bao", "Nhà mạng", "Mã xã/phường", "Xã/phường", "Tin trả lời",
                       "Nhận lúc (giờ địa phương)"]  # fmt: skip
    with seeded_database.session() as s:
        names = dict(s.execute(select(Area.code, Area.name)).all())
    assert [r[:5] for r in rows[1:]] == [
        ["84961000002", "viettel", "18073", names["18073"], f"2 {HOSTILE}"],
        ["84961000003", "viettel", "18100", names["18100"], "cuu"],
    ]
    local = datetime.strptime(rows[1][5], "%Y-%m-%d %H:%M:%S")
    assert abs(local - datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=7)) < timedelta(
        minutes=5
    )
    # A reply starting with "=" is defused as in the delivery report.
    _reply(seeded_database, "viettel", ("84961000001", f"Cứu {HOSTILE}"))
    _reply(seeded_database, "mobifone", ("84901000005", "=2+2"))
    rows = _csv(client.get(url, headers=people.auth("admin")))
    # "=2+2" reads as the keyword 2 (punctuation is no part of a word) and is defused.
    assert [r[4] for r in rows[1:]] == [f"2 {HOSTILE}", "cuu", f"Cứu {HOSTILE}", "'=2+2"]
    with seeded_database.session() as s:
        viettel = s.scalar(select(Carrier.id).where(Carrier.code == "viettel"))
        s.add(replies.Reply(carrier_id=viettel, msisdn="=1+1", text="@SUM(1)",
                            received_at=datetime.now(UTC), alert_id=aid, keyword="2"))  # fmt: skip
    rows = _csv(client.get(url, headers=people.auth("admin")))
    assert rows[-1][0] == "'=1+1" and rows[-1][4] == "'@SUM(1)"
    with seeded_database.session() as s:
        audits = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == "alert.export_help")
            .order_by(AuditEntry.id)
        ).all()
    assert [(a.actor, a.object_id, a.after["rows"]) for a in audits] == [
        ("approver", str(aid), 2),
        ("admin", str(aid), 4),
        ("admin", str(aid), 5),
    ]


def test_help_csv_headers_follow_the_console_language(
    client: FlaskClient, people: People, seeded_database: Database
) -> None:
    aid = _create(client, people, reply_keywords=KEYWORDS)["id"]
    login(client, "approver")
    client.post("/locale/en", data={"csrf_token": page_csrf(client), "next": "/alerts/"})
    response = client.get(f"/alerts/{aid}/help.csv")
    assert response.status_code == 200
    assert response.get_data(as_text=True).splitlines()[0] == (
        "Phone number,Carrier,Commune code,Commune,Reply,Received at (local time)"
    )
    login(client, "drafter")
    assert client.get(f"/alerts/{aid}/help.csv").status_code == 403
