"""CAP 1.2 (OASIS Common Alerting Protocol) XML of an alert, for archives and other channels.

ElementTree escapes text (< > &) itself; nothing here builds XML by string concatenation.
CAP wants times as "2026-11-20T10:00:00+07:00" (no fractions, no "Z") and an Update or Cancel
to reference the original as "sender,identifier,sent".

Loa's categories say how urgent an alert is, not what it is about, so the CAP <category> is read
from the event text (see CATEGORY_WORDS), falling back to Safety for emergencies and warnings
and Other for information, tests and drills.

The public feed (`published`, `to_atom`) lists what aggregators and a carrier's cell-broadcast
centre may take as real: CAP status Actual (never a test or a drill) and on the air (the
sending started), so a draft, a pending or rejected alert, or one cancelled before it went out
is never published.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from broadcast.alerts import sent_at
from broadcast.errors import NotFound, Reason
from broadcast.models import Alert, AlertCategory, Area, MsgType
from broadcast.policy import as_utc

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_MIMETYPE = "application/cap+xml"
# Categories whose alerts are real (CAP status Actual); tests and drills never are.
ACTUAL_CATEGORIES = frozenset(
    {AlertCategory.EMERGENCY, AlertCategory.WARNING, AlertCategory.INFORMATION}
)
# The feed: the newest FEED_LIMIT alerts sent in the last FEED_DAYS days (older ones stay
# reachable by identifier).
FEED_LIMIT = 50
FEED_DAYS = 30
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
    category = AlertCategory(alert.category)
    if category in ACTUAL_CATEGORIES:
        return "Actual"
    return "Exercise" if category == AlertCategory.EXERCISE else "Test"


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


# --- the public feed ------------------------------------------------------------------------


def _published() -> list[ColumnElement[bool]]:
    """Actual alerts that went on the air (the sending started; approved_at is their `sent`)."""
    return [
        Alert.category.in_(sorted(ACTUAL_CATEGORIES, key=lambda c: c.value)),
        Alert.started_at.is_not(None),
        Alert.approved_at.is_not(None),
    ]


def published(
    session: Session, *, now: datetime, limit: int = FEED_LIMIT, days: int = FEED_DAYS
) -> list[Alert]:
    """The feed's alerts, newest `sent` first: at most `limit`, sent in the last `days`."""
    since = as_utc(now) - timedelta(days=days)
    query = (
        select(Alert)
        .where(*_published(), Alert.approved_at >= since)
        .order_by(Alert.approved_at.desc(), Alert.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def published_alert(session: Session, identifier: str) -> Alert:
    """One published alert by CAP identifier, whatever its age; NotFound for anything else."""
    alert = session.scalar(select(Alert).where(Alert.identifier == identifier, *_published()))
    if alert is None:
        raise NotFound(Reason("cap_not_found", "no published alert with this identifier"))
    return alert


@dataclass(frozen=True)
class FeedInfo:
    """What the Atom feed says about itself; URLs are absolute, built by the web layer."""

    feed_url: str
    title: str
    author: str
    timezone: str = "Asia/Ho_Chi_Minh"


def feed_updated(alerts: list[Alert]) -> datetime | None:
    """When the feed last changed: the newest entry's `sent` (None for an empty feed)."""
    return max((sent_at(a) for a in alerts), default=None)


def to_atom(
    alerts: list[Alert], *, info: FeedInfo, entry_url: Callable[[Alert], str], now: datetime
) -> bytes:
    """An Atom 1.0 feed (RFC 4287) of `alerts`, each entry linking to its CAP document.

    The feed's <updated> is its newest entry's, so the same alerts give the same bytes (and
    ETag); only an empty feed says `now`, rounded down to the day.
    """
    feed = ET.Element("feed", xmlns=ATOM_NS)  # unqualified tags, as in to_cap_xml
    newest = feed_updated(alerts) or as_utc(now).replace(hour=0, minute=0, second=0)
    _sub(feed, "id", info.feed_url)
    _sub(feed, "title", info.title)
    _sub(feed, "updated", cap_time(newest, info.timezone))
    author = ET.SubElement(feed, "author")
    _sub(author, "name", info.author)
    ET.SubElement(feed, "link", rel="self", href=info.feed_url, type="application/atom+xml")
    for alert in alerts:
        url = entry_url(alert)
        sent = cap_time(sent_at(alert), info.timezone)
        entry = ET.SubElement(feed, "entry")
        _sub(entry, "id", url)
        _sub(entry, "title", alert.title)
        _sub(entry, "updated", sent)
        _sub(entry, "published", sent)
        entry_author = ET.SubElement(entry, "author")
        _sub(entry_author, "name", alert.brandname or info.author)
        _sub(entry, "summary", alert.body)
        ET.SubElement(entry, "link", rel="alternate", href=url, type=CAP_MIMETYPE)
    ET.indent(feed)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
