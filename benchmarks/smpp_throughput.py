"""One bind, N single-part messages: SmppSession against bare smpplib with a hand-written window.

Both clients talk to the same `loa simulator` subprocess in the same run, for windows 1, 10
and 50. TCP_NODELAY is set on both sockets so that the comparison is about the clients, not
Nagle's algorithm. Progress goes to stderr; the last stdout line is one JSON object whose
`ratio` is the smallest session/smpplib ratio over the windows (target: >= 0.85).

    .venv/bin/python benchmarks/smpp_throughput.py [--count 100000] [--windows 1,10,50]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import smpplib.client

from smpp_gateway.client import OutboundMessage, OutcomeKind, SmppSession
from smpp_gateway.config import GatewayConfig

TEXT = "Loa benchmark: canh bao thu nghiem, khong can lam gi."


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def start_simulator() -> tuple[subprocess.Popen[str], int]:
    loa = Path(sys.executable).parent / "loa"
    cmd = (
        [str(loa)]
        if loa.exists()
        else [sys.executable, "-c", "from broadcast.cli import main; main()"]
    )
    proc = subprocess.Popen([*cmd, "simulator", "--port", "0"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, int(line.rsplit(":", 1)[1])


def bare_smpplib(port: int, count: int, window: int) -> float:
    """Bare smpplib: W submit_sm sent, then one response read (smpplib's read_pdu and PDU
    parsing) for each new submit, keeping W outstanding."""
    client = smpplib.client.Client("127.0.0.1", port, timeout=10, allow_unknown_opt_params=True)
    client.connect()
    client._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.bind_transceiver(system_id="loa", password="secret")
    sent = received = accepted = 0
    started = time.perf_counter()
    while received < count:
        while sent < count and sent - received < window:
            client.send_message(
                source_addr_ton=5,
                source_addr_npi=0,
                source_addr="LOA",
                dest_addr_ton=1,
                dest_addr_npi=1,
                destination_addr=f"849{sent:08d}",
                esm_class=0,
                data_coding=0,
                registered_delivery=0,
                short_message=TEXT.encode(),
            )
            sent += 1
        pdu = client.read_pdu()
        if pdu.command == "submit_sm_resp":
            received += 1
            accepted += pdu.status == 0
    elapsed = time.perf_counter() - started
    client.unbind()
    client.disconnect()
    assert accepted == count, (accepted, count)
    return count / elapsed


def session_run(port: int, count: int, window: int) -> float:
    config = GatewayConfig(
        "127.0.0.1", port, "loa", "secret", source_addr="LOA", window=window, response_timeout=30
    )
    session = SmppSession(config)
    session.connect()
    accepted = 0
    started = time.perf_counter()
    for i in range(count):
        session.submit(OutboundMessage(i, f"849{i:08d}", TEXT, request_receipt=False))
        if i % 1024 == 0:
            accepted += sum(o.kind is OutcomeKind.ACCEPTED for o in session.collect())
    accepted += sum(o.kind is OutcomeKind.ACCEPTED for o in session.flush())
    elapsed = time.perf_counter() - started
    session.close()
    assert accepted == count, (accepted, count)
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--windows", default="1,10,50")
    args = parser.parse_args()
    windows = [int(w) for w in args.windows.split(",")]
    proc, port = start_simulator()
    results: dict[str, dict[str, float]] = {}
    try:
        for window in windows:
            bare = bare_smpplib(port, args.count, window)
            log(f"window {window}: bare smpplib {bare:,.0f} msg/s")
            ours = session_run(port, args.count, window)
            log(f"window {window}: SmppSession  {ours:,.0f} msg/s ({ours / bare:.2f}x)")
            results[str(window)] = {
                "smpplib_msgs_per_s": round(bare, 1),
                "session_msgs_per_s": round(ours, 1),
                "ratio": round(ours / bare, 3),
            }
    finally:
        proc.terminate()
        proc.wait(10)
    print(
        json.dumps(
            {
                "benchmark": "smpp_throughput",
                "count": args.count,
                "windows": results,
                "ratio": min(r["ratio"] for r in results.values()),
            }
        )
    )


if __name__ == "__main__":
    main()
