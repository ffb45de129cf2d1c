"""The SMSC's arrival times as the wire carried them: a packet capture of the loopback.

The simulator's kernel receive stamps (`loa simulator --kernel-times`) have a limit: data
waiting on one connection while the simulator is descheduled is merged by the kernel and
carries the latest stamp, so on a loaded machine earlier messages look later than they were
and can seem to share a second with later ones. A capture stamps each packet as it is
handed to the loopback device, in the sending process's system call, before any receiver
runs: on loopback that is the instant the SMSC's host received it. `tcpdump` writes the
packets; dpkt reads them back; each submit_sm gets the time of the packet that completed it.

Needs `tcpdump` and the right to capture (root, or CAP_NET_RAW).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import dpkt

SUBMIT_SM = 0x00000004


class CaptureError(RuntimeError):
    """tcpdump is missing, may not capture, or lost packets."""


@dataclass
class Capture:
    """One `tcpdump` on the loopback, kept to the TCP packets sent to the given ports."""

    path: Path
    ports: list[int]
    dropped: int | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> Capture:
        tcpdump = shutil.which("tcpdump")
        if tcpdump is None:
            raise CaptureError("tcpdump is not installed (apt-get install tcpdump)")
        wanted = " or ".join(f"dst port {p}" for p in self.ports)
        self._proc = subprocess.Popen(
            # -B: a 64 MiB kernel buffer (KiB), so a busy second is not dropped
            [tcpdump, "-i", "lo", "-n", "-B", "65536", "-w", str(self.path),
             f"tcp and ({wanted})"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        assert self._proc.stderr is not None
        line = self._proc.stderr.readline().decode(errors="replace")  # "listening on lo, ..."
        if "listening on" not in line:
            self._proc.kill()
            raise CaptureError(f"tcpdump did not start: {line.strip()}")
        time.sleep(0.2)  # the filter is attached when it says so; a margin all the same
        return self

    def stop(self) -> None:
        """Stop, and read how many packets the kernel dropped (a capture that lost packets
        cannot be read: its streams have holes)."""
        if self._proc is None:
            return
        time.sleep(0.2)
        self._proc.send_signal(signal.SIGINT)
        _, err = self._proc.communicate(timeout=30)
        self._proc = None
        for line in err.decode(errors="replace").splitlines():
            if "dropped by kernel" in line:
                self.dropped = int(line.split()[0])
        if self.dropped:
            raise CaptureError(f"tcpdump: {self.dropped} packets dropped by the kernel")


def submit_times(path: Path, ports: list[int]) -> dict[int, list[float]]:
    """Per destination port, the time of every submit_sm: the stamp of the packet holding its
    last byte (the SMSC can count a PDU only once all of it arrived). Each connection's byte
    stream is rebuilt by sequence number; a packet seen twice counts once."""
    streams: dict[tuple[bytes, int, int], bytearray] = defaultdict(bytearray)
    next_seq: dict[tuple[bytes, int, int], int] = {}
    times: dict[int, list[float]] = {p: [] for p in ports}
    with path.open("rb") as fh:
        for stamp, frame in dpkt.pcap.Reader(fh):
            ip = dpkt.ethernet.Ethernet(frame).data
            tcp = ip.data if isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6) else None
            if not isinstance(tcp, dpkt.tcp.TCP) or tcp.dport not in times:
                continue
            flow = (bytes(ip.src), tcp.sport, tcp.dport)
            data = bytes(tcp.data)
            if flow not in next_seq or tcp.flags & dpkt.tcp.TH_SYN:
                next_seq[flow] = (tcp.seq + (1 if tcp.flags & dpkt.tcp.TH_SYN else 0)) % 2**32
                streams[flow].clear()
            if not data:
                continue
            ahead = (tcp.seq - next_seq[flow]) % 2**32
            if ahead >= 2**31:  # (partly) seen already
                data = data[(-ahead) % 2**32 :]
            elif ahead:
                raise CaptureError(f"a hole of {ahead} bytes in a stream to port {tcp.dport}")
            next_seq[flow] = (next_seq[flow] + len(data)) % 2**32
            buf = streams[flow]
            buf += data
            while len(buf) >= 16:
                length = int.from_bytes(buf[:4], "big")
                if len(buf) < length:
                    break
                if int.from_bytes(buf[4:8], "big") == SUBMIT_SM:
                    times[tcp.dport].append(float(stamp))
                del buf[:length]
    return {p: sorted(t) for p, t in times.items()}
