"""The worker processes: their own wait for a job still runs RQ's maintenance while idle."""

from __future__ import annotations

import threading

import pytest
from rq import Queue
from rq.job import Job
from rq.registry import FinishedJobRegistry

from broadcast import keys
from delivery.conftest import World
from delivery.helpers import wait_for
from workers.processes import ControlWorker, GracefulWorker, SenderWorker
from workers.sender import sender_for


@pytest.mark.parametrize("kind", ["control", "sender"])
def test_an_idle_worker_still_cleans_rq_registries(make_world, kind: str) -> None:
    world: World = make_world(("viettel",))
    conn = world.runtime.redis
    worker: GracefulWorker
    if kind == "control":
        worker = ControlWorker(world.runtime, maintenance_interval=1)
        queue_name = keys.CONTROL_QUEUE
    else:
        worker = SenderWorker(sender_for(world.runtime, "viettel"), maintenance_interval=1)
        queue_name = keys.send_queue("viettel", "normal")
    finished = FinishedJobRegistry(queue=Queue(queue_name, connection=conn))
    added = threading.Event()
    cleaned = threading.Event()

    def stale_entry_while_idle() -> None:
        try:
            # After the worker's start (whose maintenance already ran), while it waits for
            # jobs: an entry that expires in a second, which only RQ's maintenance removes.
            if not wait_for(lambda: worker.last_cleaned_at is not None, 30):
                return
            job = Job.create(keys.RECONCILE_JOB, connection=conn)
            job.save()
            finished.add(job, ttl=1)
            added.set()
            # Seen gone while the worker still idles: its stop is asked for only after.
            if wait_for(lambda: conn.zcard(finished.key) == 0, 20, 0.05):
                cleaned.set()
        finally:
            worker.stop()

    thread = threading.Thread(target=stale_entry_while_idle)
    thread.start()
    try:
        # No job comes: the worker idles until the thread above asks it to stop (the idle
        # limit only bounds a broken run).
        worker.work(max_idle_time=60, logging_level="WARNING")
    finally:
        thread.join()
    assert added.is_set()
    assert cleaned.is_set()
    assert conn.zcard(finished.key) == 0
