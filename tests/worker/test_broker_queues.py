"""Every part of the lab's queue names goes through every broker the lab offers, in order.

The producer's and the worker's Celery apps come from `app.broker.make_celery`, as in a run:
a task the producer sends to a queue must reach a consumer set up like `celery worker -Q
<queue>` (app/celery.py), on RabbitMQ, on kombu's filesystem transport (the embedded broker
a machine without rabbitmq-server gets) and on `memory://`. The filesystem transport, as kombu
5.7.0 ships it, refuses exchange names with a '+' and hands out messages sent within one
millisecond in random order; app/broker.py's FilesystemChannel says why and fixes both.
"""

from __future__ import annotations

import contextlib

import pytest

import labtest
from app.kernel import axes, defaults
from app.broker import FILESYSTEM_TRANSPORT, exchange_file_stem, make_celery
from app.kernel.config import BrokerConfig
from producer.run import drop_reply_queue

BROKERS = (pytest.param("rabbitmq", marks=pytest.mark.rabbitmq), "filesystem", "memory")


# Module scope: set up before the function-scoped leftover check (conftest.py), which would
# otherwise count the session's RabbitMQ node, started on first use, as this test's leftover.
@pytest.fixture(scope="module", params=BROKERS)
def broker(request, tmp_path_factory) -> BrokerConfig:
    """The lab's broker settings for each broker it offers (RabbitMQ: the session's private node)."""
    if request.param == "rabbitmq":
        url = request.getfixturevalue("rabbitmq").url
    elif request.param == "filesystem":
        url = f"{defaults.FILESYSTEM_SCHEME}{tmp_path_factory.mktemp('filesystem-broker')}"
    else:
        url = "memory://"
    return BrokerConfig.from_env({"BROKER_URL": url})


@contextlib.contextmanager
def lab_apps(broker: BrokerConfig, queue: str):
    """The producer's Celery app, and a worker's for `queue` with its consumer declared, as in a run.

    Like `celery -A app worker -Q <queue>`: the queue is the app's default queue
    (app/celery.py) and the one selected to consume from (-Q). The worker declares it
    first, as the lab starts workers before the producer. On the way out the queue, its exchange
    and the producer's rpc:// reply queue are deleted, so a shared broker is left as found.
    """
    worker = make_celery(broker, main="gil-timeout-lab")
    worker.conf.task_default_queue = queue
    worker.amqp.queues.select([queue])
    producer = make_celery(broker, main="gil-timeout-lab-producer")
    conn = worker.connection_for_read()
    consumer = worker.amqp.TaskConsumer(conn.default_channel)
    consumer.qos(prefetch_count=1)  # worker_prefetch_multiplier=1 on the solo pool
    try:
        with consumer:  # declares the exchange, the queue and the binding, then consumes
            yield producer, conn, consumer
    finally:
        for declared in consumer.queues:
            declared.bind(conn.default_channel).delete()
            declared.exchange.bind(conn.default_channel).delete()
        drop_reply_queue(producer)
        conn.close()
        producer.close()
        worker.close()


def send(producer, queue: str, iteration: int) -> None:
    """Send one iteration of the lab's task to `queue`, as the producer does (producer/run.py)."""
    producer.send_task(defaults.TASK_NAME, kwargs={"iteration": iteration}, queue=queue)


def receive(conn, consumer, count: int, seconds: float = 10.0) -> list:
    """The next `count` messages `consumer` gets, acked as Celery acks early; fail after `seconds`."""
    got = []

    def on_message(body, message):
        message.ack()
        got.append(message)

    consumer.callbacks = [on_message]
    for _ in range(count):
        before = len(got)
        with contextlib.suppress(TimeoutError):
            conn.drain_events(timeout=seconds)
        assert len(got) > before, f"no message within {seconds}s after {len(got)} of {count}"
    return got


def iteration_of(message) -> int:
    """The iteration a task message carries (Celery's protocol 2 body: args, kwargs, embed)."""
    _args, kwargs, _embed = message.decode()
    return kwargs["iteration"]


