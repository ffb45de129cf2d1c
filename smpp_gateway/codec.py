"""The SMPP 3.4 wire codec shared by the client session and the simulator.

The 16-octet header (length, command_id, command_status, sequence_number), the command ids,
the command_status values and their names, and the submit_sm template: smpplib builds a
submit_sm body once per (part, sender, validity); each message then only splices in its
destination and sequence number, which keeps PDU building off the hot path (smpplib's
generate() costs ~40 us a PDU). Rarer PDUs (binds, receipts) are built by smpplib
(`make_pdu`). The simulator decodes submit_sm with its own parser (an independent decoder
checks the client's PDUs better than the codec that made them); only the framing, the ids and
the statuses are shared.
"""

from __future__ import annotations

import struct

from smpplib import consts, smpp
from smpplib.command_codes import get_command_code

from smpp_gateway.encoding import Part
from smpp_gateway.errors import GatewayError

HEADER = struct.Struct(">LLLL")
HEADER_SIZE = HEADER.size
RESPONSE = 0x80000000  # the response bit of a command_id
MAX_SEQUENCE = 0x7FFFFFFF

SUBMIT_SM = get_command_code("submit_sm")
SUBMIT_SM_RESP = get_command_code("submit_sm_resp")
DELIVER_SM = get_command_code("deliver_sm")
DELIVER_SM_RESP = get_command_code("deliver_sm_resp")
ENQUIRE_LINK = get_command_code("enquire_link")
ENQUIRE_LINK_RESP = get_command_code("enquire_link_resp")
UNBIND = get_command_code("unbind")
UNBIND_RESP = get_command_code("unbind_resp")
GENERIC_NACK = get_command_code("generic_nack")
BINDS = {
    get_command_code("bind_transmitter"): "transmitter",
    get_command_code("bind_receiver"): "receiver",
    get_command_code("bind_transceiver"): "transceiver",
}

ESME_ROK = 0x00
ESME_RINVCMDID = 0x03
ESME_RINVBNDSTS = 0x04
ESME_RSYSERR = 0x08
ESME_RINVDSTADR = 0x0B
ESME_RINVPASWD = 0x0E
ESME_RINVSYSID = 0x0F
ESME_RMSGQFUL = 0x14
ESME_RTHROTTLED = 0x58
ESME_RX_T_APPN = 0x64
# Worth retrying later: throttled, queue full, system error, temporary application error.
TRANSIENT_STATUSES = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL, ESME_RSYSERR, ESME_RX_T_APPN})
# The SMSC cannot take the rate: the sender slows down.
SLOW_DOWN_STATUSES = frozenset({ESME_RTHROTTLED, ESME_RMSGQFUL})

# command_status -> its SMPP 3.4 name, from smpplib's constants (SMPP_ESME_RTHROTTLED = 0x58 …).
STATUS_NAMES = {
    value: name.removeprefix("SMPP_")
    for name, value in vars(consts).items()
    if name.startswith("SMPP_ESME_") and isinstance(value, int)
}


def status_text(status: int) -> str:
    """A command_status as people read it in a report: "ESME_RTHROTTLED (0x58)"."""
    return f"{STATUS_NAMES.get(status, 'unknown status')} (0x{status:02X})"


class _CodecClient:
    """What smpplib's PDU classes ask of a client; the callers number PDUs themselves."""

    sequence = 0

    def next_sequence(self) -> int:
        return 0


CODEC_CLIENT = _CodecClient()


def make_pdu(command: str, sequence: int, **fields: object) -> bytes:
    """A whole PDU built by smpplib (binds, unbind, enquire_link, receipts)."""
    pdu = smpp.make_pdu(command, client=CODEC_CLIENT, sequence=sequence, **fields)
    pdu.sequence = sequence
    return pdu.generate()


def submit_template(
    part: Part,
    *,
    source: str,
    ton: int,
    npi: int,
    dest_ton: int,
    dest_npi: int,
    registered: int,
    validity: str,
) -> tuple[bytes, bytes]:
    """The submit_sm body of one part from one sender, cut around its destination: (what
    comes before it, what comes after its NUL). See `submit_sm`."""
    body = make_pdu(
        "submit_sm",
        0,
        source_addr_ton=ton,
        source_addr_npi=npi,
        source_addr=source,
        dest_addr_ton=dest_ton,
        dest_addr_npi=dest_npi,
        destination_addr="",
        esm_class=part.esm_class,
        registered_delivery=registered,
        validity_period=validity or None,
        data_coding=part.data_coding,
        short_message=part.short_message,
        **dict(part.tlvs),
    )[HEADER_SIZE:]
    # service_type "" (1) + ton, npi (2) + source\0 + dest ton, npi (2): then destination.
    at = 1 + 2 + len(source.encode("latin-1")) + 1 + 2
    if body[at] != 0:
        raise GatewayError("unexpected submit_sm layout from smpplib")
    return body[:at], body[at + 1 :]


def submit_sm(sequence: int, template: tuple[bytes, bytes], destination: bytes) -> bytes:
    """A whole submit_sm: the template with the destination spliced in."""
    prefix, suffix = template
    return b"".join(
        (
            HEADER.pack(17 + len(prefix) + len(destination) + len(suffix), SUBMIT_SM, 0, sequence),
            prefix,
            destination,
            b"\0",
            suffix,
        )
    )
