"""SmppSession against the simulator over TCP: what the SMSC received, what the caller saw."""

from __future__ import annotations

import itertools
import socket
import time

import pytest

from smpp_gateway.client import OutboundMessage, OutcomeKind, ReceiptState
from smpp_gateway.encoding import decode
from smpp_gateway.errors import BindError, EncodingError, GatewayError

LONG_GSM = "Canh bao bao so 3: De nghi nguoi dan di chuyen den noi an toan. " * 4  # 3 parts
LONG_UCS2 = "Cảnh báo bão số 3: Đề nghị người dân di chuyển đến nơi an toàn. " * 2


def msgs(n: int, text: str = "Loa test", start: int = 0) -> list[OutboundMessage]:
    return [OutboundMessage(i, f"849{i:08d}", text) for i in range(start, start + n)]


def test_wrong_password_raises_bind_error_naming_status(start_simulator, open_session):
    sim = start_simulator()
    session = open_session(sim, connect=False, password="wrong")
    with pytest.raises(BindError) as info:
        session.connect()
    assert info.value.command_status == 0x0E
    assert "0x0E" in str(info.value) and f"127.0.0.1:{sim.port}" in str(info.value)
    assert not session.connected


def test_refused_port_raises_bind_error(start_simulator, open_session):
    sim = start_simulator()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    session = open_session(sim, connect=False, port=port)
    with pytest.raises(BindError, match=f"127.0.0.1:{port}"):
        session.connect()


def test_single_part_submit_reaches_the_smsc_as_sent(start_simulator, open_session):
    sim = start_simulator()
    session = open_session(sim)
    (outcome,) = session.submit_many([OutboundMessage(7, "84912345678", "Xin chao @ 100€")])
    assert outcome.kind is OutcomeKind.ACCEPTED and outcome.key == 7
    (rec,) = sim.submits()
    assert (rec.source_addr, rec.destination_addr, rec.registered_delivery) == (
        "LOA",
        "84912345678",
        1,
    )
    assert decode(rec.short_message, rec.data_coding) == "Xin chao @ 100€"
    assert outcome.message_ids == (format(int(rec.message_id, 16), "x"),)


@pytest.mark.parametrize("method", ["udh", "udh16", "sar", "payload"])
@pytest.mark.parametrize("text", [LONG_GSM, LONG_UCS2], ids=["gsm", "ucs2"])
def test_multipart_in_each_concatenation_method(start_simulator, open_session, method, text):
    sim = start_simulator()
    session = open_session(sim, concatenation=method, source_addr="UBND-HT")
    (outcome,) = session.submit_many([OutboundMessage(1, "84912345678", text)])
    recs = sim.submits()
    assert outcome.kind is OutcomeKind.ACCEPTED
    assert len(outcome.message_ids) == len(recs)
    expected_dc = 0x00 if text is LONG_GSM else 0x08
    assert {r.data_coding for r in recs} == {expected_dc}
    assert {r.source_addr for r in recs} == {"UBND-HT"}
    if method == "payload":
        (rec,) = recs
        assert rec.short_message == b""
        assert decode(rec.tlvs[0x0424], rec.data_coding) == text
        return
    assert len(recs) == session.segments(text) >= 2
    if method in ("udh", "udh16"):
        assert {r.esm_class for r in recs} == {0x40}
        iei = 0x00 if method == "udh" else 0x08
        assert {r.short_message[1] for r in recs} == {iei}
        seqs = [r.short_message[-0 + (5 if method == "udh" else 6)] for r in recs]
        totals = {r.short_message[4 if method == "udh" else 5] for r in recs}
    else:
        assert {r.esm_class for r in recs} == {0}
        assert len({r.tlvs[0x020C] for r in recs}) == 1
        seqs = [r.tlvs[0x020F][0] for r in recs]
        totals = {r.tlvs[0x020E][0] for r in recs}
    assert seqs == list(range(1, len(recs) + 1)) and totals == {len(recs)}
    assert "".join(decode(r.short_message, r.data_coding, r.esm_class) for r in recs) == text


