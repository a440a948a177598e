"""Enqueue the iterations, collect one record per iteration before a deadline, then ask each
queue what the processes its calls left behind burned up to the end of the run."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from app.kernel import axes, defaults
from app.broker import BROKER_ERRORS, BrokerUnreachable, make_celery, wait_for_broker  # noqa: F401

from .config import ProducerConfig


def _strategy_of(queue: str) -> str | None:
    """The strategy a target queue implies (the lab's target queues are validated against the
    grammar); None for a queue outside it (`scripts/lab claims` sends to claims.<job>)."""
    spec = axes.parse_queue(queue)
    return spec.strategy if spec else None


@dataclass
class Collected:
    records: list[dict] = field(default_factory=list)
    missing: list[dict] = field(default_factory=list)


def task_options(cfg: ProducerConfig, queue: str, time_limits: bool | None = None) -> dict:
    """The Celery options sent with each task to `queue`: Celery's soft and hard time limits when
    the queue's strategy uses them (or `time_limits` says so, for a queue outside the grammar)."""
    if not (axes.STRATEGIES[_strategy_of(queue)].time_limits if time_limits is None else time_limits):
        return {}
    # Celery enforces these only in the prefork pool: soft -> SIGUSR1, hard -> kill.
    return {"soft_time_limit": cfg.duckdb_timeout, "time_limit": cfg.duckdb_timeout + defaults.CLEANUP_GRACE_SECONDS}


def enqueue(celery, cfg: ProducerConfig, say=print, *, task: str = defaults.TASK_NAME,
            time_limits: bool | None = None, options: dict | None = None) -> list[tuple[str, int, object]]:
    """Send every iteration to every target queue, interleaved so queues progress together.

    If the broker goes away while sending, the rest is not sent: those entries carry None
    instead of a result and `collect` reports them as missing. `task` and `time_limits` (see
    task_options) are for `scripts/lab claims`, which sends its own task to queues of its own;
    `options` (Celery's apply_async options, e.g. a soft limit alone) replace task_options'
    choice, for `scripts/lab pools`. Each result remembers when it was sent (`lab_sent_at`).
    """
    sent = []
    lost = None
    for iteration in range(1, cfg.iterations + 1):
        for queue in cfg.target_queues:
            if lost is not None:
                sent.append((queue, iteration, None))
                continue
            kwargs = {"iteration": iteration, "rows": cfg.duckdb_rows, "timeout": cfg.duckdb_timeout, "run_id": cfg.run_id}
            if cfg.query_seconds is not None:  # unset: the task's own default (the auto target)
                kwargs["query_seconds"] = cfg.query_seconds
            try:
                chosen = task_options(cfg, queue, time_limits) if options is None else options
                result = celery.send_task(task, kwargs=kwargs, queue=queue, **chosen)
                result.lab_sent_at = time.monotonic()
            except BROKER_ERRORS as exc:
                lost = exc
                say(f"[producer] broker lost while sending ({type(exc).__name__}: {exc}): the rest is not sent",
                    file=sys.stderr)
                result = None
            sent.append((queue, iteration, result))
    return sent


def _producer_record(cfg: ProducerConfig, queue: str, iteration: int, outcome: str, exception_type: str | None,
                     message: str) -> dict:
    """The record the producer writes itself for an iteration no worker reported on."""
    return {
        "run_id": cfg.run_id,
        "iteration": iteration,
        "queue": queue,
        "worker": queue,
        "strategy": _strategy_of(queue),
        "outcome": outcome,
        "exception_type": exception_type,
        "exception_message": message,
    }


def _failure_record(cfg: ProducerConfig, queue: str, iteration: int, result, outcome: str | None = None) -> dict:
    """A task that failed (or whose pool process was killed, e.g. by Celery's hard time limit).

    `outcome`: the record's outcome; None: killed for a killed pool process, else error."""
    exc = result.result
    name = type(exc).__name__ if isinstance(exc, BaseException) else str(result.state)
    if outcome is None:
        outcome = "killed" if name in ("TimeLimitExceeded", "WorkerLostError") else "error"
    return {**_producer_record(cfg, queue, iteration, outcome, name, str(exc)[:200]),
            "rows": cfg.duckdb_rows, "timeout": cfg.duckdb_timeout}


def _missing_record(cfg: ProducerConfig, queue: str, iteration: int, why: str) -> dict:
    """The record of an iteration whose result never came back."""
    return _producer_record(cfg, queue, iteration, "missing", None, why)


def progress(record: dict) -> str:
    """The worker's own article line for an iteration, where people look: the producer's output.

    `iter=1 outcome=timeout children=3 zombies=1` (the snapshot right after the call returned),
    then what was left once settled; a record no worker measured has the outcome only."""
    line = f"iter={record['iteration']} outcome={record.get('outcome')}"
    if "immediate" not in record:
        return line
    now, settled = record["immediate"], record["settled"]
    return (f"{line} children={now['children']} zombies={now['zombies']} "
            f"(settled: children={settled['children']} zombies={settled['zombies']})")


