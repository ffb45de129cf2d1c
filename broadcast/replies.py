"""Replies: what people send back after an alert ("reply 1 if safe, 2 if you need help").

A mobile-originated SMS reaching any sender's bind is stored with the number, carrier, text and
time it arrived, and attributed to the latest alert that reached that number (a delivery row
submitted or delivered) within `replies.window_hours` before it: that alert, the number's area
as that delivery row records it (kept after lists are purged), and the alert's keyword it
matches. A reply no alert reached is stored all the same, attributed to none.

Keywords are matched after folding (Vietnamese without diacritics, `smpp_gateway.encoding.fold`)
and case-insensitively, on the reply's first word: "2", "2 can giup", "Cần giúp" for a keyword
"can giup". What matches none counts as `other`. A keyword marked `help` is a call for help:
its numbers are what rescue teams get (`help_rows`).

Pure matching and validation first; then the services (no Flask, no RQ): `store_replies` for
the senders, written in bulk, and `summary` / `help_rows` for the API and console.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from broadcast import text as textrules
from broadcast.errors import Reason
from broadcast.models import (
    Alert,
    Area,
    Carrier,
    Delivery,
    DeliveryState,
    Reply,
)
from smpp_gateway.encoding import fold
from smpp_gateway.mobile import MobileMessage

OTHER = "other"
MAX_KEYWORDS = 9
WORD = textrules.TextRule(20, required=True)
LABEL = textrules.TextRule(60, required=True, public=True)
# Rows that reached a phone, or may have: a reply can only answer an alert that got there.
REACHED = (DeliveryState.SUBMITTED.value, DeliveryState.DELIVERED.value)
_TEXT_LIMIT = 1000  # a reply longer than this (a concatenated essay) is cut when stored
# A delivery's submitted_at is when its sender wrote the outcome, a flush (or a slow database)
# after the submit_sm left, and the reply is stamped when it arrived, maybe on another host: a
# quick reply can look older than the alert it answers. Rows stamped this much after a reply
# still count as having reached the number before it (people take longer to answer).
SUBMIT_SLACK = timedelta(seconds=30)


@dataclass(frozen=True)
class ReplyKeyword:
    """One answer an alert asks for: the word people send, what it means, whether it asks for
    help."""

    word: str
    label: str
    help: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# The templates' default: "1" safe, "2" need help (Vietnamese first, English second).
DEFAULT_KEYWORDS = (
    ReplyKeyword("1", "An toàn / Safe"),
    ReplyKeyword("2", "Cần giúp / Need help", help=True),
)


def normalise(text: str) -> str:
    """A reply or keyword as compared: folded, case-folded, punctuation as spaces, one space
    between words."""
    folded = fold(text).casefold()
    return " ".join(re.sub(r"[^\w]+", " ", folded).split())


def keywords_from(data: Iterable[dict[str, Any]] | None) -> tuple[ReplyKeyword, ...]:
    """Keywords from their stored or submitted form ([{"word", "label", "help"}])."""
    return tuple(
        ReplyKeyword(str(k["word"]), str(k.get("label", "")), bool(k.get("help", False)))
        for k in data or ()
    )


def keyword_problems(keywords: Sequence[ReplyKeyword]) -> list[str]:
    """Why a set of keywords is refused (empty when fine), each naming the keyword."""
    found: list[str] = []
    if len(keywords) > MAX_KEYWORDS:
        found.append(
            Reason(
                "keywords_too_many",
                "%(count)s keywords; at most %(most)s",
                count=len(keywords),
                most=MAX_KEYWORDS,
            )
        )
    seen: dict[str, str] = {}
    for n, k in enumerate(keywords, start=1):
        found += [
            Reason("keyword_word", "keyword %(n)s word: %(problem)s", n=n, problem=p)
            for p in textrules.problems(k.word, WORD)
        ]
        found += [
            Reason("keyword_label", "keyword %(n)s label: %(problem)s", n=n, problem=p)
            for p in textrules.problems(k.label, LABEL)
        ]
        key = normalise(k.word)
        if k.word.strip() and not key:
            found.append(
                Reason(
                    "keyword_no_letter",
                    "keyword %(n)s word %(word)r has no letter or digit",
                    n=n,
                    word=k.word,
                )
            )
        elif key == OTHER:
            found.append(
                Reason(
                    "keyword_other",
                    "keyword %(n)s word %(word)r: %(other)r is the bucket of the rest",
                    n=n,
                    word=k.word,
                    other=OTHER,
                )
            )
        elif key in seen:
            found.append(
                Reason(
                    "keyword_twin",
                    "keyword %(n)s word %(word)r is the same as %(twin)r once folded",
                    n=n,
                    word=k.word,
                    twin=seen[key],
                )
            )
        elif key:
            seen[key] = k.word
    return found


def match(text: str, keywords: Sequence[ReplyKeyword]) -> str:
    """The word of the keyword a reply answers, or OTHER. The longest keyword that the reply
    starts with (as whole words) wins, so "2" is not taken for "22"."""
    reply = normalise(text)
    best, best_len = OTHER, 0
    for k in keywords:
        key = normalise(k.word)
        if key and (reply == key or reply.startswith(key + " ")) and len(key) > best_len:
            best, best_len = k.word, len(key)
    return best


def normalise_msisdn(raw: str) -> str:
    """A sender address as delivery rows hold numbers (84…): "+84…" and national "0…" forms
    are rewritten; anything else (a short code, letters) is kept as sent."""
    s = raw.strip()
    if s.startswith("+"):
        s = s[1:]
    if s.isascii() and s.isdigit() and s.startswith("0") and not s.startswith("00"):
        s = "84" + s[1:]
    return s[:20]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def store_replies(
    session: Session, carrier_id: int, replies: Sequence[MobileMessage], *, window_hours: int
) -> int:
    """Store replies received on one carrier's binds, attributed (see the module docstring):
    one query finds the deliveries that reached these numbers within the window, one the
    alerts' keywords, one insert writes them all. Returns how many were attributed."""
    if not replies:
        return 0
    window = timedelta(hours=window_hours)
    numbers = {normalise_msisdn(r.source_addr) for r in replies}
    earliest = min(_aware(r.received_at) for r in replies) - window
    reached = session.execute(
        select(Delivery.msisdn, Delivery.alert_id, Delivery.submitted_at, Delivery.area_id).where(
            Delivery.msisdn.in_(numbers),
            Delivery.state.in_(REACHED),
            Delivery.submitted_at >= earliest,
        )
    ).all()
    by_number: dict[str, list[tuple[datetime, int, int | None]]] = {}
    for msisdn, alert_id, submitted_at, area_id in reached:
        if submitted_at is None:  # the query asks submitted_at >= earliest: never None
            continue
        by_number.setdefault(msisdn, []).append((_aware(submitted_at), alert_id, area_id))
    rows: list[dict[str, Any]] = []
    for r in replies:
        number = normalise_msisdn(r.source_addr)
        at = _aware(r.received_at)
        candidates = [
            c for c in by_number.get(number, ()) if at - window <= c[0] <= at + SUBMIT_SLACK
        ]
        latest = max(candidates, key=lambda c: (c[0], c[1]), default=None)
        rows.append(
            {
                "carrier_id": carrier_id,
                "msisdn": number,
                "text": r.text[:_TEXT_LIMIT],
                "received_at": at,
                "alert_id": latest[1] if latest else None,
                "area_id": latest[2] if latest else None,
                "keyword": None,
            }
        )
    alert_ids = {row["alert_id"] for row in rows if row["alert_id"] is not None}
    keywords = {
        alert_id: keywords_from(data)
        for alert_id, data in session.execute(
            select(Alert.id, Alert.reply_keywords).where(Alert.id.in_(alert_ids))
        )
    }
    for row in rows:
        if row["alert_id"] is not None:
            row["keyword"] = match(row["text"], keywords.get(row["alert_id"], ()))
    session.execute(insert(Reply), rows)
    return len([row for row in rows if row["alert_id"] is not None])


