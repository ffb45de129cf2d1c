"""Mobile-originated messages (a person's reply): pure, no I/O.

A deliver_sm that carries no receipt (`receipts.parse_receipt` returns None) is a message a
subscriber sent to the sender's address. Its text is decoded by its data_coding as a handset
wrote it: GSM 7-bit default alphabet (0, and 1 as some SMSCs label it), UCS-2 (8) or latin-1
(3); a message_payload TLV replaces an empty short_message. A concatenated reply arrives one
part at a time and each part is its own message here (the UDH is stripped).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from smpp_gateway.encoding import DC_LATIN1, DC_UCS2, decode

# Data codings read as text; anything else (binary, 8-bit data) is read as latin-1 so that
# nothing a person sent is lost, and noted in `data_coding`.
TEXT_CODINGS = frozenset({0, 1, DC_LATIN1, DC_UCS2})


@dataclass(frozen=True)
class MobileMessage:
    """What a subscriber sent: their number, the address they wrote to, the text, when."""

    source_addr: str
    destination_addr: str
    text: str
    received_at: datetime
    data_coding: int = 0


def _str(value: str | bytes | None) -> str:
    if value is None:
        return ""
    return value.decode("latin-1") if isinstance(value, bytes) else value


def decode_text(short_message: bytes, data_coding: int, esm_class: int = 0) -> str:
    """The text of one MO part; a byte sequence invalid in its coding is kept, not dropped."""
    coding = data_coding if data_coding in (DC_UCS2, DC_LATIN1) else 0
    if data_coding not in TEXT_CODINGS:
        coding = DC_LATIN1
    # (0 and 1 are both the GSM default alphabet, unpacked one septet an octet as SMPP has it)
    try:
        return decode(short_message, coding, esm_class)
    except (UnicodeDecodeError, KeyError, IndexError, ValueError):
        return decode(short_message, DC_LATIN1, esm_class)


def mobile_message(
    *,
    source_addr: str | bytes | None,
    destination_addr: str | bytes | None,
    short_message: bytes | None,
    message_payload: bytes | None,
    data_coding: int | None,
    esm_class: int | None,
    received_at: datetime,
) -> MobileMessage:
    body = short_message or b""
    esm = esm_class or 0
    if not body and message_payload:
        body, esm = bytes(message_payload), 0  # the payload TLV carries no UDH
    coding = data_coding or 0
    return MobileMessage(
        source_addr=_str(source_addr),
        destination_addr=_str(destination_addr),
        text=decode_text(body, coding, esm),
        received_at=received_at,
        data_coding=coding,
    )
