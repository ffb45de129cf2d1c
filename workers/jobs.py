"""RQ jobs, enqueued by dotted path (broadcast.keys) with ids only: each loads current state,
so a retried or re-queued job does the right thing.

- `fan_out(alert_id)`: snapshot the audience in chunks (INSERT … SELECT) and enqueue each
  chunk's batches at once, so sending starts while the snapshot is still being written.
- `send_batch(alert_id, carrier_code, batch_no)`: run by a sender process of that carrier.
- `reconcile()`: the database is the truth. Restore control keys and counters Redis lost,
  re-queue batches no live sender holds (expired leases, lost queues), cancel what a cancelled
  alert still holds, expire what is past its expiry, match late receipts, complete alerts,
  enqueue or schedule again the lost fan-out of a scheduled alert,
  fail imports whose worker died, enqueue again the import of an upload whose job was lost.
- `resume(alert_id)`: after a pause, put the parked batches back on their queues.

A carrier's uploaded file is imported by workers.import_jobs, the only job module that loads
the importer (pandas): senders and the control worker never import it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rq import Queue, Worker
from rq.job import Job, JobStatus

from broadcast import alerts, deliveries, drills, keys, live
from broadcast.models import Alert, AlertStatus
from subscriber_import import records
from workers import runtime as rt_mod
from workers.queues import enqueue_batches, priority_of
from workers.runtime import Runtime
from workers.sender import sender_for

log = logging.getLogger(__name__)


def _codes(rt: Runtime) -> dict[int, str]:
    return {v: k for k, v in rt.store.carrier_ids().items()}


def fan_out(alert_id: int) -> dict[str, Any]:
    """Snapshot the audience and enqueue its batches, chunk by chunk."""
    rt = rt_mod.current()
    with rt.database.session() as s:
        alert = s.get(Alert, alert_id)
        if alert is None:
            return {"result": "no such alert"}
        if alert.status not in (AlertStatus.APPROVED, AlertStatus.SCHEDULED,
                                AlertStatus.SENDING, AlertStatus.PAUSED):  # fmt: skip
            return {"result": f"alert is {alert.status.value}"}
        alerts.mark_sending(s, alert_id)
        priority = priority_of(alert.category)
    live.restore_control(rt.redis, alert_id, AlertStatus.SENDING)
    with rt.database.session() as s:
        live.rebuild_counters(rt.redis, s, alert_id)
    enqueued = 0
    with rt.database.sessions() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None
        for chunk in deliveries.fan_out(session, alert, settings=rt.settings):
            session.commit()  # the rows are there before a sender takes their batch
            moved = {(alert_id, chunk.carrier_code, "new", "queued"): chunk.rows}
            live.apply_transitions(rt.redis, moved)
            batches = [(chunk.carrier_code, b) for b in chunk.batches]
            enqueued += enqueue_batches(rt, alert_id, priority, batches)
        session.commit()
    codes = _codes(rt)
    # Rows written before a crash of an earlier run, or by a caller that snapshotted itself.
    enqueued += _queue_leftovers(rt, alert_id, priority, codes)
    rt.store.complete_if_done(alert_id)
    counts = rt.store.state_counts(alert_id)
    written = {codes[c]: sum(v.values()) for c, v in counts.items()}
    return {"result": "fanned out", "written": written, "batches": enqueued}


def _queue_leftovers(rt: Runtime, alert_id: int, priority: str, codes: dict[int, str]) -> int:
    pairs, _ = rt.store.queue_pending(alert_id, rt.settings.delivery.batch_size)
    if not pairs:
        return 0
    with rt.database.session() as s:
        live.rebuild_counters(rt.redis, s, alert_id)
    return enqueue_batches(rt, alert_id, priority, [(codes[c], b) for c, b in pairs])


def send_batch(alert_id: int, carrier_code: str, batch_no: int) -> dict[str, Any]:
    rt = rt_mod.current()
    return sender_for(rt, carrier_code).send_batch(alert_id, batch_no)


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def requeue_alert(rt: Runtime, alert_id: int, priority: str) -> Counter[str]:
    """Enqueue every batch with queued rows that no live sender holds and no queue has."""
    codes = _codes(rt)
    marks = {
        _str(k): _str(v) for k, v in rt.redis.hgetall(keys.alert_batches_key(alert_id)).items()
    }
    # A mark proves a waiting job only while that job is in its queue. Not its record's
    # status: RQ takes a job off the queue (LPOP) and marks it started a few round trips
    # later, so a sender killed in between leaves a mark, a record saying "queued", no job in
    # any queue and rows with no lease: a batch no one would ever send.
    waiting = set()
    if marks:
        carriers = sorted({member.split(":", 1)[0] for member in marks})
        pipe = rt.redis.pipeline(transaction=False)
        for code in carriers:
            for name in keys.send_queues(code):
                pipe.lrange(Queue(name, connection=rt.redis).key, 0, -1)
        queued = {_str(job_id) for ids in pipe.execute() for job_id in ids}
        waiting = {member for member, job_id in marks.items() if job_id in queued}
    todo: list[tuple[str, int]] = []
    stats: Counter[str] = Counter()
    for carrier_id, batch_no, lease_expired in rt.store.batches_to_queue(alert_id):
        member = f"{codes[carrier_id]}:{batch_no}"
        if member in waiting and not lease_expired:
            continue
        todo.append((codes[carrier_id], batch_no))
        stats["expired_leases" if lease_expired else "lost_batches"] += 1
    stats["pending_batches"] = _queue_leftovers(rt, alert_id, priority, codes)
    enqueue_batches(rt, alert_id, priority, todo)
    return stats


def resume(alert_id: int) -> dict[str, Any]:
    """The console resumed a paused alert: say so to the workers and re-queue its batches."""
    rt = rt_mod.current()
    live.set_control(rt.redis, alert_id, "sending")
    message = rt.store.alert_message(alert_id)
    if message is None:
        return {"result": "no such alert"}
    return dict(requeue_alert(rt, alert_id, message.priority))


def reconcile() -> dict[str, Any]:
    """Make Redis agree with the database and finish what was left; safe to run any time."""
    rt = rt_mod.current()
    names = (
        "alerts",
        "fan_outs",
        "lost_batches",
        "expired_leases",
        "pending_batches",
        "cancelled_rows",
        "scheduled_fan_outs",
    )
    report: Counter[str] = Counter(dict.fromkeys(names, 0))
    report["expired_alerts"] = len(rt.store.expire_overdue())
    report["failed_imports"] = len(fail_abandoned_imports(rt))
    report["imports_requeued"], report["imports_lost"] = _requeue_lost_imports(rt)
    with rt.database.session() as s:  # recurring drills whose lead time has come
        now = datetime.now(UTC)
        report["drills_created"] = len(drills.create_due(s, now=now, timezone=rt.settings.timezone))
    moved = rt.store.match_receipts()
    report["receipts_matched"] = sum(moved.values())
    for alert_id, status, fanned_out in rt.store.active_alerts():
        live.restore_control(rt.redis, alert_id, status)
        control = live.get_control(rt.redis, alert_id)
        if not fanned_out and status != AlertStatus.CANCELLED.value:
            # Approved but never started (its fan-out job lost with Redis), or a fan-out cut
            # off (the database went away, the worker was killed): fan out again unless its
            # job waits or runs; rows already written are skipped, the rest is written.
            report["fan_outs"] += _fan_out_again(rt, alert_id)
        if status == AlertStatus.APPROVED.value:
            pass  # nothing written yet: its fan-out job does the rest
        elif not rt.store.has_open(alert_id):
            rt.store.complete_if_done(alert_id)
        elif control == "cancelled" or status == AlertStatus.CANCELLED.value:
            report["cancelled_rows"] += sum(rt.store.cancel_unsent(alert_id).values())
        elif control == "sending" and status == "sending":
            message = rt.store.alert_message(alert_id)
            if message is not None:
                report.update(requeue_alert(rt, alert_id, message.priority))
        with rt.database.session() as s:
            live.rebuild_counters(rt.redis, s, alert_id)
        report["alerts"] += 1
    # Scheduled alerts: nothing is written before their time, so there is nothing to
    # complete, count or re-queue; only their fan-out job, which waits in RQ's scheduled
    # registry and is gone when Redis is flushed or restarted (or was taken off the control
    # queue by a control worker that died before starting it). Without it the alert would
    # stay scheduled and never be sent. Due now: enqueued as an approval does; due later:
    # scheduled again for its schedule_at, under the same job id.
    for alert_id, schedule_at in rt.store.scheduled_alerts():
        report["scheduled_fan_outs"] += _fan_out_again(rt, alert_id, schedule_at)
    return dict(report)


def _fan_out_again(rt: Runtime, alert_id: int, at: datetime | None = None) -> int:
    """Enqueue the alert's fan-out unless its job (keys.fan_out_job_id) is waiting, or is
    running in a worker still registered; 1 if enqueued. `at`: a scheduled alert's
    schedule_at, still ahead: the job then waits in RQ's scheduled registry until then."""
    job_id = keys.fan_out_job_id(alert_id)
    queue = Queue(keys.CONTROL_QUEUE, connection=rt.redis)
    if _job_waiting(rt, queue, job_id):
        return 0
    # What the dead worker's start would have removed: left there, RQ's maintenance would
    # later fail the new run's job as "stuck in intermediate queue".
    rt.redis.lrem(queue.intermediate_queue_key, 0, job_id)
    if at is not None and at > datetime.now(UTC):
        queue.enqueue_at(
            at, keys.FAN_OUT_JOB, alert_id, job_id=job_id, job_timeout=keys.FAN_OUT_JOB_TIMEOUT
        )
    else:
        queue.enqueue(
            keys.FAN_OUT_JOB, alert_id, job_id=job_id, job_timeout=keys.FAN_OUT_JOB_TIMEOUT
        )
    return 1