def summary(session: Session, alert: Alert) -> dict[str, Any]:
    """Replies to one alert: total, by keyword (every keyword of the alert and `other`, zeros
    included), and by area ranked by replies, an area unknown to the audience as code None."""
    words = [k.word for k in keywords_from(alert.reply_keywords)] + [OTHER]
    counts = session.execute(
        select(Reply.area_id, Area.code, Area.name, Reply.keyword, func.count())
        .outerjoin(Area, Area.id == Reply.area_id)
        .where(Reply.alert_id == alert.id)
        .group_by(Reply.area_id, Area.code, Area.name, Reply.keyword)
    ).all()
    total = 0
    by_keyword = dict.fromkeys(words, 0)
    areas: dict[int | None, dict[str, Any]] = {}
    for area_id, code, name, keyword, n in counts:
        word = keyword if keyword in by_keyword else OTHER
        total += n
        by_keyword[word] += n
        area = areas.setdefault(
            area_id,
            {"code": code, "name": name or "", "total": 0, "by_keyword": dict.fromkeys(words, 0)},
        )
        area["total"] += n
        area["by_keyword"][word] += n
    ranked = sorted(areas.values(), key=lambda a: (-a["total"], a["code"] is None, a["code"] or ""))
    return {"total": total, "by_keyword": by_keyword, "by_area": ranked}


HELP_COLUMNS = ("msisdn", "carrier", "area_code", "area_name", "text", "received_at")


def help_rows(session: Session, alert: Alert) -> Iterator[tuple[Any, ...]]:
    """The replies to an alert that asked for help (keywords marked `help`), oldest first:
    number, carrier, commune code and name, text, time (aware UTC)."""
    words = [k.word for k in keywords_from(alert.reply_keywords) if k.help]
    if not words:
        return
    query = (
        select(Reply.msisdn, Carrier.code, Area.code, Area.name, Reply.text, Reply.received_at)
        .join(Carrier, Carrier.id == Reply.carrier_id)
        .outerjoin(Area, Area.id == Reply.area_id)
        .where(Reply.alert_id == alert.id, Reply.keyword.in_(words))
        .order_by(Reply.received_at, Reply.id)
        .execution_options(yield_per=5000)
    )
    for msisdn, carrier, code, name, text, received_at in session.execute(query):
        yield msisdn, carrier, code or "", name or "", text, _aware(received_at)
