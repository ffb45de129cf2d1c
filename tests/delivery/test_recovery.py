"""Nothing is lost when a sender is killed, the SMSC drops the link, or Redis is flushed."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from rq import Queue
from rq.job import Job, JobStatus
from rq.scheduler import RQScheduler
from sqlalchemy import func, select

from broadcast import keys, live
from broadcast.models import Alert, AlertStatus, Delivery
from delivery.conftest import World
from delivery.helpers import (
    accepted_numbers,
    alert_status,
    drain,
    sender_processes,
    states,
    wait_for,
    work,
)
from workers import jobs
from workers.processes import ControlWorker, SenderWorker
from workers.sender import sender_for


def _finish_by_expiry(world: World, alert_id: int, max_waiting: int) -> Counter[str]:
    """Receipts the SMSC had for a dead bind while no bind was up are gone (the simulator
    keeps none): those rows wait for the alert's expiry and then become expired."""
    waiting = states(world.database, alert_id)["submitted"]
    assert waiting <= max_waiting
    with world.database.session() as s:
        s.get(Alert, alert_id).expires_at = datetime.now(UTC) - timedelta(seconds=1)
    assert jobs.reconcile()["expired_alerts"] == (1 if waiting else 0)
    counts = states(world.database, alert_id)
    assert counts["expired"] == waiting
    assert alert_status(world.database, alert_id) == "completed"
    return counts


def _duplicates(world: World, code: str = "viettel") -> int:
    received = accepted_numbers(world.sims[code])
    return sum(n - 1 for n in received.values())


def _sent_once(world: World, alert_id: int, numbers: list[str]) -> None:
    """Viettel's sender works until the alert is done: every number delivered, each
    received once by the SMSC."""
    work(world.runtime, ["viettel"])
    assert drain(world.runtime, ["viettel"], alert_id)
    assert states(world.database, alert_id) == {"delivered": len(numbers)}
    received = accepted_numbers(world.sims["viettel"])
    assert set(received) == set(numbers) and max(received.values()) == 1


@pytest.mark.slow
def test_a_sender_killed_mid_broadcast_loses_nothing(make_world: Callable[..., World]) -> None:
    world = make_world(
        ("viettel",),
        mps=300,
        window=20,
        lease_seconds=2,
        batch_size=100,
        sim={"receipt_delay": 0.02},
    )
    # Killed at 500 of 800: rows in flight, batches left in the queue for another sender.
    numbers = world.numbers(800)
    alert_id = world.make_alert({"viettel": numbers})
    jobs.fan_out(alert_id)
    with sender_processes(world, ["viettel"]) as sender:
        assert wait_for(lambda: len(world.sims["viettel"].submits()) >= 500, 30), sender.output()
        sender.signal(signal.SIGKILL)
        sender.wait(10)
    sent_before = len(world.sims["viettel"].submits())
    assert sent_before < len(numbers)
    # Every lease the dead sender took or renewed was set before the kill to end at most
    # lease_seconds (2 s) later: past that, one reconcile gives back everything it held.
    time.sleep(2.2)
    report = jobs.reconcile()
    work(world.runtime, ["viettel"])
    drain(world.runtime, ["viettel"], alert_id, timeout=2)
    left = states(world.database, alert_id)
    assert not left["pending"] and not left["queued"], (left, report)
    # The batch it held (lease run out) or had just taken off the queue (not yet claimed;
    # see test_a_batch_taken_off_its_queue_by_a_sender_that_died_is_sent).
    assert report["expired_leases"] + report["lost_batches"] <= 1, report
    # Receipts lost with the dead process: those in flight (window 20), those it had read but
    # not yet written (one flush interval, 0.25 s at 300/s) and those due in the receipt
    # delay after the kill (20 ms at 300/s, with margin).
    counts = _finish_by_expiry(world, alert_id, 20 + int(0.25 * 300) + 20)
    assert counts["delivered"] + counts["expired"] == len(numbers)
    received = accepted_numbers(world.sims["viettel"])
    assert set(received) == set(numbers)
    duplicates = _duplicates(world)
    # Bounded by what was on the wire or not yet written when it died, and counted.
    assert duplicates <= 20 + 0.25 * 300 + 20
    assert sender_for(world.runtime, "viettel").stats["reclaimed"] >= duplicates


