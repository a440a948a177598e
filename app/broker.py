"""One way to build a Celery app for a `BrokerConfig`, used by the worker and the producer."""

from __future__ import annotations

from celery import Celery

from .config import BrokerConfig


def make_celery(broker: BrokerConfig, main: str) -> Celery:
    broker.ensure_folders()
    celery = Celery(main, broker=broker.broker_url, backend=broker.result_backend)
    retries = max(1, int(broker.connect_seconds))  # about one attempt a second
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
        # Early ack (Celery's default), chosen on purpose: a worker killed mid-task must not
        # silently repeat a measurement on redelivery. The producer reports it as missing.
        task_acks_late=False,
        task_track_started=True,
        result_extended=True,
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=True,
        broker_heartbeat=10 if broker.kind == "rabbitmq" else 0,
    )
    return celery
