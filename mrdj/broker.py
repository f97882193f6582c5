"""Keeps a Celery worker alive when Redis goes away while tasks are unacknowledged.

When the connection to Redis drops, Celery closes the channel and reconnects. But the
channel's unacknowledged tasks still reach it: the close restores them, and a task that
finishes after the reconnection acknowledges itself, both through the closed connection,
and kombu's Redis transport then fails with an AttributeError ("'NoneType' object has no
attribute 'hostname'" or "'client'"). Celery takes that for an unrecoverable error and
the worker exits for good (a long-standing kombu bug, seen here in 1 of 6 ten-second
Redis outages, and in every run of bench/chaos.py under load).

Here the closed connection says so with a connection error instead, which Celery and
kombu already handle (log, skip, reconnect). Nothing is lost by skipping: the message
stays in Redis's unacknowledged set (handed on after the visibility timeout), and the
job it would drain is a row in the database that the reconciler hands on in seconds.
"""

from __future__ import annotations

import contextlib
import logging

import redis
from kombu.transport import redis as kombu_redis

log = logging.getLogger(__name__)


class Channel(kombu_redis.Channel):
    @contextlib.contextmanager
    def conn_or_acquire(self, client=None):
        if client is None and getattr(self.connection, "client", None) is None:
            log.warning(
                "broker connection already closed: a task's acknowledgement or restore is skipped; "
                "its message stays in Redis and the reconciler hands its jobs on"
            )
            raise redis.ConnectionError("the broker connection is closed")
        with super().conn_or_acquire(client) as acquired:
            yield acquired


class Transport(kombu_redis.Transport):
    Channel = Channel