def collect(cfg: ProducerConfig, sent, say=print, *, budget: float | None = None,
            failure_outcome: str | None = None) -> Collected:
    """Wait for every result; whatever is not back by the deadline is reported as missing.

    `budget`: seconds to wait for all of them (None: the iteration budget per queue's share plus
    RESULT_GRACE_SECONDS); `failure_outcome`: the outcome of a task that failed (None: killed or
    error, see _failure_record; `scripts/lab claims` says failed)."""
    per_queue = {queue: sum(1 for q, _, _ in sent if q == queue) for queue in cfg.target_queues}
    if budget is None:
        budget = cfg.iteration_budget() * max(per_queue.values(), default=0) + cfg.result_grace
    deadline = time.monotonic() + budget
    pending = [s for s in sent if s[2] is not None]
    done = {queue: 0 for queue in cfg.target_queues}
    out = Collected()
    lost = False  # the broker connection is down: results published meanwhile may be gone
    while pending and time.monotonic() < deadline:
        still = []
        for index, (queue, iteration, result) in enumerate(pending):
            try:
                ready = result.ready()
                if lost:
                    say("[producer] broker connection back")
                    lost = False
                if not ready:
                    still.append((queue, iteration, result))
                    continue
                if result.successful():
                    record = result.get(disable_sync_subtasks=False, timeout=10)
                else:
                    record = _failure_record(cfg, queue, iteration, result, failure_outcome)
                    sent_at = getattr(result, "lab_sent_at", None)  # within one poll (0.1 s) of the failure
                    record["seen_after"] = None if sent_at is None else round(time.monotonic() - sent_at, 3)
            except BROKER_ERRORS as exc:
                # Each failed poll is bounded (broker_connection_timeout); keep the rest for the
                # next pass and never wait past the deadline.
                still.extend(pending[index:])
                if not lost:
                    say(
                        f"[producer] broker connection lost ({type(exc).__name__}: {exc}); still waiting for "
                        f"{len(still)} result(s), {max(0.0, deadline - time.monotonic()):.0f}s left",
                        file=sys.stderr,
                    )
                lost = True
                time.sleep(0.5)
                break
            out.records.append(record)
            done[queue] += 1
            say(f"[producer] {queue}: {done[queue]}/{per_queue[queue]} {progress(record)}")
        pending = still
        if pending:
            time.sleep(0.1)
    unsent = [(q, i) for q, i, r in sent if r is None]
    for queue, iteration, _ in pending:
        why = f"no result within {budget:.0f}s (is a worker consuming '{queue}'?)"
        out.missing.append(_missing_record(cfg, queue, iteration, why))
        say(f"[producer] {queue}: iter={iteration} missing after {budget:.0f}s", file=sys.stderr)
    for queue, iteration in unsent:
        out.missing.append(_missing_record(cfg, queue, iteration, "not sent: the broker was lost while enqueuing"))
        say(f"[producer] {queue}: iter={iteration} missing (never sent)", file=sys.stderr)
    return out


# --- the end of the run: what the leftovers burned ----------------------------------------------


def _unanswered(record: dict, why: str) -> None:
    record.update({"cpu_to_end": None, "running_at_end": None, "ended_after": None, "followed_for": None,
                   "follow_error": why})
    for item in record["leftovers"]:
        item.update({"cpu_to_end": None, "running_at_end": None, "ended_after": None, "gone_after": None})


def merge_leftovers(records: list[dict], answers: dict[str, dict | str]) -> None:
    """Put each queue's answer to tasks.leftovers into its records (in place).

    `answers`: per queue, the task's result, or why there is none. Per leftover: cpu_to_end
    (CPU seconds from control coming back until it ended, or until the run ended), running_at_end,
    ended_after and gone_after (seconds after the deadline it exited / was reaped; None: not by the
    end). Per record: cpu_to_end = the worker's own threads' CPU in the settle window plus its
    leftovers' cpu_to_end, running_at_end (how many still ran), ended_after (when the last one
    exited; None while one still runs, or with none), followed_for (the run's end, after the deadline).
    """
    for record in records:
        if "leftovers" not in record:
            continue  # a record the producer wrote itself, or a worker from before following
        cpu_in_worker = (record.get("quiet") or {}).get("cpu_in_worker") or 0.0
        if not record["leftovers"]:
            # nothing to follow (an in-process strategy, or a call that finished in time): the CPU
            # after the deadline is the worker's own, all of it inside the settle window
            record.update({"cpu_to_end": round(cpu_in_worker, 3), "running_at_end": 0, "ended_after": None,
                           "followed_for": None, "follow_error": None})
            continue
        answer = answers.get(record.get("queue"))
        if not isinstance(answer, dict):
            _unanswered(record, answer or "not asked")
            continue
        if answer.get("pid") != record.get("pid"):
            _unanswered(record, f"measured by worker pid {record.get('pid')}, answered by pid {answer.get('pid')} "
                                "(the worker was replaced during the run)")
            continue
        followed = {(f["iteration"], f["pid"], f["start_time"]): f for f in answer.get("leftovers") or []}
        ends, running, followed_for, cpu = [], 0, None, cpu_in_worker
        lost = 0
        for item in record["leftovers"]:
            got = followed.get((record["iteration"], item["pid"], item["start_time"]))
            if got is None:
                lost += 1
                item.update({"cpu_to_end": None, "running_at_end": None, "ended_after": None, "gone_after": None})
                continue
            item.update({k: got[k] for k in ("cpu_to_end", "running_at_end", "ended_after", "gone_after",
                                             "state_at_end")})
            cpu += got["cpu_to_end"]
            running += bool(got["running_at_end"])
            ends.append(got["ended_after"])
            followed_for = got["followed_for"]
        if lost:
            _unanswered(record, f"{lost} leftover(s) unknown to the worker's follower")
            continue
        record.update({
            "cpu_to_end": round(cpu, 3),
            "running_at_end": running,
            "ended_after": max(ends) if ends and not running else None,
            "followed_for": followed_for,
            "follow_error": None,
        })


