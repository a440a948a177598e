"""The per-queue summary table the producer prints and the report embeds."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Iterable

from app.kernel import axes, tables

COLUMNS = (
    ("queue", "queue"),
    ("build", "build"),
    ("py", "python"),
    ("gil", "GIL on"),
    ("start", "start"),
    ("strategy", "strategy"),
    ("pool", "pool"),
    ("workload", "workload"),
    ("n", "iters"),
    ("timeouts", "timeouts"),
    ("other", "ok/err/miss"),
    ("imm", "children/zombies now"),
    ("set", "children/zombies settled"),
    ("leaked", "leaked"),
    ("cpu", "CPU in settle window"),
    ("cpu_end", "CPU after deadline, to the end"),
    ("over", "overshoot p50/max"),
    ("quiet", "quiet after deadline p50/max"),
)


def _max(records, *path) -> int:
    values = []
    for r in records:
        node = r
        for key in path:
            node = (node or {}).get(key) if isinstance(node, dict) else None
        if isinstance(node, (int, float)):
            values.append(node)
    return max(values, default=0)


def _ms(values) -> str:
    return f"{statistics.median(values) * 1000:.0f}/{max(values) * 1000:.0f} ms" if values else "-"


def _quiet(measured: list[dict]) -> str:
    """Time from the deadline until nothing burned CPU for the query; `busy` when some
    iteration was still burning CPU when the worker stopped watching (SETTLE_SECONDS)."""
    timed = [r for r in measured if r.get("outcome") == "timeout" and "quiet" in r]
    if not timed:
        return "-"
    busy = sum(1 for r in timed if r["quiet"].get("busy_at_end"))
    values = [r["quiet_after_deadline"] for r in timed if r.get("quiet_after_deadline") is not None]
    if busy:
        return f"busy in {busy}/{len(timed)}"
    return _ms(values)


def to_the_end(measured: list[dict]) -> tuple[float | None, int, int]:
    """CPU seconds burned after the deadlines up to the end of the run (the worker's own threads in
    the settle window, the leftover processes until they ended or the run did), how many leftovers
    still ran at the end, and how many records had no answer from the follower. None: none answered."""
    followed = [r for r in measured if "leftovers" in r]
    answered = [r for r in followed if r.get("cpu_to_end") is not None]
    if not answered:
        return None, 0, len(followed)
    cpu = sum(r["cpu_to_end"] for r in answered)
    return cpu, sum(r.get("running_at_end") or 0 for r in answered), len(followed) - len(answered)


def _cpu_end(measured: list[dict]) -> str:
    cpu, running, unanswered = to_the_end(measured)
    if cpu is None:
        return "not followed" if unanswered else "-"
    text = f"{cpu:.2f} s"
    notes = [f"{running} still running at the end"] if running else []
    if unanswered:
        notes.append(f"{unanswered} unanswered")
    return text + (f" ({', '.join(notes)})" if notes else "")


def strategy_of(record: dict) -> str:
    """The record's strategy, also for producer-side records of matrix queues (`gil.process.fork`)."""
    spec = axes.parse_queue(record.get("queue") or "")
    if spec:
        return spec.strategy
    return record.get("strategy") or "?"


def pool_of(record: dict) -> str:
    """The Celery pool a record's queue names (the worker's own for its records; the queue's for the producer's)."""
    spec = axes.parse_queue(record.get("queue") or "")
    return spec.pool if spec else "?"


def workload_of(record: dict) -> str:
    """The workload a record's queue names (DuckDB for the article's queues and the ones that name none)."""
    spec = axes.parse_queue(record.get("queue") or "")
    return spec.workload if spec else "?"


