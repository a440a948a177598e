"""The per-queue summary table the producer prints and the report embeds."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Iterable

COLUMNS = (
    ("queue", "queue"),
    ("build", "build"),
    ("py", "python"),
    ("gil", "GIL on"),
    ("start", "start"),
    ("strategy", "strategy"),
    ("n", "iters"),
    ("timeouts", "timeouts"),
    ("other", "ok/err/miss"),
    ("imm", "children/zombies now"),
    ("set", "children/zombies settled"),
    ("leaked", "leaked"),
    ("cpu", "CPU after deadline"),
    ("over", "overshoot p50/max"),
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
                "strategy": first.get("strategy", recs[0].get("strategy", "?") if recs else "?"),
                "n": len(recs),
                "timeouts": outcomes.count("timeout"),
                "other": f"{outcomes.count('ok')}/{outcomes.count('error') + outcomes.count('killed')}/"
                f"{outcomes.count('missing')}",
                "imm": f"{_max(measured, 'immediate', 'children')}/{_max(measured, 'immediate', 'zombies')}",
                "set": f"{_max(measured, 'settled', 'children')}/{_max(measured, 'settled', 'zombies')}",
                "leaked": max((len(r.get("leaked_task_pids") or []) for r in measured), default=0),
                "cpu": f"{sum(r.get('cpu_after_deadline') or 0 for r in measured):.2f} s",
                "over": _ms(overshoots),
            }
        )
    return out


def table(summary_rows: list[dict], markdown: bool = False) -> str:
    headers = [title for _, title in COLUMNS]
    body = [[str(row[key]) for key, _ in COLUMNS] for row in summary_rows]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max(len(h), *(len(cells[i]) for cells in body)) if body else len(h) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*cells) for cells in body]
    return "\n".join(lines)
