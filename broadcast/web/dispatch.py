"""After a decision commits, tell the workers: the control key and the job by dotted path.

The order matters: the database transition commits first (the truth), then Redis is told; a
lost Redis write is repaired by the reconcile job from the database status.
"""

from __future__ import annotations

from datetime import datetime

from broadcast import keys, live
from broadcast.models import AlertStatus
from broadcast.web.context import Services


def after_transition(
    svc: Services, alert_id: int, status: AlertStatus, *, schedule_at: datetime | None = None
) -> str | None:
    """Apply a committed status to Redis and the queues; returns the enqueued job id, if any."""
    status = AlertStatus(status)
    control = live.CONTROL_FOR_STATUS.get(status)
    if control:
        live.set_control(svc.redis, alert_id, control)
    if status == AlertStatus.APPROVED:
        return svc.enqueue(
            keys.FAN_OUT_JOB,
            alert_id,
            job_id=keys.fan_out_job_id(alert_id),
            job_timeout=keys.FAN_OUT_JOB_TIMEOUT,
        )
    if status == AlertStatus.SCHEDULED and schedule_at is not None:
        live.set_control(svc.redis, alert_id, "sending")
        job = svc.control_queue.enqueue_at(
            schedule_at,
            keys.FAN_OUT_JOB,
            alert_id,
            job_id=keys.fan_out_job_id(alert_id),
            job_timeout=keys.FAN_OUT_JOB_TIMEOUT,
        )
        return job.id
    return None


def resumed(svc: Services, alert_id: int) -> str:
    live.set_control(svc.redis, alert_id, "sending")
    return svc.enqueue(keys.RESUME_JOB, alert_id)
