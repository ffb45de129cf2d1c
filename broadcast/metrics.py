"""Prometheus collectors for operators: queue depth, messages per second, receipts, errors, binds.

Counters are per process (prometheus_client's default registry); each sender process serves
them with `start_http_server` when `loa worker --metrics-port` is given. Rates per carrier
are `rate(loa_submitted_total[1m])` in Prometheus.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SUBMITTED = Counter(
    "loa_submitted", "Messages accepted by the SMSC (submit_sm_resp OK)", ["carrier"]
)
RECEIPTS = Counter("loa_receipts", "Delivery receipts received", ["carrier"])
ERRORS = Counter(
    "loa_send_errors", "Failed submits by kind (transient, permanent, link)", ["carrier", "kind"]
)
RESENT = Counter(
    "loa_resent", "Rows re-claimed after a sender died holding them (possible duplicates)",
    ["carrier"],
)  # fmt: skip
SLOTS_GIVEN_UP = Counter(
    "loa_slots_given_up",
    "Rate-limiter slots (segments) a sender reached too late and gave up: its process was "
    "descheduled (a busy machine); the share of the limit lost to it",
    ["carrier"],
)
WRITTEN_LATE = Counter(
    "loa_written_late",
    "Segments a sender wrote later than its slot allows (descheduled between its last check "
    "and the write); the limiter logs them when they left, so the ceiling holds",
    ["carrier"],
)
QUEUE_DEPTH = Gauge("loa_queue_depth", "Batches waiting in the carrier's send queues", ["carrier"])
BIND_STATE = Gauge("loa_binds_open", "SMPP binds this process holds open", ["carrier"])
RATE_LIMIT = Gauge(
    "loa_rate_limit",
    "Segments/s the carrier's senders pace at now: its limit, less while its SMSC pushes back",
    ["carrier"],
)