def test_a_batch_taken_off_its_queue_by_a_sender_that_died_is_sent(
    make_world: Callable[..., World],
) -> None:
    """RQ takes a job off its queue (LPOP) and marks it started a few round trips later: a
    sender killed in between leaves the job's record saying "queued", in no queue, and its
    rows with no lease. Reconcile must not take that record for a waiting job."""
    world = make_world(("viettel",), batch_size=100, sim={"receipt_delay": 0.02})
    numbers = world.numbers(300)
    alert_id = world.make_alert({"viettel": numbers})
    jobs.fan_out(alert_id)
    # What the dead sender did: RQ's own dequeue, as SenderWorker does it, and nothing more.
    taken = SenderWorker(sender_for(world.runtime, "viettel")).dequeue_job_and_maintain_ttl(None)
    assert taken is not None
    job, _ = taken
    assert job.get_status(refresh=True) == JobStatus.QUEUED
    report = jobs.reconcile()
    assert report["lost_batches"] == 1 and report["expired_leases"] == 0, report
    _sent_once(world, alert_id, numbers)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["sending", "two processes"])
def test_a_sender_stopped_with_sigterm_exits_cleanly_and_loses_nothing(
    make_world: Callable[..., World], when: str
) -> None:
    """Stopped mid-batch, alone or as `--processes 2` whose parent passes the signal on to
    its children."""
    world = make_world(
        ("viettel",), mps=300, window=20, batch_size=200, sim={"receipt_delay": 0.02}
    )
    sim = world.sims["viettel"]
    # Stopped at 250 of 600: batches of 200, so the stop lands well inside a batch (150 rows,
    # half a second at 300/s, still to send: a stop at a batch's end leaves nothing unsent
    # and would not show rows kept or lost), with a batch left in the queue.
    numbers = world.numbers(600)
    alert_id = world.make_alert({"viettel": numbers})
    jobs.fan_out(alert_id)
    two = ["--processes", "2"] if when == "two processes" else []
    with sender_processes(world, ["viettel"], *two, log_level="INFO") as sender:
        assert wait_for(lambda: len(sim.submits()) >= 250, 30), sender.output()
        sender.signal(signal.SIGTERM)
        (code,) = sender.wait(20)
    output = sender.output()
    assert code == 0, output
    assert "Traceback" not in output and "already in progress" not in output, output
    if when == "sending":
        assert len(sim.submits()) < len(numbers)
    binds = 2 if when == "two processes" else 1
    assert output.count("warm shut down requested") == binds, output
    # The stopped worker closed its binds (`sender.close()`: receipts waited for, then an
    # unbind); left to the process's exit, its sockets would just close with no unbind.
    records = sim.records()
    bound = {r.connection for r in records if r.command.startswith("bind_")}
    unbound = {r.connection for r in records if r.command == "unbind"}
    assert len(bound) == binds and unbound == bound, (bound, unbound, output)
    with world.database.session() as s:
        held = s.scalar(
            select(func.count()).where(
                Delivery.alert_id == alert_id, Delivery.lease_until.is_not(None)
            )
        )
        by_batch: dict[int, set[str]] = {}
        for batch_no, state in s.execute(
            select(Delivery.batch_no, Delivery.state).where(Delivery.alert_id == alert_id)
        ):
            by_batch.setdefault(batch_no, set()).add(state.value)
    # Every lease given back: nothing waits for a lease to run out.
    assert held == 0, by_batch
    # The batches the stop cut: some rows sent, the rest still queued.
    cut = {b for b, st in by_batch.items() if "queued" in st and st - {"queued"}}
    assert cut, by_batch  # the stop landed inside a batch (else nothing here is tested)
    # Each cut batch put itself back at the front of its queue: the next sender takes it
    # first, with no reconcile needed.
    queue = Queue(keys.send_queue("viettel", "normal"), connection=world.runtime.redis)
    front = [job.args for job in queue.jobs[: len(cut)]]
    assert sorted(front) == sorted((alert_id, "viettel", b) for b in cut), (front, cut)
    # A second worker finishes the alert.
    report = jobs.reconcile()
    assert report.get("expired_leases", 0) == 0
    assert report.get("lost_batches", 0) == 0, report  # nothing left out of the queues
    work(world.runtime, ["viettel"])
    drain(world.runtime, ["viettel"], alert_id, timeout=3)
    # Receipts due after the stopped worker unbound have no bind to go to (the simulator
    # keeps none): those rows end at the alert's expiry.
    counts = _finish_by_expiry(world, alert_id, 40 * binds)
    assert counts["delivered"] + counts["expired"] == len(numbers)
    assert set(accepted_numbers(sim)) == set(numbers)
    assert _duplicates(world) <= 20 * binds


