"""Every Redis key and RQ queue name Loa uses, built in one place (RQ's `key_for` habit).

No RQ import here: the names are plain strings so the core and the web can use them, and the
web enqueues jobs by dotted path ("workers.jobs.fan_out") on these queues.
"""

from __future__ import annotations

PREFIX = "loa"

# Queue for alert-level jobs: fan-out, reconcile, expiry sweeps.
CONTROL_QUEUE = "loa-control"
# Carriers' uploaded files, imported off the web request by `loa worker --imports`. A queue of
# its own so that a 2,000,000-row import never holds up an approved alert's fan-out.
IMPORT_QUEUE = "loa-imports"

# Dotted paths of jobs the web and the CLI enqueue (they never import workers code).
FAN_OUT_JOB = "workers.jobs.fan_out"
# RQ's default job timeout (180 s) would kill a national fan-out (tens of millions of rows,
# minutes: docs/delivery.md "A national run") half way; every enqueue of FAN_OUT_JOB passes this.
FAN_OUT_JOB_TIMEOUT = 4 * 3600


def fan_out_job_id(alert_id: int) -> str:
    """The one id of an alert's fan-out job, whoever enqueues it (console, API, CLI,
    reconcile): reconcile reads its state before it enqueues the fan-out again."""
    return f"loa-fan-out-{int(alert_id)}"


RECONCILE_JOB = "workers.jobs.reconcile"
IMPORT_JOB = "workers.import_jobs.run_import"
IMPORT_JOB_TIMEOUT = 2 * 3600  # a 2,000,000-row list takes well under a minute; margin
IMPORT_PROGRESS_TTL = 24 * 3600  # an upload's progress, and its job's result
IMPORT_FAILURE_TTL = 7 * 24 * 3600  # a failed import job, kept for an operator to read
# How every import job is enqueued (the web's upload, reconcile's enqueue of a lost one).
IMPORT_JOB_OPTIONS = {
    "job_timeout": IMPORT_JOB_TIMEOUT,
    "result_ttl": IMPORT_PROGRESS_TTL,
    "failure_ttl": IMPORT_FAILURE_TTL,
}


def import_job_id(upload_name: str) -> str:
    """The one id of the job importing the upload saved as uploads/<upload_name>, whoever
    enqueues it (console, API, reconcile when Redis lost it)."""
    return f"loa-import-{upload_name}"


# One batch of one alert on one carrier (ids only); enqueued by fan-out and reconcile.
SEND_BATCH_JOB = "workers.jobs.send_batch"
# After set_control(..., "sending") on a paused alert: re-queue its parked batches.
RESUME_JOB = "workers.jobs.resume"

# Send queues: one per carrier and priority; an emergency batch goes ahead of every pending
# batch of lower categories on the same carrier (workers listen to `send_queues` in order).
PRIORITIES = ("emergency", "normal")


def send_queue(carrier_code: str, priority: str = "normal") -> str:
    if priority not in PRIORITIES:
        raise ValueError(f"unknown priority {priority!r}")
    return f"loa-send-{carrier_code}-{priority}"


def send_queues(carrier_code: str) -> list[str]:
    """A carrier's send queues, highest priority first (the order a worker listens in)."""
    return [send_queue(carrier_code, p) for p in PRIORITIES]


def key(*parts: object) -> str:
    """loa:<part>:<part>… — the only way a Redis key is built."""
    return ":".join([PREFIX, *(str(p) for p in parts)])


def rate_pace_key(carrier_code: str) -> str:
    """The shared rate limiter of one carrier (every process, every host): the planned send
    time, on the Redis server's clock in microseconds, of the next free segment slot."""
    return key("rate", carrier_code, "pace")


def rate_slots_key(carrier_code: str) -> str:
    """The slots of one carrier's limiter still within a window of now (a sorted set, score the
    slot's time in microseconds, member `time:segments`): no window holds more than the rate."""
    return key("rate", carrier_code, "slots")


def rate_epoch_key(carrier_code: str) -> str:
    """When this Redis first served the carrier's limiter (absent after a flush or restart)."""
    return key("rate", carrier_code, "epoch")


def rate_effective_key(carrier_code: str) -> str:
    """Hash {rate, at, cut_at}: the carrier's rate after the SMSC answered ESME_RTHROTTLED or
    ESME_RMSGQFUL (below the configured limit, creeping back up); absent means the limit."""
    return key("rate", carrier_code, "effective")


def alert_control_key(alert_id: int) -> str:
    """ "sending" | "paused" | "cancelled": read by every worker before each block it sends."""
    return key("alert", alert_id, "control")


def alert_counters_key(alert_id: int, carrier_code: str) -> str:
    """Hash of live counters per alert and carrier (queued, submitted, delivered, failed…)."""
    return key("alert", alert_id, "carrier", carrier_code, "counters")


def import_progress_key(import_token: str) -> str:
    return key("import", import_token, "progress")


# Hash: Import row id -> JSON {token, path} of each upload an imports worker is running, so that
# reconcile can tell the uploader and remove the file of one whose worker died.
IMPORTS_RUNNING_KEY = key("imports", "running")


def alert_batches_key(alert_id: int) -> str:
    """Hash "carrier:batch" -> RQ job id of a send job waiting in a queue (reconcile skips a
    batch whose job is still queued)."""
    return key("alert", alert_id, "batches")


def alert_reach_key(alert_id: int) -> str:
    """The alert's reach by area (JSON), cached briefly for every watcher (web/alertio.py)."""
    return key("alert", alert_id, "reach")


def alert_counters_built_key(alert_id: int) -> str:
    """Present while the counters of an alert mirror the database (absent after a flush)."""
    return key("alert", alert_id, "counters-built")


def alert_final_counts_key(alert_id: int) -> str:
    """JSON {carrier: {state: rows}} of a completed alert, counted once from the database:
    its rows no longer change, and the live counters may still lag the completion."""
    return key("alert", alert_id, "final-counts")


def alert_series_key(alert_id: int) -> str:
    """List of JSON points [unix time, messages/s, recipients with a final state] of the watch
    page's chart, one a second at most, bounded (live.SERIES_POINTS): its history on reload."""
    return key("alert", alert_id, "series")


def alert_series_gate_key(alert_id: int, second: int) -> str:
    """Taken by the first poll of a second, so several watchers add one point, not several."""
    return key("alert", alert_id, "series", second)


def alert_rate_key(alert_id: int, carrier_code: str, second: int) -> str:
    """Segments submitted in one wall-clock second (a short-lived bucket for `rate_now`)."""
    return key("alert", alert_id, "carrier", carrier_code, "rate", second)


def rq_queue_key(queue_name: str) -> str:
    """The Redis list RQ keeps a queue in (read by senders to see waiting emergencies)."""
    return f"rq:queue:{queue_name}"


def web_session_key(session_id: str) -> str:
    """One console session (JSON); its TTL is the idle timeout. The cookie holds only the id."""
    return key("session", session_id)


def user_sessions_key(user_id: int | str) -> str:
    """Set of the session ids of one user, so a password change ends every one of them."""
    return key("user", user_id, "sessions")


def login_attempts_key(username: str, ip: str) -> str:
    """Login attempts per username and client address in the current one-minute window."""
    return key("login", "attempts", username.lower(), ip)


def login_account_key(username: str) -> str:
    """Login attempts on one username from devices it never logged in from, in the current
    account window (whatever the client address)."""
    return key("login", "account", username.lower())
