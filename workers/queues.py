"""Send queues: putting batch jobs (ids only) on a carrier's RQ queues.

Shared by the jobs (fan-out, resume, reconcile) and the sender (a batch that yields to an
emergency or stops re-queues itself at the front).
"""

from __future__ import annotations

from collections.abc import Iterable

from rq import Queue

from broadcast import keys
from broadcast.models import AlertCategory
from workers.runtime import Runtime

SEND_JOB_TIMEOUT = 6 * 3600  # a batch paced at a few messages per second can take long


def priority_of(category: str | AlertCategory) -> str:
    return "emergency" if AlertCategory(category) == AlertCategory.EMERGENCY else "normal"


def enqueue_batches(
    rt: Runtime,
    alert_id: int,
    priority: str,
    batches: Iterable[tuple[str, int]],
    *,
    at_front: bool = False,
) -> int:
    """Enqueue send jobs (ids only) on each carrier's queue, marking them as waiting."""
    by_carrier: dict[str, list[int]] = {}
    for code, batch_no in batches:
        by_carrier.setdefault(code, []).append(batch_no)
    count = 0
    for code, numbers in by_carrier.items():
        queue = Queue(keys.send_queue(code, priority), connection=rt.redis)
        pipe = rt.redis.pipeline()
        datas = [
            Queue.prepare_data(
                keys.SEND_BATCH_JOB,
                args=(alert_id, code, n),
                timeout=SEND_JOB_TIMEOUT,
                result_ttl=0,
                failure_ttl=24 * 3600,
                at_front=at_front,
            )
            for n in numbers
        ]
        enqueued = []
        for start in range(0, len(datas), 1000):
            enqueued += queue.enqueue_many(datas[start : start + 1000], pipeline=pipe)
        pipe.hset(
            keys.alert_batches_key(alert_id),
            mapping={f"{code}:{n}": job.id for n, job in zip(numbers, enqueued, strict=True)},
        )
        pipe.execute()
        count += len(numbers)
    return count