@pytest.mark.slow
def test_sigterm_while_receipts_are_written_never_breaks_a_query(
    make_world: Callable[..., World],
) -> None:
    """An idle sender writes receipts as they come: RQ's own handler raised into that work,
    and on PostgreSQL about one stop in four then logged "another command is already in
    progress" with a traceback, or hung. Several stops at random moments of that work."""
    # Receipts come a second after their submit: after the last batch is sent, while the
    # sender idles (a longer delay only adds waiting).
    world = make_world(("viettel",), mps=2000, batch_size=100, sim={"receipt_delay": 1.0})
    sim = world.sims["viettel"]
    rng = random.Random(14)
    for _ in range(4):
        alert_id = world.make_alert({"viettel": world.numbers(300)})
        jobs.fan_out(alert_id)
        before = len(sim.submits())
        with sender_processes(world, ["viettel"], log_level="INFO") as sender:
            assert wait_for(lambda b=before: len(sim.submits()) >= b + 300, 30)
            time.sleep(1.0 + rng.random() * 0.5)  # every batch sent; receipts arriving
            sender.signal(signal.SIGTERM)
            (code,) = sender.wait(20)
        output = sender.output()
        assert code == 0, output
        assert "Traceback" not in output, output
        with world.database.session() as s:
            held = s.scalar(
                select(func.count()).where(
                    Delivery.alert_id == alert_id, Delivery.lease_until.is_not(None)
                )
            )
        assert held == 0


def test_three_dropped_links_lose_nothing(make_world: Callable[..., World]) -> None:
    # The SMSC drops the link itself at the 170th submit_sm of each connection, leaving that
    # one unanswered, and answers every submit_sm 50 ms late: each drop cuts messages on the
    # wire, some accepted with their answer lost (the only possible duplicates). A drop from
    # outside landed between batches, with nothing on the wire, and never tried a resend.
    # 170 per link: three drops (the last near 510 of 600 submits, batches of 50 still left
    # to send), while the fourth link's share (90 plus at most 60 resends) stays below it.
    world = make_world(
        ("viettel",),
        mps=400,
        window=20,
        sim={"receipt_delay": 0.05, "latency": 0.05, "drop_after": 170},
    )
    numbers = world.numbers(600)
    alert_id = world.make_alert({"viettel": numbers})
    jobs.fan_out(alert_id)
    sim = world.sims["viettel"]
    with sender_processes(world, ["viettel"]):
        sent = wait_for(lambda: states(world.database, alert_id)["queued"] == 0, 30)
        assert sent, states(world.database, alert_id)
    drain(world.runtime, ["viettel"], alert_id, timeout=2)
    # The submit_sm each link was dropped at: unanswered, never accepted.
    cut = [r.destination_addr for r in sim.submits() if r.error == -1]
    assert len(cut) == 3, cut
    counts = _finish_by_expiry(world, alert_id, 3 * 40)
    assert counts["delivered"] + counts["expired"] == len(numbers)
    received = accepted_numbers(sim)
    assert set(received) == set(numbers)
    # Each message cut with its link was sent again, and accepted once.
    assert all(received[n] == 1 for n in cut), {n: received[n] for n in cut}
    duplicates = _duplicates(world)
    assert duplicates <= 3 * 20
    with world.database.session() as s:
        retried = dict(
            s.execute(
                select(Delivery.msisdn, Delivery.attempts).where(
                    Delivery.alert_id == alert_id, Delivery.attempts > 1
                )
            ).all()
        )
    assert set(cut) <= set(retried), (cut, retried)
    assert len(retried) >= duplicates  # each duplicate is a counted retry
    # A number the SMSC got twice is one whose answer the drop lost: a retried row.
    assert {n for n, k in received.items() if k > 1} <= set(retried), (received, retried)


def test_redis_flushed_mid_broadcast_reconcile_finishes(make_world: Callable[..., World]) -> None:
    world = make_world(("viettel",), mps=400, sim={"receipt_delay": 0.02})
    numbers = world.numbers(500)  # flushed at 150: batches of 50 still queued
    alert_id = world.make_alert({"viettel": numbers})
    jobs.fan_out(alert_id)
    # The batch running when the flush took its job's record ends with one warning line, no
    # traceback (sender_processes fails on any); its rows are reconciled.
    with sender_processes(world, ["viettel"]):
        assert wait_for(lambda: len(world.sims["viettel"].submits()) >= 150, 30)
        world.runtime.redis.flushdb()
        time.sleep(0.5)  # the running batch finishes; the queued ones are gone with Redis
        report = jobs.reconcile()
        assert report.get("lost_batches", 0) >= 1
        assert wait_for(lambda: states(world.database, alert_id)["queued"] == 0, 30)
    assert drain(world.runtime, ["viettel"], alert_id)
    assert states(world.database, alert_id) == {"delivered": len(numbers)}
    received = accepted_numbers(world.sims["viettel"])
    assert set(received) == set(numbers) and max(received.values()) == 1
    with world.database.session() as s:
        progress = live.alert_progress(
            world.runtime.redis, s, alert_id, world.runtime.settings.rate_limits
        )
    assert progress["viettel"]["delivered"] == len(numbers)


