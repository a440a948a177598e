"""One way to build a Celery app for a `BrokerConfig`, used by the worker and the producer."""

from __future__ import annotations

import contextlib
import os
import string
import threading
import time
import uuid

from amqp.exceptions import AMQPError
from celery import Celery
from kombu.exceptions import ChannelError, KombuError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

from .kernel.config import BrokerConfig

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


# --- the embedded broker: kombu's filesystem transport, two fixes from the lab's side --------------
# (kombu 5.7.0, kombu/transport/filesystem.py; RabbitMQ and memory:// are not affected.)

# What kombu's EXCHANGE_NAME_RE (filesystem.py:165) allows in an exchange name, minus '_', which
# exchange_file_stem uses as its escape character.
_PLAIN = frozenset(string.ascii_letters + string.digits + ".-")


def exchange_file_stem(exchange: str) -> str:
    """`exchange` spelt only with characters kombu's filesystem transport accepts, one spelling per name.

    Letters, digits, '.' and '-' stand for themselves, so the lab's queue names without '+' and
    Celery's own exchanges (celeryev, celery.pidbox) keep their file; any other character becomes
    `_<hex code>_` ('gil.process+cleanup' -> 'gil.process_2b_cleanup', '_' -> '_5f_'), so two
    names never share a file.
    """
    return "".join(c if c in _PLAIN else f"_{ord(c):x}_" for c in exchange)


_stamp_lock = threading.Lock()
_last_stamp = 0


def next_stamp() -> int:
    """A nanosecond stamp of the monotonic clock, strictly greater than this process's previous one.

    time.monotonic is CLOCK_MONOTONIC on Linux: one clock for every process of the machine.
    """
    global _last_stamp
    with _stamp_lock:
        _last_stamp = max(time.monotonic_ns(), _last_stamp + 1)
        return _last_stamp


class FilesystemChannel(filesystem.Channel):
    """kombu's filesystem channel that takes every queue's exchange name and delivers in publish order."""

    def _exchange_file(self, exchange):
        # kombu keeps an exchange's bindings in `<control_folder>/<name>.exchange` and, so the name
        # cannot redirect that path, refuses any name outside [A-Za-z0-9._-] with "Invalid
        # exchange name" (filesystem.py:165, 196-206). Celery names a queue's exchange like the
        # queue, and the strategy queues hold a '+' (gil.process+cleanup.fork). The exchange keeps
        # its name; only its file is spelt safely, and kombu still checks that spelling.
        return super()._exchange_file(exchange_file_stem(exchange))

    def _put(self, queue, payload, **kwargs):
        # kombu names a message `<round(monotonic() * 1000)>_<uuid4>.<queue>.msg` (filesystem.py:
        # 264-265) and hands out the first of `sorted(os.listdir(...))` (:284-290): messages sent
        # within one millisecond (the producer's iterations) come out in uuid4, i.e. random, order,
        # and a millisecond count that gains a digit sorts before the shorter ones it follows.
        # Here the stamp is nanoseconds, strictly increasing, zero-padded to 20 digits (2**64), so
        # the name's sort is publish order; the rest of the name is kombu's, which _get, _size and
        # _purge match on (everything after the first '.' is `<queue>.msg`).
        name = f"{next_stamp():020d}_{uuid.uuid4()}.{queue}.msg"
        # Written under a name no queue matches, then renamed into place: a poller never moves
        # away a message that is still empty or half-written (kombu writes it in place).
        partial = os.path.join(self.data_folder_out, f".{name}.partial")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, os.path.join(self.data_folder_out, name))
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(partial)
            raise ChannelError(f"Cannot add file {name!r} to directory") from exc


class FilesystemTransport(filesystem.Transport):
    Channel = FilesystemChannel


# How make_celery selects it: kombu resolves a "module:Class" transport name (broker_transport).
FILESYSTEM_TRANSPORT = f"{__name__}:{FilesystemTransport.__name__}"


def make_celery(broker: BrokerConfig, main: str) -> Celery:
    broker.ensure_folders()
    celery = Celery(main, broker=broker.broker_url, backend=broker.result_backend)
    # Start-up waits in wait_for_broker (producer, and the worker's worker_init hook); this bounds
    # the worker's reconnects after a broker loss to about the same BROKER_CONNECT_SECONDS.
    retries = connection_retries(broker.connect_seconds)
    if broker.kind == "filesystem":
        # kombu's filesystem transport with the lab's fixes (FilesystemChannel); the URL keeps
        # its filesystem:// scheme, broker_transport takes precedence over it.
        celery.conf.broker_transport = FILESYSTEM_TRANSPORT
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