def rows(records: Iterable[dict], queues: Iterable[str]) -> list[dict]:
    """One summary row per queue, in the order the queues were asked for."""
    by_queue: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_queue[record.get("queue")].append(record)
    out = []
    for queue in queues:
        recs = by_queue.get(queue, [])
        measured = [r for r in recs if "immediate" in r]
        first = measured[0] if measured else {}
        outcomes = [r.get("outcome") for r in recs]
        overshoots = [r["overshoot"] for r in measured if r.get("overshoot") is not None]
        out.append(
            {
                "queue": queue,
                "build": first.get("build", "?"),
                "py": first.get("python", "?"),
                "gil": {True: "yes", False: "no"}.get(first.get("gil_enabled"), "?"),
                "start": first.get("start_method", "?"),
                "strategy": first.get("strategy") or (strategy_of(recs[0]) if recs else "?"),
                "pool": first.get("pool") or (pool_of(recs[0]) if recs else "?"),
                "workload": first.get("workload") or (workload_of(recs[0]) if recs else "?"),
                "n": len(recs),
                "timeouts": outcomes.count("timeout"),
                "other": f"{outcomes.count('ok')}/{outcomes.count('error') + outcomes.count('killed')}/"
                f"{outcomes.count('missing')}",
                "imm": f"{_max(measured, 'immediate', 'children')}/{_max(measured, 'immediate', 'zombies')}",
                "set": f"{_max(measured, 'settled', 'children')}/{_max(measured, 'settled', 'zombies')}",
                "leaked": max((len(r.get("leaked_task_pids") or []) for r in measured), default=0),
                "cpu": f"{sum(r.get('cpu_after_deadline') or 0 for r in measured):.2f} s",
                "cpu_end": _cpu_end(measured),
                "over": _ms(overshoots),
                "quiet": _quiet(measured),
            }
        )
    return out


def table(summary_rows: list[dict], markdown: bool = False) -> str:
    headers = [title for _, title in COLUMNS]
    body = [[str(row[key]) for key, _ in COLUMNS] for row in summary_rows]
    return tables.render(headers, body, markdown)


def header(records: Iterable[dict]) -> list[str]:
    """First lines of the summary: which interpreters the workers ran on, and how each sized the query."""
    records = list(records)
    seen = {}
    for r in records:
        if "python" in r:
            key = (r["python"], r["build"], r["gil_enabled"], r["start_method"])
            seen.setdefault(key, []).append(r["queue"])
    lines = []
    for (python, build, gil, start), queues in seen.items():
        names = ", ".join(sorted(set(queues)))
        lines.append(
            f"interpreter: CPython {python}, {build} build, GIL {'on' if gil else 'off'} after importing duckdb, "
            f"start method {start} ({names})"
        )
    return lines + workload(records)


def _millions(rate: float) -> str:
    """A speed in millions per second as the summary shows it: 240, 39, 0.6."""
    return f"{rate / 1e6:.0f}" if rate >= 9.5e6 else f"{rate / 1e6:.2g}"


def workload(records: Iterable[dict]) -> list[str]:
    """How each queue's query was sized: the measured speed, the rows used, the expected duration."""
    sizes: dict[tuple, list[str]] = {}
    for r in records:
        cal = r.get("calibration")
        if not cal:
            continue
        name = cal.get("workload") or "duckdb"
        key = (name, cal.get("unit") or "rows", cal["python"], cal["build"], r["rows"], r["rows_requested"],
               r.get("query_seconds"), r["expected_seconds"], float(f"{cal['rows_per_second']:.2g}"), r["timeout"])
        sizes.setdefault(key, []).append(r["queue"])
    lines = []
    for (name, unit, python, build, rows, requested, target, expected, rate, timeout), queues in sizes.items():
        auto = "DUCKDB_ROWS=auto" if name == "duckdb" else f"{name}: sized by its calibration"
        how = f"{auto}, QUERY_SECONDS={target:g}" if requested == "auto" else f"DUCKDB_ROWS={requested}"
        what = "" if name == "duckdb" else f"{name} "
        lines.append(
            f"workload: {what}{rows:,} {unit} ({how}), expected {expected:.1f} s at {_millions(rate)}M {unit}/s measured "
            f"on {python} {build} = {expected / timeout:.1f}x the {timeout:g} s timeout ({', '.join(sorted(set(queues)))})"
        )
    return lines


