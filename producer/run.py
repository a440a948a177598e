"""Enqueue the iterations, then collect one record per iteration before a deadline."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from app import defaults
from app.broker import make_celery

from .config import ProducerConfig


class BrokerUnreachable(RuntimeError):
    pass


def _strategy_of(queue: str) -> str:
    if queue in defaults.ARTICLE_WORKERS:
        return defaults.ARTICLE_WORKERS[queue][1]
    return queue.split(".", 1)[1]


def wait_for_broker(celery, seconds: float, say=print) -> None:
    """Connect within `seconds`, counting down once a second; raise BrokerUnreachable after."""
    deadline = time.monotonic() + seconds
    last_error: Exception | None = None
    while True:
        try:
            with celery.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
            return
        except Exception as exc:  # kombu raises several OSError/ConnectionError flavours
            last_error = exc
        left = deadline - time.monotonic()
        if left <= 0:
            raise BrokerUnreachable(f"{type(last_error).__name__}: {last_error}")
        say(f"[producer] broker not reachable yet, retrying for {left:.0f}s more ...")
        time.sleep(min(1.0, max(0.0, left)))


@dataclass
class Collected:
    records: list[dict] = field(default_factory=list)
    missing: list[dict] = field(default_factory=list)


def enqueue(celery, cfg: ProducerConfig) -> list[tuple[str, int, object]]:
    """Send every iteration to every target queue, interleaved so queues progress together."""
    sent = []
    for iteration in range(1, cfg.iterations + 1):
        for queue in cfg.target_queues:
            options = {}
            if _strategy_of(queue) == "prefork-time-limit":
                # Celery enforces these only in the prefork pool: soft -> SIGUSR1, hard -> kill.
                options = {
                    "soft_time_limit": cfg.duckdb_timeout,
                    "time_limit": cfg.duckdb_timeout + defaults.CLEANUP_GRACE_SECONDS,
                }
            result = celery.send_task(
                defaults.TASK_NAME,
                kwargs={
                    "iteration": iteration,
                    "rows": cfg.duckdb_rows,
                    "timeout": cfg.duckdb_timeout,
                    "run_id": cfg.run_id,
                },
                queue=queue,
                **options,
            )
            sent.append((queue, iteration, result))
    return sent


def _failure_record(cfg: ProducerConfig, queue: str, iteration: int, result) -> dict:
    exc = result.result
    name = type(exc).__name__ if isinstance(exc, BaseException) else str(result.state)
    outcome = "killed" if name in ("TimeLimitExceeded", "WorkerLostError") else "error"
    return {
        "run_id": cfg.run_id,
        "iteration": iteration,
        "queue": queue,
        "worker": queue,
        "strategy": _strategy_of(queue),
        "outcome": outcome,
        "exception_type": name,
        "exception_message": str(exc)[:200],
        "rows": cfg.duckdb_rows,
        "timeout": cfg.duckdb_timeout,
    }


def collect(cfg: ProducerConfig, sent, say=print) -> Collected:
    """Wait for every result; whatever is not back by the deadline is reported as missing."""
    per_queue = {queue: sum(1 for q, _, _ in sent if q == queue) for queue in cfg.target_queues}
    budget = cfg.iteration_budget() * max(per_queue.values(), default=0) + cfg.result_grace
    deadline = time.monotonic() + budget
    pending = list(sent)
    done = {queue: 0 for queue in cfg.target_queues}
    out = Collected()
    while pending and time.monotonic() < deadline:
        still = []
        for queue, iteration, result in pending:
            if not result.ready():
                still.append((queue, iteration, result))
                continue
            if result.successful():
                out.records.append(result.get(disable_sync_subtasks=False))
            else:
                out.records.append(_failure_record(cfg, queue, iteration, result))
            done[queue] += 1
            record = out.records[-1]
            say(
                f"[producer] {queue}: {done[queue]}/{per_queue[queue]} iter={iteration} "
                f"outcome={record.get('outcome')}"
            )
        pending = still
        if pending:
            time.sleep(0.1)
    for queue, iteration, result in pending:
        out.missing.append(
            {
                "run_id": cfg.run_id,
                "iteration": iteration,
                "queue": queue,
                "worker": queue,
                "strategy": _strategy_of(queue),
                "outcome": "missing",
                "exception_type": None,
                "exception_message": f"no result within {budget:.0f}s (is a worker consuming '{queue}'?)",
            }
        )
        say(f"[producer] {queue}: iter={iteration} missing after {budget:.0f}s", file=sys.stderr)
    return out


def run(cfg: ProducerConfig, say=print) -> Collected:
    celery = make_celery(cfg.broker, main="gil-timeout-lab-producer")
    wait_for_broker(celery, cfg.broker.connect_seconds, say=say)
    sent = enqueue(celery, cfg)
    say(
        f"[producer] run {cfg.run_id}: sent {len(sent)} task(s) to {', '.join(cfg.target_queues)} "
        f"(rows={cfg.duckdb_rows}, timeout={cfg.duckdb_timeout}s) via {cfg.broker.kind}"
    )
    return collect(cfg, sent, say=say)
