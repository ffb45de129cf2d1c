"""The worker processes: their own wait for a job still runs RQ's maintenance while idle."""

from __future__ import annotations

import threading
import time

import pytest
from rq import Queue
from rq.job import Job
from rq.registry import FinishedJobRegistry

from broadcast import keys
from delivery.conftest import World
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

    def stale_entry_while_idle() -> None:
        # After the worker's start (whose maintenance already ran), while it waits for jobs:
        # an entry that expires in a second, which only RQ's maintenance removes.
        time.sleep(1.5)
        job = Job.create(keys.RECONCILE_JOB, connection=conn)
        job.save()
        finished.add(job, ttl=1)
        added.set()

    thread = threading.Thread(target=stale_entry_while_idle)
    thread.start()
    try:
        worker.work(max_idle_time=6, logging_level="WARNING")  # no job comes: idle 6 s
    finally:
        thread.join()
    assert added.is_set()
    assert conn.zcard(finished.key) == 0
