"""Delivery receipts and message-id normalisation: pure, no I/O.

Carriers disagree on how they write the SMSC message id: hex in submit_sm_resp and decimal in
the receipt, upper or lower case, with or without leading zeros. Both sides are turned into one
canonical form so that `SubmitOutcome.message_ids` and `Receipt.message_id` compare equal:

- "hex": both are read as hexadecimal; canonical = lowercase hex without leading zeros.
- "dec": the response is hex, the receipt decimal; canonical = lowercase hex, as above.
- "as_is": compared as written (whitespace stripped).

An id that does not parse as a number in the expected base is kept as written, lower-cased.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum


class ReceiptState(str, Enum):
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    EXPIRED = "expired"
    REJECTED = "rejected"
    DELETED = "deleted"
    UNKNOWN = "unknown"
    ACCEPTED = "accepted"
    ENROUTE = "enroute"

    @property
    def final(self) -> bool:
        """A final state ends the delivery row; ACCEPTED/ENROUTE are intermediate."""
        return self not in (ReceiptState.ACCEPTED, ReceiptState.ENROUTE)


# SMPP 3.4 section 5.3.2.35 message_state values, and the receipt text's `stat:` words.
MESSAGE_STATES = {
    1: ReceiptState.ENROUTE,
    2: ReceiptState.DELIVERED,
    3: ReceiptState.EXPIRED,
    4: ReceiptState.DELETED,
    5: ReceiptState.UNDELIVERABLE,
    6: ReceiptState.ACCEPTED,
    7: ReceiptState.UNKNOWN,
    8: ReceiptState.REJECTED,
}
STAT_WORDS = {
    "DELIVRD": ReceiptState.DELIVERED,
    "UNDELIV": ReceiptState.UNDELIVERABLE,
    "EXPIRED": ReceiptState.EXPIRED,
    "REJECTD": ReceiptState.REJECTED,
    "DELETED": ReceiptState.DELETED,
    "UNKNOWN": ReceiptState.UNKNOWN,
    "ACCEPTD": ReceiptState.ACCEPTED,
    "ENROUTE": ReceiptState.ENROUTE,
}


@dataclass(frozen=True)
class Receipt:
    """A delivery receipt; `message_id` is canonical, like SubmitOutcome.message_ids."""

    message_id: str
    state: ReceiptState
    error_code: str | None
    done_at: datetime | None


def _text(value: str | bytes) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


def normalise_id(raw: str | bytes, receipt_id_format: str, *, in_receipt: bool) -> str:
    """Canonical form of an SMSC message id (see module docstring)."""
    s = _text(raw).strip().rstrip("\0")
    if receipt_id_format == "as_is":
        return s
    base = 10 if (receipt_id_format == "dec" and in_receipt) else 16
    try:
        return format(int(s, base), "x")
    except ValueError:
        return s.lower()


_FIELD = re.compile(r"(id|sub|dlvrd|submit date|done date|stat|err)\s*:\s*(\S*)", re.IGNORECASE)


def parse_receipt_text(text: str) -> dict[str, str]:
    """Fields of the conventional receipt text (`id:... stat:DELIVRD err:000 text:...`)."""
    head = re.split(r"\btext:", text, maxsplit=1, flags=re.IGNORECASE)[0]
    return {k.lower(): v for k, v in _FIELD.findall(head)}


def _parse_date(value: str | None) -> datetime | None:
    if not value or not value.isdigit():
        return None
    fmt = {10: "%y%m%d%H%M", 12: "%y%m%d%H%M%S"}.get(len(value))
    if fmt is None:
        return None
    try:
        return datetime.strptime(value, fmt).replace(tzinfo=UTC)
    except ValueError:
        return None


def parse_receipt(
    *,
    short_message: bytes | None,
    receipted_message_id: str | bytes | None,
    message_state: int | None,
    network_error_code: bytes | None,
    receipt_id_format: str,
) -> Receipt | None:
    """A Receipt from deliver_sm fields (TLV form, text form or both; TLVs win), or None if
    the deliver_sm carries no message id (a mobile-originated message, not a receipt)."""
    fields = parse_receipt_text(short_message.decode("latin-1")) if short_message else {}
    raw_id = receipted_message_id or fields.get("id")
    if not raw_id:
        return None
    if message_state in MESSAGE_STATES:
        state = MESSAGE_STATES[message_state]
    else:
        state = STAT_WORDS.get(fields.get("stat", "").upper(), ReceiptState.UNKNOWN)
    error = fields.get("err")
    if error is None and network_error_code:
        error = network_error_code.hex()
    return Receipt(
        message_id=normalise_id(raw_id, receipt_id_format, in_receipt=True),
        state=state,
        error_code=error,
        done_at=_parse_date(fields.get("done date")),
    )
