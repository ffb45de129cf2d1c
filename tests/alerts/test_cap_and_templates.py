"""CAP 1.2 XML parsed back field by field, and the text templates."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from broadcast import alerts, templates
from broadcast.alerts import AlertDraft
from broadcast.cap import CAP_NS, to_cap_xml
from broadcast.errors import NotFound
from broadcast.models import AlertCategory
from tests.alerts.conftest import DAYTIME, People

NS = {"cap": CAP_NS}
SENDER = "canhbao@hatinh.gov.vn"


def _parse(xml: bytes) -> ET.Element:
    return ET.fromstring(xml)  # noqa: S314 (our own output, parsed to check it)


def _text(root: ET.Element, path: str) -> str | None:
    element = root.find(path, NS)
    return None if element is None else element.text


def test_cap_round_trip_with_escaping_and_references(
    session: Session, people: People, make_draft: Callable[..., AlertDraft]
) -> None:
    draft = make_draft(
        title="Bão số 5 <Kajiki> & lũ",
        body="Nước dâng > 2m & sóng lớn; <script>alert(1)</script>",
        area_codes=("18073", "18652"),
        expires_at=DAYTIME + timedelta(hours=6),
        schedule_at=DAYTIME + timedelta(minutes=30),
        event="Bão",
    )
    original = alerts.create_draft(session, draft, user=people["drafter"], now=DAYTIME)
    alerts.submit_for_approval(session, original.id, user=people["drafter"], now=DAYTIME)
    alerts.approve(
        session, original.id, version=original.version, user=people["approver"], now=DAYTIME
    )

    xml = to_cap_xml(original, sender=SENDER)
    assert xml.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    assert b"&lt;script&gt;" in xml and b"<script>" not in xml
    root = _parse(xml)
    assert root.tag == f"{{{CAP_NS}}}alert"
    assert _text(root, "cap:identifier") == original.identifier
    assert _text(root, "cap:sender") == SENDER
    assert _text(root, "cap:sent") == "2026-11-20T10:00:00+07:00"
    assert (_text(root, "cap:status"), _text(root, "cap:msgType")) == ("Actual", "Alert")
    assert _text(root, "cap:scope") == "Public"
    assert root.find("cap:references", NS) is None
    info = root.find("cap:info", NS)
    assert info is not None
    assert _text(info, "cap:language") == "vi-VN"
    assert _text(info, "cap:category") == "Met"
    assert (_text(info, "cap:urgency"), _text(info, "cap:severity")) == ("Expected", "Severe")
    assert _text(info, "cap:certainty") == "Likely"
    assert _text(info, "cap:effective") == "2026-11-20T10:30:00+07:00"
    assert _text(info, "cap:expires") == "2026-11-20T16:00:00+07:00"
    assert _text(info, "cap:senderName") == "UBND HaTinh"
    assert _text(info, "cap:headline") == draft.title
    assert _text(info, "cap:description") == draft.body
    assert _text(info, "cap:instruction") == draft.instruction
    assert _text(info, "cap:web") == draft.web
    areas = [
        (
            _text(a, "cap:areaDesc"),
            _text(a, "cap:geocode/cap:valueName"),
            _text(a, "cap:geocode/cap:value"),
        )
        for a in info.findall("cap:area", NS)
    ]
    assert areas == [
        ("Phường Thành Sen", "VN-AREA", "18073"),
        ("Phường Hà Huy Tập", "VN-AREA", "18652"),
    ]

    clear = alerts.derive(session, original.id, kind="all_clear", user=people["approver"])
    root = _parse(to_cap_xml(clear, sender=SENDER, references=original))
    assert _text(root, "cap:msgType") == "Cancel"
    assert (
        _text(root, "cap:references") == f"{SENDER},{original.identifier},2026-11-20T10:00:00+07:00"
    )


def test_test_alert_is_cap_status_test(
    session: Session, people: People, make_draft: Callable[..., AlertDraft]
) -> None:
    alert = alerts.create_draft(
        session, make_draft(category=AlertCategory.TEST, event=""), user=people["drafter"]
    )
    root = _parse(to_cap_xml(alert, sender=SENDER, areas=[]))
    assert _text(root, "cap:status") == "Test"
    assert _text(root, "cap:info/cap:category") == "Met"  # "lũ" in the title
    assert _text(root, "cap:info/cap:event") == alert.title
    assert root.find("cap:info/cap:area", NS) is None


def test_templates_render_vietnamese_first_and_english() -> None:
    vi = templates.render("storm", sender="UBND HaTinh", name="Kajiki", area="Kỳ Anh", time="14h")
    assert vi["title"] == "Cảnh báo bão Kajiki"
    assert vi["body"].startswith("UBND HaTinh: Bão Kajiki dự kiến đổ bộ Kỳ Anh vào 14h.")
    assert "Chằng chống nhà cửa" in vi["body"] and vi["instruction"] in vi["body"]
    en = templates.render("storm", language="en", sender="UBND HaTinh", name="Kajiki")
    assert en["title"] == "Storm warning: Kajiki" and "Secure your home" in en["body"]
    own = templates.render("storm", instruction="Ở trong nhà.")
    assert own["instruction"] == "Ở trong nhà." and "Ở trong nhà." in own["body"]


def test_template_catalogue_and_unknowns() -> None:
    keys = [t["key"] for t in templates.catalogue()]
    assert {"correction", "all_clear", "update", "test"} <= set(keys)
    storm = next(t for t in templates.catalogue("en") if t["key"] == "storm")
    assert storm["name"] == "Storm warning" and "area" in storm["fields"]
    with pytest.raises(NotFound, match="unknown template 'tsunami'"):
        templates.render("tsunami")
    with pytest.raises(NotFound, match="unknown language 'fr'"):
        templates.render("storm", language="fr")


@pytest.mark.parametrize("key", list(templates.TEMPLATES))
def test_every_template_fits_two_parts_when_folded(key: str) -> None:
    """Public alerts should be short: filled with typical values, at most 2 parts folded."""
    from smpp_gateway.encoding import preview

    values = {
        "sender": "UBND HaTinh",
        "name": "Kajiki",
        "area": "Thành phố Hà Tĩnh",
        "time": "14h 20/11",
        "place": "Trường THCS Trần Phú",
        "subject": "Lịch cắt điện",
        "web": "hatinh.gov.vn",
        "title": "Cảnh báo lũ",
        "sent": "10:00 20/11/2026",
        "body": "Nguy cơ lũ.",
    }
    for language in templates.LANGUAGES:
        body = templates.render(key, language=language, **values)["body"]
        assert preview(body, fold=True).parts <= 2, (key, language, body)