def _job_waiting(rt: Runtime, queue: Queue, job_id: str) -> bool:
    """Whether the job (a fan-out, an import) waits in its queue or in its scheduled or
    deferred registry, or runs in a worker still registered."""
    # Waiting means in the queue's list, not a record saying "queued": RQ takes the id off
    # the queue (LPOP, or LMOVE into the queue's intermediate list) and marks the job started
    # a few round trips later, so a worker killed in between leaves a "queued" record in no
    # queue, and the alert would stay approved, unsent, until it expires (the upload never
    # imported). The list is read before the record: a live worker taking the job is then
    # seen in one or the other except within those few round trips (a fan-out run twice
    # writes nothing twice; an import run twice finds its upload taken).
    if job_id in queue.get_job_ids():
        return True
    job = Job.fetch_many([job_id], connection=rt.redis)[0]
    if job is None:
        return False
    state = job.get_status(refresh=False)
    if state == JobStatus.SCHEDULED and job_id in queue.scheduled_job_registry:
        return True
    if state == JobStatus.DEFERRED and job_id in queue.deferred_job_registry:
        return True
    return state == JobStatus.STARTED and any(
        w.get_current_job_id() == job_id for w in Worker.all(connection=rt.redis)
    )


def _requeue_lost_imports(rt: Runtime) -> tuple[int, int]:
    """Uploads whose import job is neither waiting nor running (records.upload_jobs): Redis
    lost it (a flush, a restart), or an imports worker took it off its queue and died before
    taking the upload. Untaken: enqueued again under its id, its progress back to queued.
    Taken by a run that is gone, and older than any import may run (imports.max_seconds and
    the grace): the upload is removed and its uploader told to send it again, as
    fail_abandoned_imports does for an import that had started (Redis may have lost that
    one's link). Returns (enqueued again, given up)."""
    imports = rt.settings.imports
    queue = Queue(keys.IMPORT_QUEUE, connection=rt.redis)
    requeued = lost = 0
    for upload in records.upload_jobs(rt.settings):
        if upload.age < imports.abandoned_grace_seconds:
            continue  # just saved: its job is being enqueued
        if _job_waiting(rt, queue, upload.job_id):
            continue
        kwargs = upload.kwargs
        token, carrier, filename = kwargs["token"], kwargs["carrier_code"], kwargs["filename"]
        if not upload.taken:
            rt.redis.lrem(queue.intermediate_queue_key, 0, upload.job_id)
            queue.enqueue(
                keys.IMPORT_JOB, kwargs=kwargs, job_id=upload.job_id, **keys.IMPORT_JOB_OPTIONS
            )
            records.store_progress(
                rt.redis, token, carrier=carrier, filename=filename,
                state="queued", rows=0, total=None,
            )  # fmt: skip
            requeued += 1
        elif upload.age > imports.max_seconds + imports.abandoned_grace_seconds:
            records.forget_upload(upload.upload)
            records.store_progress(
                rt.redis, token, carrier=carrier, filename=filename,
                state="failed", code="import_stopped", message=STOPPED,
            )  # fmt: skip
            lost += 1
    return requeued, lost


STOPPED = "the import stopped with the worker running it; upload the file again"


def fail_abandoned_imports(rt: Runtime) -> list[int]:
    """Imports whose worker died: failed in the database (records.fail_abandoned); their
    uploader's progress says so and their uploaded file is removed."""
    failed = records.fail_abandoned(rt.database, rt.settings)
    for import_id in failed:
        raw = rt.redis.hget(keys.IMPORTS_RUNNING_KEY, str(import_id))
        if raw is None:  # a `loa import` run, or Redis lost the link: the row says it all
            continue
        link = json.loads(raw)
        records.forget_upload(Path(link["path"]))
        records.store_progress(
            rt.redis, link["token"], carrier=link.get("carrier"), filename=link.get("filename"),
            state="failed", import_id=import_id, code="import_stopped", message=STOPPED,
        )  # fmt: skip
        rt.redis.hdel(keys.IMPORTS_RUNNING_KEY, str(import_id))
    return failed
