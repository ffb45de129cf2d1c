"""The RQ worker processes: a carrier's sender, the control worker, the imports worker.

`SenderWorker` is an RQ SimpleWorker listening to the carrier's send queues, emergency first;
no fork per job, so the binds of its `CarrierSender` stay open. While no job is waiting it
keeps servicing the binds (receipts, enquire_link). `ControlWorker` runs the fan-out, resume
and reconcile jobs, and reconcile itself at start and every `delivery.reconcile_interval`.
`ImportWorker` runs the carriers' uploads. All three override RQ's wait for a job, so that a
stop request is seen within a second, and still run RQ's own upkeep while idle (see
`GracefulWorker.upkeep`).

Each runs in its own process's main thread (`loa worker`). `in_thread=True` is for a worker
run in another thread (the web tests' `control_jobs` fixture): only the main thread may install
signal handlers, so there are none (stop it with `stop()`), and a job's timeout is enforced by
a timer instead of SIGALRM. Nothing else differs.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

from rq import Queue, SimpleWorker
from rq.exceptions import DequeueTimeout, InvalidJobOperation
from rq.job import Job
from rq.timeouts import TimerDeathPenalty
from rq.utils import now as rq_now
from sqlalchemy.exc import OperationalError

from broadcast import keys, metrics
from subscriber_import import isolation
from workers.jobs import reconcile
from workers.runtime import Runtime
from workers.sender import CarrierSender

log = logging.getLogger(__name__)


class GracefulWorker(SimpleWorker):
    """SIGTERM or SIGINT only asks the worker to stop; the loops look between steps.

    RQ's own handler raises StopRequested from inside whatever the process was doing when it
    was idle: a database query half sent then leaves its connection unusable ("another command
    is already in progress") and the clean-up that follows dies with a traceback. Here the
    signal sets flags; a running batch hands back what it has not sent (see
    `CarrierSender.send_batch`), the wait for jobs returns, and a second signal still forces
    the stop."""

    HEARTBEAT_EVERY = 5.0  # seconds between heartbeats while idle
    POLL_SECONDS = 1  # the longest a wait for a job blocks before it looks at the stop flag

    _last_beat = 0.0
    _idle_since: float | None = None

    def __init__(self, *args: Any, in_thread: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_thread = in_thread
        if in_thread:  # SIGALRM, RQ's default, reaches the main thread only
            self.death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        if not self.in_thread:  # only the main thread may; `stop()` asks instead
            super()._install_signal_handlers()

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        """The signal handlers first (RQ's `work` installs them only after registering the
        worker): once the worker is seen registered, SIGTERM stops it cleanly, never kills it
        with the default action."""
        self._install_signal_handlers()
        super().bootstrap(*args, **kwargs)

    def stop(self) -> None:
        """From another thread, what SIGTERM asks: finish the job in hand, then return from
        `work` (the wait for a job looks every POLL_SECONDS)."""
        self._shutdown_requested_date = rq_now()
        self._stop_requested = True

    def between_polls(self) -> None:
        """What the worker does on each turn of its wait for a job, before RQ's upkeep."""

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> Any:
        """RQ's wait for a job, in turns of at most POLL_SECONDS (RQ's own blocks for
        `dequeue_timeout`, minutes, and only a signal's exception ends it early)."""
        while True:
            self.between_polls()
            self.upkeep()
            try:
                result = self.queue_class.dequeue_any(
                    self._ordered_queues,
                    None if timeout is None else self.POLL_SECONDS,
                    connection=self.connection,
                    job_class=self.job_class,
                    serializer=self.serializer,
                    death_penalty_class=self.death_penalty_class,
                )
            except DequeueTimeout:
                result = None
            if result is not None:
                self.got_job()
                return result
            if timeout is None or self._stop_requested or self.idle_too_long(max_idle_time):
                return None

    def upkeep(self) -> None:
        """What RQ's own wait for a job does on each turn, for the loops that replace it: a
        heartbeat (here every few seconds, not every turn) and RQ's maintenance when it is
        due (`maintenance_interval`): restart the scheduler if its process died, and clean
        the queues' registries (jobs of dead workers to failed, expired entries dropped)."""
        now = time.monotonic()
        if now - self._last_beat > self.HEARTBEAT_EVERY:
            self.heartbeat()
            self._last_beat = now
        if self.should_run_maintenance_tasks:
            self.run_maintenance_tasks()

    def idle_too_long(self, max_idle_time: int | None) -> bool:
        """True once no job came for `max_idle_time` seconds (`work(max_idle_time=…)`)."""
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
        return max_idle_time is not None and now - self._idle_since >= max_idle_time

    def got_job(self) -> None:
        self._idle_since = None
        self.heartbeat()

    def handle_exception(self, job: Job, *exc_info: Any) -> None:
        """A job whose record vanished from Redis while it ran (a flush, a failover without
        persistence) is no fault of the job: one line, no traceback. Its rows are in the
        database; the next reconcile re-queues what is left."""
        if len(exc_info) > 1 and isinstance(exc_info[1], InvalidJobOperation):
            log.warning(
                "job %s: its record is gone from Redis (%s); reconcile re-queues its rows",
                job.id,
                exc_info[1],
            )
            return
        super().handle_exception(job, *exc_info)

    def request_stop(self, signum: Any, frame: Any) -> None:
        self._shutdown_requested_date = rq_now()
        self._stop_requested = True
        signal.signal(signal.SIGINT, self.request_force_stop)
        signal.signal(signal.SIGTERM, self.request_force_stop)
        self.handle_warm_shutdown_request()


class SenderWorker(GracefulWorker):
    """RQ worker of one carrier's send queues, emergency first; no fork, binds kept open."""

    def __init__(self, sender: CarrierSender, **kwargs: Any) -> None:
        conn = sender.runtime.redis
        queues = [Queue(name, connection=conn) for name in keys.send_queues(sender.code)]
        super().__init__(queues, connection=conn, **kwargs)
        self.sender = sender

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> Any:
        while True:
            self.upkeep()
            result = self.queue_class.dequeue_any(
                self._ordered_queues,
                None,
                connection=self.connection,
                job_class=self.job_class,
                serializer=self.serializer,
                death_penalty_class=self.death_penalty_class,
            )
            if result is not None:
                self.got_job()
                return result
            if timeout is None or self._stop_requested or self.idle_too_long(max_idle_time):
                return None
            self.sender.idle(0.2)
            metrics.QUEUE_DEPTH.labels(self.sender.code).set(
                sum(q.count for q in self._ordered_queues)
            )

    def request_stop(self, signum: Any, frame: Any) -> None:
        self.sender.stop_requested = True
        super().request_stop(signum, frame)


class ControlWorker(GracefulWorker):
    """RQ worker of the control queue (fan-out, resume, reconcile) that also runs reconcile
    at start and every `delivery.reconcile_interval` seconds."""

    def __init__(self, runtime: Runtime, **kwargs: Any) -> None:
        conn = runtime.redis
        super().__init__([Queue(keys.CONTROL_QUEUE, connection=conn)], connection=conn, **kwargs)
        self.runtime = runtime
        self._next_reconcile = 0.0
        self.last_reconcile: dict[str, Any] | None = None  # the last pass's report

    def between_polls(self) -> None:
        now = time.monotonic()
        if now < self._next_reconcile:
            return
        self._next_reconcile = now + self.runtime.settings.delivery.reconcile_interval
        try:
            self.last_reconcile = reconcile()
            log.info("reconcile: %s", self.last_reconcile)
        except OperationalError as exc:  # the database is away: the next pass retries
            log.warning("reconcile: the database is unreachable (%s); again in %s s",
                        str(exc.orig or exc).splitlines()[0],
                        self.runtime.settings.delivery.reconcile_interval)  # fmt: skip
        except Exception:  # a failed pass must not stop the worker; the next one retries
            log.exception("reconcile failed")


class ImportWorker(GracefulWorker):
    """RQ worker of the imports queue: carriers' uploaded files, one at a time, apart from the
    control queue so that a long import never delays an alert's fan-out."""

    def __init__(self, runtime: Runtime, **kwargs: Any) -> None:
        conn = runtime.redis
        super().__init__([Queue(keys.IMPORT_QUEUE, connection=conn)], connection=conn, **kwargs)
        self.runtime = runtime
        isolation.warm_up()  # the imports' fork server, before the first upload waits for it
