"""SMPP 3.4 gateway for Loa: SMS encoding, a windowed client session and an SMSC simulator.

Imports only the standard library and smpplib: it knows nothing of alerts or storage.
"""

from __future__ import annotations

from smpp_gateway.client import (
    OutboundMessage,
    OutcomeKind,
    Receipt,
    ReceiptState,
    SmppSession,
    SubmitOutcome,
)
from smpp_gateway.config import GatewayConfig
from smpp_gateway.errors import BindError, EncodingError, GatewayError

__all__ = [
    "BindError",
    "EncodingError",
    "GatewayConfig",
    "GatewayError",
    "OutboundMessage",
    "OutcomeKind",
    "Receipt",
    "ReceiptState",
    "SmppSession",
    "SubmitOutcome",
]