def test_an_approved_alert_whose_fan_out_was_lost_is_sent(
    make_world: Callable[..., World],
) -> None:
    world = make_world(("viettel",), sim={"receipt_delay": 0.02})
    numbers = world.numbers(60)
    alert_id = world.make_alert({"viettel": numbers})  # approved; its fan-out job never ran
    assert jobs.reconcile()["fan_outs"] == 1
    ControlWorker(world.runtime).work(burst=True, logging_level="WARNING")
    _sent_once(world, alert_id, numbers)


def test_a_due_scheduled_fan_out_taken_by_a_control_worker_that_died_is_sent(
    make_world: Callable[..., World],
) -> None:
    """At a scheduled alert's time RQ's scheduler moves its fan-out job from the scheduled
    registry into the control queue; a control worker killed after taking it off the queue
    leaves the alert `scheduled`, its job in no queue and no registry. Reconcile must see it
    as lost, not waiting, and enqueue it (its time has passed)."""
    world = make_world(("viettel",), sim={"receipt_delay": 0.02})
    redis = world.runtime.redis
    numbers = world.numbers(60)
    due = datetime.now(UTC) - timedelta(seconds=1)
    alert_id = world.make_alert({"viettel": numbers}, status=AlertStatus.SCHEDULED, schedule_at=due)
    job_id = keys.fan_out_job_id(alert_id)
    control = Queue(keys.CONTROL_QUEUE, connection=redis)
    # Scheduled as the approval schedules it, then moved by RQ's own scheduler at its time.
    control.enqueue_at(
        due, keys.FAN_OUT_JOB, alert_id, job_id=job_id, job_timeout=keys.FAN_OUT_JOB_TIMEOUT
    )
    assert jobs.reconcile()["scheduled_fan_outs"] == 0  # waiting in the registry: left alone
    scheduler = RQScheduler([control], connection=redis)
    scheduler.prepare_registries([control.name])
    scheduler.enqueue_scheduled_jobs()
    assert control.get_job_ids() == [job_id] and job_id not in control.scheduled_job_registry
    assert redis.lpop(control.key) == job_id.encode()  # the dead control worker's last act
    report = jobs.reconcile()
    assert report["scheduled_fan_outs"] == 1, report
    assert control.get_job_ids() == [job_id]
    ControlWorker(world.runtime).work(burst=True, logging_level="WARNING")
    _sent_once(world, alert_id, numbers)


@pytest.mark.parametrize("dequeue", ["control worker", "lpop"])
def test_a_fan_out_taken_off_its_queue_by_a_control_worker_that_died_is_sent(
    make_world: Callable[..., World], dequeue: str
) -> None:
    """The fan-out's version of the lost batch: a control worker killed between taking the
    approved alert's fan-out job off its queue and marking it started leaves the record saying
    "queued" and the id in no queue. Reconcile must not take that record for a waiting job,
    or the alert stays approved, unsent, until it expires."""
    world = make_world(("viettel",), sim={"receipt_delay": 0.02})
    redis = world.runtime.redis
    numbers = world.numbers(60)
    alert_id = world.make_alert({"viettel": numbers})
    job_id = keys.fan_out_job_id(alert_id)
    control = Queue(keys.CONTROL_QUEUE, connection=redis)
    # Enqueued as the approval enqueues it.
    control.enqueue(keys.FAN_OUT_JOB, alert_id, job_id=job_id, job_timeout=keys.FAN_OUT_JOB_TIMEOUT)
    # What the dead worker did, and nothing more.
    if dequeue == "control worker":
        # RQ's own dequeue as ControlWorker does it: a worker of one queue on Redis 6.2 or
        # newer moves the id into the queue's intermediate list (LMOVE).
        taken = ControlWorker(world.runtime).dequeue_job_and_maintain_ttl(None)
        assert taken is not None and taken[0].id == job_id
    else:  # a worker of several queues, or Redis older than 6.2: LPOP
        assert redis.lpop(control.key) == job_id.encode()
    assert Job.fetch(job_id, connection=redis).get_status(refresh=True) == JobStatus.QUEUED
    assert job_id not in control.get_job_ids()
    report = jobs.reconcile()
    assert report["fan_outs"] == 1, report
    assert control.get_job_ids() == [job_id]
    ControlWorker(world.runtime).work(burst=True, logging_level="WARNING")
    assert Job.fetch(job_id, connection=redis).get_status(refresh=True) == JobStatus.FINISHED
    # Nothing left for RQ's maintenance to fail later as "stuck in intermediate queue".
    assert redis.llen(control.intermediate_queue_key) == 0
    _sent_once(world, alert_id, numbers)
