"""Replies in the core: keyword matching (folded, case-insensitive, first words) and the
attribution window, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from broadcast import replies
from broadcast.alerts import create_draft
from broadcast.models import Carrier, Delivery, DeliveryState, Reply
from broadcast.replies import DEFAULT_KEYWORDS, OTHER, ReplyKeyword, match
from smpp_gateway.mobile import MobileMessage

KEYWORDS = (*DEFAULT_KEYWORDS, ReplyKeyword("Cứu nạn", "Cứu / Rescue", help=True))


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("1", "1"),
        (" 1. ", "1"),
        ("1 an toan", "1"),
        ("2", "2"),
        ("22", OTHER),
        ("12", OTHER),
        ("CỨU NẠN gấp", "Cứu nạn"),
        ("cuu nan", "Cứu nạn"),
        ("cứu", OTHER),
        ("an toàn", OTHER),
        ("", OTHER),
        ("🙏", OTHER),
    ],
)
def test_match_is_folded_case_insensitive_on_the_first_words(text: str, word: str) -> None:
    assert match(text, KEYWORDS) == word


def test_keyword_problems_name_the_keyword() -> None:
    bad = (ReplyKeyword("Cứu", "a"), ReplyKeyword("CUU", "b"), ReplyKeyword("other", "c"))
    problems = replies.keyword_problems(bad)
    assert problems == [
        "keyword 2 word 'CUU' is the same as 'Cứu' once folded",
        "keyword 3 word 'other': 'other' is the bucket of the rest",
    ]
    assert replies.keyword_problems(tuple(ReplyKeyword(str(n), "x") for n in range(10))) == [
        "10 keywords; at most 9"
    ]


def test_a_reply_answers_the_latest_alert_that_reached_the_number_within_the_window(
    session: Session, people, draft
) -> None:
    now = datetime.now(UTC)
    older = create_draft(session, draft, user=people["drafter"])
    newer = create_draft(session, draft, user=people["drafter"])
    older.reply_keywords = [k.as_dict() for k in DEFAULT_KEYWORDS]
    viettel = session.scalar(select(Carrier.id).where(Carrier.code == "viettel"))
    rows = [
        # number, alert, state, submitted hours ago
        ("84961000001", older, DeliveryState.DELIVERED, 5),
        ("84961000001", newer, DeliveryState.DELIVERED, 2),  # the latest: wins
        ("84961000002", older, DeliveryState.DELIVERED, 5),
        ("84961000002", newer, DeliveryState.UNDELIVERABLE, 2),  # never reached it
        ("84961000003", older, DeliveryState.DELIVERED, 80),  # beyond 72 h
        ("84961000004", newer, DeliveryState.QUEUED, None),  # not sent yet
    ]
    session.add_all(
        Delivery(
            alert_id=a.id,
            carrier_id=viettel,
            msisdn=m,
            state=state,
            submitted_at=now - timedelta(hours=h) if h is not None else None,
        )
        for m, a, state, h in rows
    )
    session.flush()
    incoming = [
        MobileMessage("84961000001", "UBND HaTinh", "1", now),
        MobileMessage("0961000002", "UBND HaTinh", "2 cần giúp", now),
        MobileMessage("+84961000003", "UBND HaTinh", "1", now),
        MobileMessage("84961000004", "UBND HaTinh", "1", now),
        MobileMessage("1900", "UBND HaTinh", "TIN QC", now),
    ]
    attributed = replies.store_replies(session, viettel, incoming, window_hours=72)
    stored = session.execute(select(Reply.msisdn, Reply.alert_id, Reply.keyword).order_by(Reply.id))
    assert [tuple(r) for r in stored] == [
        ("84961000001", newer.id, OTHER),  # the newer alert asked for no keywords
        ("84961000002", older.id, "2"),
        ("84961000003", None, None),
        ("84961000004", None, None),
        ("1900", None, None),
    ]
    assert attributed == 2
    # A shorter window leaves the 5-hour-old alert out as well.
    replies.store_replies(
        session, viettel, [MobileMessage("84961000002", "UBND HaTinh", "2", now)], window_hours=4
    )
    last = session.scalars(select(Reply).order_by(Reply.id.desc())).first()
    assert (last.alert_id, last.keyword) == (None, None)
