"""Per-gateway settings: one frozen object per carrier bind, built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass

BIND_MODES = ("transmitter", "transceiver", "receiver")
CONCATENATIONS = ("udh", "udh16", "sar", "payload")
RECEIPT_ID_FORMATS = ("hex", "dec", "as_is")


@dataclass(frozen=True)
class GatewayConfig:
    """How to reach and talk to one carrier's SMSC.

    `receipt_id_format` says how this carrier writes message ids in delivery receipts compared
    with submit_sm_resp: "hex" (both hex, or the same digits; case and leading zeros vary),
    "dec" (hex in the response, decimal in the receipt) or "as_is" (compare the strings).
    """

    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    bind_mode: str = "transceiver"
    source_addr: str = ""
    source_addr_ton: int = 5
    source_addr_npi: int = 0
    dest_addr_ton: int = 1
    dest_addr_npi: int = 1
    data_coding_gsm: int = 0
    concatenation: str = "udh"
    receipt_id_format: str = "hex"
    window: int = 10
    enquire_link_interval: float = 30.0
    response_timeout: float = 10.0
    reconnect_initial: float = 0.5
    reconnect_max: float = 30.0
    # Added: how long a session keeps trying to reconnect inside one call before it raises.
    reconnect_timeout: float = 60.0
    # Added: pause after ESME_RTHROTTLED / ESME_RMSGQFUL; doubles while throttling goes on.
    throttle_initial: float = 0.05
    throttle_max: float = 5.0
    connect_timeout: float = 5.0

    def __post_init__(self) -> None:
        if self.bind_mode not in BIND_MODES:
            raise ValueError(f"bind_mode must be one of {BIND_MODES}, not {self.bind_mode!r}")
        if self.concatenation not in CONCATENATIONS:
            raise ValueError(
                f"concatenation must be one of {CONCATENATIONS}, not {self.concatenation!r}"
            )
        if self.receipt_id_format not in RECEIPT_ID_FORMATS:
            raise ValueError(
                f"receipt_id_format must be one of {RECEIPT_ID_FORMATS}, "
                f"not {self.receipt_id_format!r}"
            )
        if self.data_coding_gsm not in (0x00, 0x01, 0x03):
            raise ValueError("data_coding_gsm must be 0x00, 0x01 or 0x03")
        if self.window < 1:
            raise ValueError("window must be at least 1")

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"
