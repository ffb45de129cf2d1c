"""CAP 1.2 (OASIS Common Alerting Protocol) XML of an alert, for archives and other channels.

ElementTree escapes text (< > &) itself; nothing here builds XML by string concatenation.
CAP wants times as "2026-11-20T10:00:00+07:00" (no fractions, no "Z") and an Update or Cancel
to reference the original as "sender,identifier,sent".

Loa's categories say how urgent an alert is, not what it is about, so the CAP <category> is read
from the event text (see CATEGORY_WORDS), falling back to Safety for emergencies and warnings
and Other for information and tests.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from broadcast.alerts import sent_at
from broadcast.models import Alert, AlertCategory, Area, MsgType
from broadcast.policy import as_utc

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
GEOCODE_NAME = "VN-AREA"
LANGUAGE = "vi-VN"

# First match wins; words in Vietnamese (with and without marks) and English, lower case.
CATEGORY_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Met", ("bão", "bao ", "áp thấp", "ap thap", "mưa", "mua lon", "lũ", "ngập", "ngap",
             "rét", "nắng nóng", "lốc", "sét", "storm", "typhoon", "flood", "rain", "cold",
             "heat", "tornado")),
    ("Geo", ("động đất", "dong dat", "sạt lở", "sat lo", "sóng thần", "song than",
             "earthquake", "landslide", "tsunami")),
    ("Fire", ("cháy", "chay rung", "fire", "wildfire")),
    ("Health", ("dịch", "dich benh", "bệnh", "epidemic", "disease", "outbreak")),
    ("Env", ("ô nhiễm", "o nhiem", "pollution")),
    ("Transport", ("giao thông", "giao thong", "traffic", "road closed")),
    ("Infra", ("mất điện", "mat dien", "mất nước", "power cut", "water cut")),
    ("Rescue", ("cứu hộ", "cuu ho", "cứu nạn", "rescue")),
    ("Security", ("an ninh", "security")),
)  # fmt: skip


def cap_category(alert: Alert) -> str:
    text = f" {alert.event} {alert.title} ".lower()
    for name, words in CATEGORY_WORDS:
        if any(word in text for word in words):
            return name
    if AlertCategory(alert.category) in (AlertCategory.EMERGENCY, AlertCategory.WARNING):
        return "Safety"
    return "Other"


def cap_time(moment: datetime, timezone: str) -> str:
    return as_utc(moment).astimezone(ZoneInfo(timezone)).replace(microsecond=0).isoformat()


def cap_status(alert: Alert) -> str:
    return "Test" if AlertCategory(alert.category) == AlertCategory.TEST else "Actual"


def _sub(parent: ET.Element, tag: str, text: str | None) -> ET.Element | None:
    if text is None or text == "":
        return None
    element = ET.SubElement(parent, tag)
    element.text = text
    return element


def to_cap_xml(
    alert: Alert,
    *,
    sender: str,
    areas: Iterable[Area] | None = None,
    references: Alert | None = None,
    sender_name: str | None = None,
    timezone: str = "Asia/Ho_Chi_Minh",
) -> bytes:
    """The alert as a CAP 1.2 document (UTF-8 bytes with an XML declaration).

    `sender` is the CAP sender id (e.g. "canhbao@hatinh.gov.vn"); `areas` default to the
    alert's own; `references` is the original an Update or Cancel refers to.
    """
    # Unqualified tags under a default xmlns: no global ET.register_namespace needed.
    root = ET.Element("alert", xmlns=CAP_NS)
    _sub(root, "identifier", alert.identifier)
    _sub(root, "sender", sender)
    _sub(root, "sent", cap_time(sent_at(alert), timezone))
    _sub(root, "status", cap_status(alert))
    _sub(root, "msgType", MsgType(alert.msg_type).value)
    _sub(root, "scope", "Public")
    if references is not None:
        ref = f"{sender},{references.identifier},{cap_time(sent_at(references), timezone)}"
        _sub(root, "references", ref)

    info = ET.SubElement(root, "info")
    _sub(info, "language", LANGUAGE)
    _sub(info, "category", cap_category(alert))
    _sub(info, "event", alert.event or alert.title)
    _sub(info, "urgency", alert.urgency or "Unknown")
    _sub(info, "severity", alert.severity or "Unknown")
    _sub(info, "certainty", alert.certainty or "Unknown")
    if alert.schedule_at is not None:
        _sub(info, "effective", cap_time(alert.schedule_at, timezone))
    if alert.expires_at is not None:
        _sub(info, "expires", cap_time(alert.expires_at, timezone))
    _sub(info, "senderName", sender_name or alert.brandname)
    _sub(info, "headline", alert.title)
    _sub(info, "description", alert.body)
    _sub(info, "instruction", alert.instruction)
    _sub(info, "web", alert.web)

    for area in areas if areas is not None else alert.areas:
        block = ET.SubElement(info, "area")
        _sub(block, "areaDesc", area.name)
        geocode = ET.SubElement(block, "geocode")
        _sub(geocode, "valueName", GEOCODE_NAME)
        _sub(geocode, "value", area.code)

    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
