"""What the factory builds once and every view reaches: settings, storage, Redis, queues."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import redis
from flask import current_app
from rq import Queue

from broadcast import keys
from broadcast.db import Database
from broadcast.sessions import SessionStore
from broadcast.settings import Settings
from subscriber_import.numbers import NumberPlan


@dataclass
class Services:
    """The composition root's handles, kept in app.extensions["loa"]."""

    settings: Settings
    database: Database
    redis: redis.Redis
    queues: dict[str, Queue]
    sessions: SessionStore
    # Request threads an upload may hold while it waits for its import (web.upload_waiters).
    upload_waiters: threading.Semaphore
    # The number plan (ranges and conversions files) every entered number is normalised on.
    number_plan: NumberPlan

    @property
    def control_queue(self) -> Queue:
        return self.queues[keys.CONTROL_QUEUE]

    @property
    def import_queue(self) -> Queue:
        return self.queues[keys.IMPORT_QUEUE]

    def enqueue(self, dotted_path: str, *args: object, **kwargs: object) -> str:
        """Enqueue a job by dotted path (the web never imports workers); returns the job id."""
        job = self.control_queue.enqueue(dotted_path, *args, **kwargs)
        return job.id


def services() -> Services:
    return current_app.extensions["loa"]