def ask_leftovers(celery, cfg: ProducerConfig, records: list[dict], say=print) -> dict[str, dict | str]:
    """Send tasks.leftovers(run_id) to every queue whose records followed something; wait for the answers.

    A queue's worker runs it after its last iteration (one queue, FIFO). Bounded: whatever is not
    back within LEFTOVERS_REPLY_SECONDS is said to be unanswered, never waited for longer."""
    queues = [q for q in cfg.target_queues if any(r.get("queue") == q and r.get("leftovers") for r in records)]
    answers: dict[str, dict | str] = {}
    pending = {}
    for queue in queues:
        try:
            pending[queue] = celery.send_task(defaults.LEFTOVERS_TASK_NAME, kwargs={"run_id": cfg.run_id}, queue=queue)
        except BROKER_ERRORS as exc:
            answers[queue] = f"not sent: broker error ({type(exc).__name__}: {exc})"
    deadline = time.monotonic() + defaults.LEFTOVERS_REPLY_SECONDS
    while pending and time.monotonic() < deadline:
        for queue, result in list(pending.items()):
            try:
                if not result.ready():
                    continue
                answers[queue] = (result.get(disable_sync_subtasks=False, timeout=10) if result.successful()
                                  else f"the worker failed it: {result.result!r}"[:200])
            except BROKER_ERRORS as exc:
                answers[queue] = f"broker error while waiting ({type(exc).__name__}: {exc})"
            del pending[queue]
        if pending:
            time.sleep(0.05)
    for queue in pending:
        answers[queue] = f"no answer within {defaults.LEFTOVERS_REPLY_SECONDS:g}s"
    return answers


def leftover_line(queue: str, records: list[dict]) -> str | None:
    """`[producer] gil: leftovers to the end: 3 followed, 6.12 CPU s after the deadlines, 2 still running`."""
    recs = [r for r in records if r.get("queue") == queue and r.get("leftovers")]
    if not recs:
        return None
    count = sum(len(r["leftovers"]) for r in recs)
    errors = {r["follow_error"] for r in recs if r.get("follow_error")}
    if errors:
        return f"[producer] {queue}: leftovers to the end: {count} followed, not answered: {'; '.join(sorted(errors))}"
    cpu = sum(r["cpu_to_end"] for r in recs)
    running = sum(r["running_at_end"] for r in recs)
    return (f"[producer] {queue}: leftovers to the end: {count} followed, {cpu:.2f} CPU s after the deadlines, "
            f"{running} still running at the end")


def run(cfg: ProducerConfig, say=print) -> Collected:
    celery = make_celery(cfg.broker, main="gil-timeout-lab-producer")
    wait_for_broker(celery, cfg.broker.connect_seconds, say=say)
    sent = enqueue(celery, cfg, say=say)
    say(
        f"[producer] run {cfg.run_id}: sent {sum(r is not None for _, _, r in sent)} task(s) to {', '.join(cfg.target_queues)} "
        f"({cfg.workload()}, timeout={cfg.duckdb_timeout}s) via {cfg.broker.kind}"
    )
    try:
        collected = collect(cfg, sent, say=say)
        # The run ends here: every iteration is in. What its leftovers burned up to now.
        merge_leftovers(collected.records, ask_leftovers(celery, cfg, collected.records, say=say))
        for queue in cfg.target_queues:
            line = leftover_line(queue, collected.records)
            if line:
                say(line)
        return collected
    finally:
        drop_reply_queue(celery)


def drop_reply_queue(celery) -> None:
    """Delete the rpc:// reply queue this producer (or producer/send.py) polled for results.

    It is auto-delete, but that only fires when a consumer goes away, and it was only polled
    (basic.get): it would stay on the broker, empty, for result_expires (a day) after every run.
    """
    if not str(celery.conf.result_backend).startswith("rpc://"):
        return
    try:
        with celery.connection_for_write() as conn:
            celery.backend.binding(conn.default_channel).delete()
    except BROKER_ERRORS:
        pass  # no broker to delete it on: nothing more to do here