def notes(records: Iterable[dict]) -> list[str]:
    """What the numbers show, said in words; only what the records support."""
    by_queue: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        if "settled" in r:
            by_queue[r["queue"]].append(r)
    out = []
    for queue, recs in by_queue.items():
        recs.sort(key=lambda r: r["iteration"])
        ok = [r for r in recs if r.get("outcome") == "ok"]
        late = [r for r in ok if (r.get("elapsed") or 0) > (r.get("timeout") or float("inf"))]
        early = [r for r in ok if r not in late]
        if late:
            out.append(_not_stopped(queue, late, len(recs)))
        if early:
            out.append(_finished_early(queue, early, len(recs)))
        leaked = [len(r.get("leaked_task_pids") or []) for r in recs]
        running = sum(
            1 for p in recs[-1]["settled"]["processes"] if p["role"] == "task" and p["status"] != "zombie"
        )
        cpu = sum(r.get("cpu_after_deadline") or 0 for r in recs)
        if len(recs) > 1 and leaked[-1] > leaked[0]:
            out.append(
                f"{queue}: task processes pile up: {leaked[0]} left after iteration 1, {leaked[-1]} after "
                f"iteration {recs[-1]['iteration']} ({running} still running the query)"
            )
        elif leaked[-1]:
            out.append(f"{queue}: {leaked[-1]} task process(es) still there after settling")
        burned = _burned(recs, cpu)
        if burned and recs[0].get("start_method") == "fork" and running:
            out.append(
                f"{queue}: under fork the timed-out children inherited Celery's SIGTERM handler and kept "
                f"running the query: {burned}"
            )
        elif burned:
            out.append(f"{queue}: {burned}")
        cleanups = [r["cleanup"] for r in recs if r.get("cleanup")]
        if cleanups:
            out.append(
                f"{queue}: cleanup terminated {sum(c['terminated'] for c in cleanups)}, killed "
                f"{sum(c['killed'] for c in cleanups)}, remaining {max(c['remaining'] for c in cleanups)}"
            )
    return out


def _burned(recs: list[dict], settle_cpu: float) -> str | None:
    """What leftover work burned after the deadlines, to the end of the run and in the settle windows."""
    end, running, unanswered = to_the_end(recs)
    if end is None:
        if settle_cpu < 0.05:
            return None
        why = " (the leftovers' CPU after them was not followed)" if unanswered else ""
        return f"{settle_cpu:.2f} CPU s burned in the settle windows after the deadlines{why}"
    if max(end, settle_cpu) < 0.05:
        return None
    count = sum(len(r.get("leftovers") or []) for r in recs)
    still = (f", {running} of its {count} leftover process(es) still running then: more to come" if running
             else f", its {count} leftover process(es) all ended by then" if count else "")
    lost = f"; {unanswered} iteration(s) not followed" if unanswered else ""
    return (f"{end:.2f} CPU s burned after the deadlines, to the end of the run{still} "
            f"({settle_cpu:.2f} s of it in the settle windows){lost}")


def _not_stopped(queue: str, late: list[dict], total: int) -> str:
    """The query outlived its deadline and returned its value: the strategy did not stop it
    (e.g. Celery's time limits in the threads pool, the interrupt greenlet under gevent)."""
    r = late[0]
    took = max(x.get("elapsed") or 0 for x in late)
    pool = f" in the {r['pool']} pool" if r.get("pool") else ""
    verb = "nothing stopped the query" if len(late) == total else f"{len(late)} of {total} iterations were not stopped"
    return (f"{queue}: {verb}: {r.get('strategy') or 'its strategy'}{pool} let it run to its end "
            f"({took:.2f} s, past the {r['timeout']:g} s deadline)")


def _finished_early(queue: str, early: list[dict], total: int) -> str:
    """The premise failed: the query ended before its deadline, so nothing was timed out."""
    r = early[0]
    took = max(x.get("elapsed") or 0 for x in early)
    why = (f"the query ({r['rows']:,} rows, expected {r['expected_seconds']:.2f} s at "
           f"{r['calibration']['rows_per_second'] / 1e6:.0f}M rows/s) finished in {took:.2f} s, before the "
           f"{r['timeout']:g} s deadline") if r.get("calibration") else "the query finished before its deadline"
    fix = (" (DUCKDB_ROWS is set explicitly: unset it, or use DUCKDB_ROWS=auto, to size the query to the timeout)"
           if r.get("rows_requested") not in (None, "auto") else "")
    verb = "nothing timed out" if len(early) == total else f"{len(early)} of {total} iterations did not time out"
    return f"{queue}: {verb}: {why}, so those iterations measure no leak{fix}"