def test_bad_input_is_refused_before_anything_is_sent(start_simulator, open_session):
    sim = start_simulator()
    session = open_session(sim)
    with pytest.raises(EncodingError):
        session.submit(OutboundMessage(1, "84912345678", "x" * (153 * 255 + 1)))
    with pytest.raises(EncodingError):
        session.submit(OutboundMessage(2, "84912345678", ""))
    with pytest.raises(EncodingError):
        session.submit(OutboundMessage(3, "84912345678", "hi", source="TOOLONGBRAND"))
    session.submit(OutboundMessage(4, "+84 912", "hi"))
    (outcome,) = session.flush()
    assert outcome.kind is OutcomeKind.PERMANENT and "destination" in outcome.error
    time.sleep(0.05)
    assert sim.submits() == []


def test_window_keeps_many_outstanding_and_never_more_than_window(start_simulator, open_session):
    sim = start_simulator(latency=0.05)
    session = open_session(sim, window=10)
    started = time.monotonic()
    outcomes = session.submit_many(msgs(100))
    elapsed = time.monotonic() - started
    assert [o.kind for o in outcomes] == [OutcomeKind.ACCEPTED] * 100
    assert sorted(o.key for o in outcomes) == list(range(100))
    assert elapsed < 100 * 0.05 / 2, elapsed  # stop-and-wait would take 5 s; windowed ~0.5 s
    assert 5 <= sim.max_outstanding <= 10


def test_throttling_gives_transient_0x58_and_the_session_backs_off(start_simulator, open_session):
    sim = start_simulator(tps=20)
    session = open_session(sim, window=5, throttle_initial=0.1, throttle_max=0.2)
    outcomes = session.submit_many(msgs(40))
    throttled = [o for o in outcomes if o.kind is OutcomeKind.TRANSIENT]
    assert throttled and {o.command_status for o in throttled} == {0x58}
    assert sum(o.kind is OutcomeKind.ACCEPTED for o in outcomes) >= 20
    assert session.stats["throttled"] == len(throttled)
    times = [r.time for r in sim.submits()]
    first_throttle = next(r.time for r in sim.submits() if r.error == 0x58)
    gaps = [b - a for a, b in itertools.pairwise(times) if a >= first_throttle]
    assert max(gaps) >= 0.08  # the bind paused instead of hammering the SMSC
    accepted = [r.time for r in sim.submits() if r.error is None]
    assert all(sum(1 for t in accepted if s <= t < s + 1.0) <= 20 for s in accepted)


def test_transient_and_permanent_errors_are_classified(start_simulator, open_session):
    sim = start_simulator(transient_error_rate=0.3, permanent_error_rate=0.3)
    session = open_session(sim, throttle_initial=0.001, throttle_max=0.002)
    outcomes = {o.key: o for o in session.submit_many(msgs(60))}
    for rec in sim.submits():
        outcome = outcomes[int(rec.destination_addr[3:])]
        if rec.error is None:
            assert outcome.kind is OutcomeKind.ACCEPTED
        elif rec.error == 0x0B:
            assert (outcome.kind, outcome.command_status) == (OutcomeKind.PERMANENT, 0x0B)
        else:
            # A fault worth retrying that is no congestion: the sender keeps its pace.
            assert outcome.kind is OutcomeKind.TRANSIENT and not outcome.slows_down
            assert outcome.command_status in (0x08, 0x64)
    assert {o.kind for o in outcomes.values()} == set(OutcomeKind)


@pytest.mark.parametrize("form", ["tlv", "text", "both"])
@pytest.mark.parametrize("id_format", ["hex", "dec"])
def test_receipts_match_submit_ids(start_simulator, open_session, form, id_format):
    sim = start_simulator(
        receipt_delay=0.01,
        receipt_form=form,
        receipt_id_format=id_format,
        receipt_mix={"DELIVRD": 0.5, "UNDELIV": 0.5},
    )
    receipts = []
    session = open_session(sim, receipt_id_format=id_format, on_receipt=receipts.append)
    outcomes = session.submit_many(msgs(20))
    # Generous deadline for a loaded machine; the loops end as soon as everything is there.
    deadline = time.monotonic() + 10
    while len(receipts) < 20 and time.monotonic() < deadline:
        session.poll(0.02)

    def answered() -> int:
        return sum(r.command == "deliver_sm_resp" for r in sim.records())

    while answered() < 20 and time.monotonic() < deadline:
        session.poll(0.02)
    ids = {i for o in outcomes for i in o.message_ids}
    assert {r.message_id for r in receipts} == ids and len(ids) == 20
    states = {r.state for r in receipts}
    assert states <= {ReceiptState.DELIVERED, ReceiptState.UNDELIVERABLE} and len(states) == 2
    if form != "tlv":
        assert all(r.done_at is not None for r in receipts)
    assert answered() == 20