# What a broker does with a queue depends on its name's characters and length, not on its cell: a few names
# that spell every token of the grammar (test_axes.py checks that they do) stand for all of them.
@pytest.mark.parametrize("queue", labtest.covering_queues())
def test_every_token_of_the_grammar_reaches_its_worker_on_every_broker(broker, queue):
    """A task the producer's app sends to `queue` reaches a consumer of `queue` set up as a worker sets it up."""
    with lab_apps(broker, queue) as (producer, conn, consumer):
        (declared,) = consumer.queues
        assert (declared.name, declared.exchange.name, declared.routing_key) == (queue, queue, queue)

        send(producer, queue, 1)
        (message,) = receive(conn, consumer, 1)

    assert message.headers["task"] == defaults.TASK_NAME
    assert message.delivery_info["routing_key"] == queue
    assert iteration_of(message) == 1


def test_filesystem_broker_hands_out_each_queue_in_publish_order(tmp_path):
    """Iterations sent interleaved over two queues, as the producer sends them, come back from each queue in order."""
    broker = BrokerConfig.from_env({"BROKER_URL": f"{defaults.FILESYSTEM_SCHEME}{tmp_path / 'broker'}"})
    queues = ("gil-clean", "gil")
    # Sent back to back, several fall within one millisecond, which kombu's own message names
    # hand out in random order: with its transport this failed on every try here.
    iterations = range(1, 101)
    with lab_apps(broker, queues[0]) as (producer, conn, consumer):
        for iteration in iterations:
            for queue in queues:
                send(producer, queue, iteration)
        got = receive(conn, consumer, len(iterations))
    assert [iteration_of(m) for m in got] == list(iterations)


def test_only_the_filesystem_broker_gets_the_labs_transport(tmp_path):
    """make_celery selects the lab's filesystem transport for filesystem:// and leaves RabbitMQ and memory:// on kombu's own."""
    urls = {
        f"{defaults.FILESYSTEM_SCHEME}{tmp_path}": FILESYSTEM_TRANSPORT,
        defaults.BROKER_URL: None,
        "memory://": None,
    }
    for url, transport in urls.items():
        celery = make_celery(BrokerConfig.from_env({"BROKER_URL": url}), main="gil-timeout-lab")
        assert celery.conf.broker_transport == transport, url


def test_exchange_file_stem_keeps_accepted_names_and_never_merges_two():
    """Names kombu accepts keep their file name, the others get one of kombu's characters only, and no two share one."""
    accepted = [q for q in axes.KNOWN_QUEUES if "+" not in q] + ["celeryev", "celery.pidbox", ""]
    assert [exchange_file_stem(name) for name in accepted] == accepted
    assert exchange_file_stem("gil.process+cleanup.fork") == "gil.process_2b_cleanup.fork"
    tricky = ["a+b", "a_2b_b", "a_b", "a_5f_b", "a b", "a/b", "a..b"]
    names = list(axes.KNOWN_QUEUES) + tricky
    stems = {exchange_file_stem(name) for name in names}
    assert len(stems) == len(names)
    assert all(set(stem) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") for stem in stems)


@pytest.mark.slow
def test_quick_runs_a_plus_queue_in_order_on_the_embedded_broker(tmp_path):
    """`scripts/lab quick` on the filesystem broker runs a '+' strategy queue's worker, iterations in order."""
    queue = "gil.process+cleanup"
    env = labtest.base_env(tmp_path, LAB_BROKER="filesystem", TARGET_QUEUES=queue, ITERATIONS="2", DUCKDB_TIMEOUT="0.3")

    done = labtest.lab("quick", env=env)

    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = labtest.only_run(tmp_path / "results")
    recs = sorted(labtest.records(run_dir), key=lambda r: r["iteration"])
    assert [(r["queue"], r["iteration"], r["outcome"]) for r in recs] == [(queue, 1, "timeout"), (queue, 2, "timeout")]
    log = labtest.worker_log(run_dir, queue)  # the solo worker logs each iteration as it runs it
    assert [int(n) for n, *_ in labtest.ITER_LINE.findall(log)] == [1, 2], log
    assert [remaining for *_, remaining in labtest.CLEANUP_LINE.findall(log)] == ["0", "0"], log
    assert {r["broker"] for r in recs} == {"filesystem"}
