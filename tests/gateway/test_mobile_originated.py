"""Replies (mobile-originated deliver_sm) from the simulator to SmppSession over TCP."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smpp_gateway.client import OutboundMessage
from smpp_gateway.encoding import DC_LATIN1, DC_UCS2, gsm_encode
from smpp_gateway.mobile import mobile_message

LONG_TEXT = "Canh bao bao so 3: De nghi nguoi dan di chuyen den noi an toan. " * 4  # 3 parts


def msgs(n: int, text: str = "Tra loi 1 neu an toan, 2 neu can giup") -> list[OutboundMessage]:
    return [OutboundMessage(i, f"849{i:08d}", text) for i in range(n)]


def wait_for(session, check, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        session.poll(0.02)


def answered_replies(sim) -> int:
    return sum(
        r.command == "deliver_sm_resp" and bool(r.sequence & 0x40000000) for r in sim.records()
    )


def test_replies_reach_the_transceiver_decoded_and_are_answered(start_simulator, open_session):
    sim = start_simulator(
        receipt_delay=0.01,
        reply_rate=1.0,
        reply_delay=0.01,
        reply_mix={"1": 1.0, "Cần giúp": 1.0, "other": 1.0},
    )
    receipts, messages = [], []
    session = open_session(sim, on_receipt=receipts.append, on_message=messages.append)
    session.submit_many(msgs(30))
    wait_for(session, lambda: len(messages) >= 30 and answered_replies(sim) >= 30)
    sent = sim.replies()
    assert len(sent) == 30 and len(receipts) == 30
    # Every reply arrives as the subscriber wrote it, from their number to our sender name.
    got = [(m.source_addr, m.destination_addr, m.text) for m in messages]
    assert got == [(r.source_addr, r.destination_addr, r.text) for r in sent]
    assert {m.source_addr for m in messages} == {f"849{i:08d}" for i in range(30)}
    assert {m.destination_addr for m in messages} == {"LOA"}
    assert {m.data_coding for m in messages} == {0, DC_UCS2}  # GSM and UCS-2 both came
    assert "Cần giúp" in {m.text for m in messages}
    assert all(abs((datetime.now(UTC) - m.received_at).total_seconds()) < 30 for m in messages)
    # Each reply got its deliver_sm_resp; receipts still count as receipts, not as replies.
    assert answered_replies(sim) == 30
    assert session.stats["messages"] == 30 and session.stats["receipts"] == 30


def test_replies_go_to_the_receiver_bind_of_that_system_id(start_simulator, open_session):
    sim = start_simulator(receipt_delay=0.01, reply_rate=1.0, reply_delay=0.01, reply_mix={"2": 1})
    on_transmitter, on_receiver = [], []
    sender = open_session(sim, bind_mode="transmitter", on_message=on_transmitter.append)
    receiver = open_session(sim, bind_mode="receiver", on_message=on_receiver.append)
    sender.submit_many(msgs(5))
    deadline = time.monotonic() + 10
    while len(on_receiver) < 5 and time.monotonic() < deadline:
        receiver.poll(0.02)
        sender.poll(0.01)
    assert [m.text for m in on_receiver] == ["2"] * 5
    assert on_transmitter == []


def test_reply_rate_answers_a_share_and_a_long_message_once(start_simulator, open_session):
    sim = start_simulator(receipt_delay=0.01, reply_rate=0.25, reply_delay=0.01, seed=7)
    messages = []
    session = open_session(sim, on_message=messages.append)
    session.submit_many(msgs(200))
    wait_for(session, lambda: answered_replies(sim) >= len(sim.replies()) > 0, 10)
    session.poll(0.3)
    assert 20 <= len(messages) <= 80  # 25 % of 200, with room for chance
    assert len(messages) == len(sim.replies())

    sim.set_config(reply_rate=1.0)
    before = len(messages)
    session.submit_many([OutboundMessage(999, "84900000999", LONG_TEXT)])
    wait_for(session, lambda: len(messages) > before)
    session.poll(0.3)  # the other parts' receipts would have brought more
    assert [m.source_addr for m in messages[before:]] == ["84900000999"]


def test_no_reply_rate_no_replies(start_simulator, open_session):
    sim = start_simulator(receipt_delay=0.01)
    receipts, messages = [], []
    session = open_session(sim, on_receipt=receipts.append, on_message=messages.append)
    session.submit_many(msgs(10))
    wait_for(session, lambda: len(receipts) >= 10)
    session.poll(0.2)
    assert messages == [] and sim.replies() == []


@pytest.mark.parametrize(
    ("body", "coding", "esm", "payload", "text"),
    [
        (gsm_encode("2 can giup {nha} €"), 0, 0, None, "2 can giup {nha} €"),
        ("Cần giúp".encode("utf-16-be"), DC_UCS2, 0, None, "Cần giúp"),
        ("Ça va".encode("latin-1"), DC_LATIN1, 0, None, "Ça va"),
        (b"\x05\x00\x03\x07\x02\x01" + gsm_encode("1"), 0, 0x40, None, "1"),  # UDH stripped
        (b"", DC_UCS2, 0, "An toàn".encode("utf-16-be"), "An toàn"),
        (b"\xd8\x00", DC_UCS2, 0, None, "Ø\x00"),  # a lone surrogate is kept, not lost
    ],
)
def test_mobile_message_text_follows_data_coding(body, coding, esm, payload, text):
    message = mobile_message(
        source_addr=b"84912345678",
        destination_addr=b"LOA",
        short_message=body,
        message_payload=payload,
        data_coding=coding,
        esm_class=esm,
        received_at=datetime.now(UTC),
    )
    assert (message.source_addr, message.destination_addr, message.text) == (
        "84912345678",
        "LOA",
        text,
    )


def test_simulator_command_refuses_a_bad_reply_mix():
    loa = Path(sys.executable).parent / "loa"
    result = subprocess.run(
        [str(loa), "simulator", "--port", "0", "--reply-rate", "0.1", "--reply-mix", "1=0.8"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "'1=0.8' is not TEXT:WEIGHT" in result.stderr
    assert "Traceback" not in result.stderr