def test_link_loss_reports_outstanding_transient_then_reconnects(start_simulator, open_session):
    sim = start_simulator(latency=0.3)
    session = open_session(sim, window=10)
    for m in msgs(5):
        session.submit(m)
    time.sleep(0.05)
    sim.drop_connections()
    outcomes = session.flush()
    assert len(outcomes) == 5
    assert {o.kind for o in outcomes} == {OutcomeKind.TRANSIENT}
    assert all("link lost" in o.error for o in outcomes)
    assert not session.connected
    sim.set_config(latency=0.0)
    later = session.submit_many(msgs(5, start=5))
    assert {o.kind for o in later} == {OutcomeKind.ACCEPTED}
    assert sum(r.command == "bind_transceiver" for r in sim.records()) == 2
    assert session.stats["reconnects"] == 1


def test_drop_after_n_submits(start_simulator, open_session):
    sim = start_simulator(drop_after=3)
    session = open_session(sim, window=1)
    outcomes = session.submit_many(msgs(4))
    kinds = [o.kind for o in sorted(outcomes, key=lambda o: o.key)]
    assert kinds == [OutcomeKind.ACCEPTED] * 2 + [OutcomeKind.TRANSIENT, OutcomeKind.ACCEPTED]


def test_poll_reconnects_and_gives_up_after_bounded_time(start_simulator, open_session):
    sim = start_simulator()
    session = open_session(sim, reconnect_timeout=0.5)
    sim.drop_connections()
    session.poll(0.2)  # notices the loss, reconnects
    assert session.connected
    sim.stop()
    started = time.monotonic()
    with pytest.raises(GatewayError, match="down for"):
        for _ in range(20):
            session.poll(0.1)
            session.submit(OutboundMessage(1, "84912345678", "hi"))
    assert time.monotonic() - started < 3


def test_response_timeout_is_transient(start_simulator, open_session):
    sim = start_simulator(latency=0.5)
    session = open_session(sim, response_timeout=0.1)
    (outcome,) = session.submit_many(msgs(1))
    assert outcome.kind is OutcomeKind.TRANSIENT and "no response" in outcome.error


def test_enquire_link_keepalive_and_clean_unbind(start_simulator, open_session):
    sim = start_simulator()
    session = open_session(sim, enquire_link_interval=0.05)
    session.poll(0.25)
    assert session.connected
    session.close()
    assert not session.connected
    commands = [r.command for r in sim.records()]
    assert commands.count("enquire_link") >= 2
    assert commands[-1] == "unbind"


def test_segments_follow_the_gateway_method(start_simulator, open_session):
    sim = start_simulator()
    assert open_session(sim, connect=False).segments("x" * 306) == 2
    assert open_session(sim, connect=False, concatenation="udh16").segments("x" * 306) == 3


@pytest.mark.parametrize(
    ("source", "ton", "npi"), [("", 5, 0), ("LOA HT", 5, 0), ("8491", 3, 0), ("84912345678", 1, 1)]
)
def test_sender_address_forms_reach_the_smsc(start_simulator, open_session, source, ton, npi):
    sim = start_simulator()
    session = open_session(sim, source_addr=source)
    outcomes = session.submit_many(msgs(3))
    assert {o.kind for o in outcomes} == {OutcomeKind.ACCEPTED}
    recs = sim.submits()
    assert [r.source_addr for r in recs] == [source] * 3
    assert [r.destination_addr for r in recs] == [f"849{i:08d}" for i in range(3)]
    assert [r.registered_delivery for r in recs] == [1] * 3
    assert {
        (r.source_addr_ton, r.source_addr_npi, r.dest_addr_ton, r.dest_addr_npi) for r in recs
    } == {(ton, npi, 1, 1)}
