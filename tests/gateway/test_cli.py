"""The `loa preview` and `loa simulator` contracts that scripts depend on."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from broadcast.cli import cli  # the real `loa` group, as the console script runs it
from smpp_gateway.client import OutboundMessage, OutcomeKind, SmppSession
from smpp_gateway.config import GatewayConfig


def test_preview_json_contract():
    result = CliRunner().invoke(cli, ["preview", "--json", "Cảnh báo bão số 3"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output.strip().splitlines()[-1])
    assert data["encoding"] == "ucs2"
    assert data["parts"] == 1 and data["units"] == 17 and data["chars_left"] == 53
    assert data["ucs2_chars"] == ["ả", "á", "ã", "ố"]
    assert data["text"] == "Cảnh báo bão số 3"


def test_preview_fold_json_gives_the_folded_text():
    result = CliRunner().invoke(cli, ["preview", "--fold", "--json", "Đề nghị “di chuyển”"])
    data = json.loads(result.output)
    assert (data["encoding"], data["text"], data["ucs2_chars"]) == (
        "gsm7",
        'De nghi "di chuyen"',
        [],
    )


def test_preview_human_summary():
    result = CliRunner().invoke(cli, ["preview", "x" * 161])
    assert result.exit_code == 0
    assert "gsm7" in result.output and "2 parts" in result.output


def test_simulator_command_serves_records_and_stops_on_sigterm(tmp_path):
    record = tmp_path / "smsc.jsonl"
    loa = Path(sys.executable).parent / "loa"
    proc = subprocess.Popen(
        [str(loa), "simulator", "--port", "0", "--tps", "100", "--record", str(record)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        port = int(line.rsplit(":", 1)[1])
        config = GatewayConfig("127.0.0.1", port, "loa", "secret", source_addr="LOA")
        with SmppSession(config) as session:
            outcomes = session.submit_many(
                [OutboundMessage(i, f"8491234567{i}", "hi") for i in range(3)]
            )
        assert {o.kind for o in outcomes} == {OutcomeKind.ACCEPTED}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(record.read_text().splitlines()) < 3:
            time.sleep(0.02)
        rows = [json.loads(x) for x in record.read_text().splitlines()]
        assert [r["destination"] for r in rows] == [f"8491234567{i}" for i in range(3)]
        assert all(abs(r["time"] - time.time()) < 30 for r in rows)
        assert {r["short_message"] for r in rows} == {b"hi".hex()}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        proc.stdout.close()
