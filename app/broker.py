"""One way to build a Celery app for a `BrokerConfig`, used by the worker and the producer."""

from __future__ import annotations

import time

from amqp.exceptions import AMQPError
from celery import Celery
from kombu.exceptions import KombuError

from .config import BrokerConfig

# What a lost or unreachable broker raises from kombu/py-amqp calls (connect, publish, poll).
BROKER_ERRORS = (OSError, KombuError, AMQPError)


class BrokerUnreachable(RuntimeError):
    pass


def connection_retries(seconds: float) -> int:
    """Celery's broker_connection_max_retries for a reconnect window of about `seconds`.

    The worker's consumer sleeps 2, 4, 6, ... (at most 30) seconds between attempts (kombu's
    defaults, not configurable through Celery), so N retries wait 2+4+...: the smallest N whose
    sleeps cover `seconds`, at least 1.
    """
    retries, waited, interval = 1, 2.0, 2.0
    while waited < seconds:
        interval = min(interval + 2.0, 30.0)
        waited += interval
        retries += 1
    return retries


def wait_for_broker(celery, seconds: float, say=print, who: str = "producer") -> None:
    """Connect within `seconds`, one attempt a second with a countdown; raise BrokerUnreachable after."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with celery.connection_for_write() as conn:
                conn.ensure_connection(max_retries=0)  # one attempt (broker_connection_timeout)
            return
        except BROKER_ERRORS as exc:
            last_error = exc
        left = deadline - time.monotonic()
        if left <= 0:
            raise BrokerUnreachable(f"{type(last_error).__name__}: {last_error}")
        say(f"[{who}] broker not reachable yet, retrying for {left:.0f}s more ...")
        time.sleep(min(1.0, max(0.0, left)))


def make_celery(broker: BrokerConfig, main: str) -> Celery:
    broker.ensure_folders()
    celery = Celery(main, broker=broker.broker_url, backend=broker.result_backend)
    # Start-up waits in wait_for_broker (producer, and the worker's worker_init hook); this bounds
    # the worker's reconnects after a broker loss to about the same BROKER_CONNECT_SECONDS.
    retries = connection_retries(broker.connect_seconds)
    celery.conf.update(
        broker_transport_options=broker.transport_options,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=retries,
        broker_connection_timeout=2.0,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # One message at a time: an iteration is a measurement, not throughput.
        worker_prefetch_multiplier=1,
        # Early ack (Celery's default), chosen so a task is not re-run because it failed. What a
        # worker killed mid-task does is the broker's and the pool's doing (docs/reliability.md):
        # with the solo pool on RabbitMQ the ack only leaves after the task body (Celery queues
        # it on the event loop the task blocks), so the iteration is re-delivered to the next
        # worker; on the filesystem broker it is lost and the producer reports it missing.
        task_acks_late=False,
        task_track_started=True,
        result_extended=True,
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=True,
        broker_heartbeat=10 if broker.kind == "rabbitmq" else 0,
    )
    return celery
