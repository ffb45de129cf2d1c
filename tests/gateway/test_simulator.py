"""The simulator is a real SMSC: a bare smpplib client can bind, submit and get receipts."""

from __future__ import annotations

import json
import time

import smpplib.client
import smpplib.consts

from smpp_gateway.simulator import SimulatorConfig, SmscSimulator, run_many


def _client(sim: SmscSimulator) -> smpplib.client.Client:
    c = smpplib.client.Client("127.0.0.1", sim.port, timeout=2, allow_unknown_opt_params=True)
    c.connect()
    c.bind_transceiver(system_id="loa", password="secret")
    return c


def test_bare_smpplib_client_binds_submits_and_gets_a_receipt(start_simulator):
    sim = start_simulator(receipt_delay=0.01, receipt_form="both", receipt_id_format="dec")
    c = _client(sim)
    sent, received = [], []
    c.set_message_sent_handler(lambda pdu: sent.append(pdu))
    c.set_message_received_handler(lambda pdu: received.append(pdu))
    c.send_message(
        source_addr="LOA",
        destination_addr="84912345678",
        short_message=b"hi",
        registered_delivery=1,
    )
    c.read_once()
    c.read_once()
    c.unbind()
    c.disconnect()
    message_id = sent[0].message_id.decode()
    (receipt,) = received
    assert int(receipt.receipted_message_id.decode(), 10) == int(message_id, 16)
    assert receipt.message_state == 2
    assert b"stat:DELIVRD" in receipt.short_message
    (rec,) = sim.submits()
    assert (rec.destination_addr, rec.source_addr, rec.short_message) == (
        "84912345678",
        "LOA",
        b"hi",
    )
    assert rec.message_id == message_id
    assert [r.command for r in sim.records()] == [
        "bind_transceiver",
        "submit_sm",
        "deliver_sm_resp",
        "unbind",
    ]


def test_wrong_password_is_refused(start_simulator):
    sim = start_simulator()
    c = smpplib.client.Client("127.0.0.1", sim.port, timeout=2, allow_unknown_opt_params=True)
    c.connect()
    try:
        c.bind_transmitter(system_id="loa", password="wrong")
    except smpplib.exceptions.PDUError as e:
        assert e.args[1] == smpplib.consts.SMPP_ESME_RINVPASWD
    else:
        raise AssertionError("bind should fail")
    finally:
        c.disconnect()


def test_record_file_has_one_json_line_per_submit(tmp_path):
    path = tmp_path / "rec.jsonl"
    with SmscSimulator(SimulatorConfig(), record_to=path) as sim:
        c = _client(sim)
        for i in range(3):
            c.send_message(source_addr="LOA", destination_addr=f"8491234567{i}", short_message=b"x")
            c.read_once()
        lines = path.read_text().splitlines()  # flushed while the simulator still runs
        c.unbind()
        c.disconnect()
    rows = [json.loads(line) for line in lines]
    assert [r["destination"] for r in rows] == [f"8491234567{i}" for i in range(3)]
    assert all(r["message_id"] and r["short_message"] == "78" for r in rows)
    assert all(abs(r["time"] - time.time()) < 60 for r in rows)


def test_run_many_starts_one_simulator_per_carrier():
    sims = run_many({"viettel": (SimulatorConfig(), 0), "vina": (SimulatorConfig(tps=5), 0)})
    try:
        assert sims["viettel"].port != sims["vina"].port
        assert sims["vina"].config.tps == 5
    finally:
        for s in sims.values():
            s.stop()
