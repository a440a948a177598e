"""results/<run>/report.md and summary.png, made from the records alone.

`python -m producer.report results/<run>` rebuilds both from records.jsonl, so a report can be
regenerated (or compared) without running anything.

report.md: the strategy x build table (what each mitigation costs and leaves behind), the
per-queue summary the producer prints, the notes, when each queue's killed task process was
reaped, the chart. summary.png: descendants and zombies of each worker per iteration, overshoot
and CPU after the deadline per queue (in the settle window, and to the end of the run), and the
processes over time after the deadline (each record's timeline).
"""

from __future__ import annotations

import io
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from app.kernel import axes, tables

from . import summary
from .results import read_jsonl, write_atomic, write_text

MB = 1024 * 1024


def _by_queue(records: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        out[r.get("queue")].append(r)
    for recs in out.values():
        recs.sort(key=lambda r: r.get("iteration", 0))
    return out


def _measured(recs: list[dict]) -> list[dict]:
    return [r for r in recs if "immediate" in r]


def _build_of(queue: str) -> str:
    spec = axes.parse_queue(queue)
    return spec.build if spec else "?"


def _label(queue: str, recs: list[dict]) -> str:
    """`strategy @start (build)` from what the worker reported, e.g. `process @fork (gil)`."""
    measured = _measured(recs)
    first = measured[0] if measured else (recs[0] if recs else {"queue": queue})
    strategy = first.get("strategy") or summary.strategy_of(first)
    start = first.get("start_method")
    build = first.get("build") or _build_of(queue)
    uses_start = strategy in axes.PROCESS_STRATEGIES
    pool = first.get("pool") or summary.pool_of(first)
    workload = first.get("workload") or summary.workload_of(first)
    extra = "".join(f" {x}" for x in (pool if pool != axes.STRATEGIES.get(strategy, axes.STRATEGY_LIST[0]).pool else "",
                                      workload if workload not in ("duckdb", "?") else "") if x)
    return f"{strategy}{' @' + start if uses_start and start else ''}{extra} ({build})"


def _order(queue: str, recs: list[dict]) -> tuple:
    """Strategy by strategy (axes.STRATEGY_LIST order), then start method, then build."""
    measured = _measured(recs)
    first = measured[0] if measured else recs[0]
    strategy = first.get("strategy") or summary.strategy_of(first)
    build = first.get("build") or _build_of(queue)
    return STRATEGY_ORDER.get(strategy, 99), first.get("start_method") or "", build, queue


# --- the table ------------------------------------------------------------------------------------


def _ms_pair(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values) * 1000:.0f} / {max(values) * 1000:.0f}"


def _trend(measured: list[dict], key: str, scale: float = 1.0) -> str:
    """A worker resource after iteration 1 -> after the last one: growth there is a leak; the
    first iteration's own growth (DuckDB warming up in the worker) is not."""
    try:
        first = measured[0]["resources_after"][key] / scale
        last = measured[-1]["resources_after"][key] / scale
    except (IndexError, KeyError, TypeError):
        return "-"
    return f"{first:.0f}->{last:.0f}"


STRATEGY_ORDER = {name: i for i, name in enumerate(axes.STRATEGY_NAMES)}
POOL_ORDER = {name: i for i, name in enumerate(axes.POOL_NAMES)}
MATRIX_HEADERS = (
    "strategy", "pool", "workload", "build", "Python / GIL", "start", "iterations: timeout/ok/error/killed/missing",
    "overshoot p50 / max (ms)", "query stopped p50 (ms)", "CPU in settle window (s / iteration)",
    "CPU after deadline, to the end (s / iteration)",
    "quiet after deadline p50 / max (ms)", "children/zombies now, max", "settled, max", "leaked after last",
    "still running after last", "worker RSS MB / fds / threads after iter 1 -> after last",
    "threads the call left, max (their CPU s)",
)


def matrix_rows(records: list[dict], queues: list[str]) -> list[list[str]]:
    """One row per queue, ordered strategy by strategy, then start method, then build."""
    by_queue = _by_queue(records)
    rows = []
    for queue in queues:
        recs = by_queue.get(queue, [])
        if not recs:
            continue
        measured = _measured(recs)
        first = measured[0] if measured else recs[0]
        strategy = first.get("strategy") or summary.strategy_of(first)
        outcomes = [r.get("outcome") for r in recs]
        timed = [r for r in measured if r.get("outcome") == "timeout"]
        overs = [r["overshoot"] for r in timed if r.get("overshoot") is not None]
        stops = [r["stop_overshoot"] for r in timed if r.get("stop_overshoot") is not None]
        busy = sum(1 for r in timed if (r.get("quiet") or {}).get("busy_at_end"))
        quiet = [r["quiet_after_deadline"] for r in timed if r.get("quiet_after_deadline") is not None]
        cpu = [r.get("cpu_after_deadline") or 0.0 for r in measured]
        _, end_running, _ = summary.to_the_end(measured)
        end = [r["cpu_to_end"] for r in measured if r.get("cpu_to_end") is not None]
        last = measured[-1] if measured else {}
        running = sum(1 for p in (last.get("settled") or {}).get("processes", [])
                      if p["role"] == "task" and p["status"] != "zombie")
        gil = {True: "on", False: "off"}.get(first.get("gil_enabled"), "?")
        uses_start = strategy in axes.PROCESS_STRATEGIES
        row = [
            strategy,
            first.get("pool") or summary.pool_of(first),
            first.get("workload") or summary.workload_of(first),
            first.get("build") or _build_of(queue),
            f"{first.get('python', '?')} / {gil}",
            (first.get("start_method") or "?") if uses_start else "n/a",
            "/".join(str(outcomes.count(o)) for o in ("timeout", "ok", "error", "killed", "missing")),
            _ms_pair(overs),
            f"{statistics.median(stops) * 1000:.0f}" if stops else "-",
            f"{statistics.mean(cpu):.3f}" if cpu else "-",
            "-" if not end else
            f"{statistics.mean(end):.3f}" + (f" ({end_running} still running at the end)" if end_running else ""),
            (f"still busy in {busy}/{len(timed)}" if busy else _ms_pair(quiet)),
            "-" if not measured else
            f"{max(r['immediate']['children'] for r in measured)}/{max(r['immediate']['zombies'] for r in measured)}",
            "-" if not measured else
            f"{max(r['settled']['children'] for r in measured)}/{max(r['settled']['zombies'] for r in measured)}",
            str(len(last.get("leaked_task_pids") or [])) if measured else "-",
            str(running) if measured else "-",
            f"{_trend(measured, 'rss_bytes', MB)} / {_trend(measured, 'open_fds')} / {_trend(measured, 'threads')}",
            _threads_left(measured),
        ]
        # strategy, pool, workload, start method, build
        order = (STRATEGY_ORDER.get(strategy, 99), POOL_ORDER.get(row[1], 99), row[2], row[5], row[3], queue)
        rows.append((order, row))
    return [row for _, row in sorted(rows)]


def _threads_left(measured: list[dict]) -> str:
    """Threads a call started still in the worker when its settle window ended (func-timeout's, left in
    the C call), the most of any iteration, and the CPU they burned in the windows."""
    counted = [r for r in measured if "threads_left" in r]
    if not counted:
        return "-"
    cpu = sum(r.get("threads_left_cpu") or 0.0 for r in counted)
    return f"{max(r['threads_left'] for r in counted)} ({cpu:.2f})"


def matrix_table(records: list[dict], queues: list[str]) -> str:
    return tables.render(MATRIX_HEADERS, matrix_rows(records, queues), markdown=True)


# --- reaping: when the call's own process left the worker's tree ---------------------------------


def _last_states(record: dict) -> list[str]:
    """The state letters of the call's own processes at the timeline's last look."""
    samples = (record.get("timeline") or {}).get("samples") or []
    own = set(record.get("call_pids") or [])
    return [state for pid, _, state, _ in samples[-1]["p"] if pid in own] if samples else []


def _reaping(recs: list[dict], what: str, since: str) -> str | None:
    if not recs:
        return None
    with_own = [r for r in recs if r.get("call_pids")]
    if not with_own:
        return f"{what}: no process of its own to reap"
    reaped = [r for r in with_own if r.get("reaped_after") is not None]
    parts = []
    if reaped:
        ms = [r["reaped_after"] * 1000 for r in reaped]
        unseen = sum(1 for r in reaped if r.get("reaped_last_seen") is None)
        # after a timeout, also from the return: the kill is right before it, the overshoot before that
        back = [(r["reaped_after"] - r["overshoot"]) * 1000 for r in reaped
                if (r.get("timeline") or {}).get("origin") == "deadline" and r.get("overshoot") is not None]
        parts.append(f"reaped {statistics.median(ms):.0f} ms after {since} p50 (max {max(ms):.0f})"
                     + (f", {statistics.median(back):.0f} ms after the return p50 (max {max(back):.0f})" if back else "")
                     + f" in {len(reaped)}/{len(with_own)}"
                     + (f" ({unseen} already gone at the first look: an upper bound)" if unseen else ""))
    left = [r for r in with_own if r.get("reaped_after") is None]
    if left:
        states = [s for r in left for s in _last_states(r)]
        zombies = sum(s == "Z" for s in states)
        window = max((r["timeline"]["samples"][-1]["t"] for r in left if r["timeline"]["samples"]), default=0.0)
        text = (f"not reaped within the window ({window:.2f} s after {since}) in {len(left)}/{len(with_own)}: "
                f"{len(states) - zombies} still running, {zombies} zombie(s) at the last look")
        # after the window, the follower saw them go (or not) until the end of the run
        later = [item for r in left for item in r.get("leftovers") or [] if "gone_after" in item]
        gone = [item["gone_after"] * 1000 for item in later if item.get("gone_after") is not None]
        if gone:
            text += (f"; the follower saw {len(gone)} reaped later, {statistics.median(gone):.0f} ms after {since} "
                     f"p50 (max {max(gone):.0f})")
        if len(gone) < len(later):
            text += f", {len(later) - len(gone)} still there at the end of the run"
        parts.append(text)
    return f"{what}: " + "; ".join(parts)


def reaping_lines(records: list[dict], queues: list[str]) -> list[str]:
    """One line per queue: how long after the deadline the timed-out call's own process was reaped
    (left the worker's process tree), and the same after calls that ended in time (the control)."""
    by_queue = _by_queue(records)
    lines = []
    for queue in queues:
        recs = [r for r in _measured(by_queue.get(queue, [])) if "timeline" in r]
        if not recs:
            continue
        parts = [_reaping([r for r in recs if r.get("outcome") == "timeout"], "timeouts", "the deadline"),
                 _reaping([r for r in recs if r.get("outcome") == "ok"], "calls that ended in time (control)",
                          "their return")]
        lines.append(f"{queue} ({_label(queue, by_queue[queue])}): " + "; ".join(p for p in parts if p))
    return lines


# --- the chart ------------------------------------------------------------------------------------


def chart(records: list[dict], queues: list[str], path: Path) -> str | None:
    """Draw the summary chart; returns why it was skipped, or None when written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -r requirements/report.txt)"

    by_queue = _by_queue(records)
    shown = sorted((q for q in queues if by_queue.get(q)), key=lambda q: _order(q, by_queue[q]))
    if not shown:
        return "no records"
    labels = {q: _label(q, by_queue[q]) for q in shown}
    kind_color, colors, builds = _styles(plt, shown, labels)
    markers = {q: "^" if builds[q] == "nogil" else "o" for q in shown}

    height = max(13.5, 9.5 + 0.32 * len(shown))
    fig = plt.figure(figsize=(17, height))
    grid = fig.add_gridspec(3, 2, height_ratios=[1, max(1.0, len(shown) / 8), 1.1], hspace=0.42, wspace=0.75)
    ax_children, ax_zombies = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    ax_over, ax_cpu = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    ax_time = fig.add_subplot(grid[2, :])

    _tree_panels(ax_children, ax_zombies, shown, by_queue, colors, markers)
    _cost_panels(ax_over, ax_cpu, shown, by_queue, colors, labels, builds)
    _timeline_panel(ax_time, shown, by_queue, colors, labels, builds)
    _legend(ax_zombies, kind_color, builds)
    fig.suptitle(_title(records), fontsize=13)
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    write_atomic(path, image.getvalue())
    return None


def _styles(plt, shown: list[str], labels: dict) -> tuple[dict, dict, dict]:
    """Colour = strategy (and start method), the same for both builds; marker / hatch = build.
    Returns the colour of each kind, the colour of each queue and the build of each queue."""
    kinds = {q: labels[q].rsplit(" (", 1)[0] for q in shown}
    builds = {q: labels[q].rsplit(" (", 1)[1].rstrip(")") for q in shown}
    cmap = plt.get_cmap("tab10")
    kind_color = {k: cmap(i % cmap.N) for i, k in enumerate(dict.fromkeys(kinds.values()))}
    colors = {q: kind_color[kinds[q]] for q in shown}
    return kind_color, colors, builds


def _tree_panels(ax_children, ax_zombies, shown: list[str], by_queue: dict, colors: dict, markers: dict) -> None:
    """Top: the process tree per iteration, right after the call (solid) and settled (dashed)."""
    for queue in shown:
        recs = _measured(by_queue[queue])
        if not recs:
            continue
        its = [r["iteration"] for r in recs]
        for ax, key in ((ax_children, "children"), (ax_zombies, "zombies")):
            ax.plot(its, [r["immediate"][key] for r in recs], marker=markers[queue], color=colors[queue], lw=1.6)
            ax.plot(its, [r["settled"][key] for r in recs], marker=markers[queue], ls="--", color=colors[queue],
                    lw=1.0, mfc="none")
    ax_children.set(title="Descendant processes of each worker, per iteration", xlabel="iteration",
                    ylabel="processes (helpers + task processes)")
    ax_zombies.set(title="Zombies among them, per iteration", xlabel="iteration", ylabel="zombie processes")
    for ax in (ax_children, ax_zombies):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.yaxis.get_major_locator().set_params(integer=True)
        low, high = ax.get_ylim()
        ax.set_ylim(-0.3, max(high, 1.5))


def _costs(shown: list[str], by_queue: dict) -> dict[str, list]:
    """What a timeout costs, per queue in `shown`'s order: overshoot p50 and max (ms), CPU in the settle window,
    iterations still busy at its end, CPU to the end of the run (None: not followed), processes running then."""
    out: dict[str, list] = {k: [] for k in ("over_p50", "over_max", "cpu", "busy", "cpu_end", "running_end")}
    for queue in shown:
        timed = [r for r in _measured(by_queue[queue]) if r.get("outcome") == "timeout"]
        values = [r["overshoot"] * 1000 for r in timed if r.get("overshoot") is not None]
        out["over_p50"].append(statistics.median(values) if values else 0.0)
        out["over_max"].append(max(values) if values else 0.0)
        measured = _measured(by_queue[queue])
        out["cpu"].append(statistics.mean([r.get("cpu_after_deadline") or 0.0 for r in measured]) if measured else 0.0)
        out["busy"].append(sum(1 for r in timed if (r.get("quiet") or {}).get("busy_at_end")))
        ends = [r["cpu_to_end"] for r in measured if r.get("cpu_to_end") is not None]
        out["cpu_end"].append(statistics.mean(ends) if ends else None)
        out["running_end"].append(summary.to_the_end(measured)[1])
    return out


def _cost_panels(ax_over, ax_cpu, shown: list[str], by_queue: dict, colors: dict, labels: dict, builds: dict) -> None:
    """Bottom: what a timeout costs, one bar per queue: the overshoot, and the CPU burned after the deadline."""
    c = _costs(shown, by_queue)
    over_p50, over_max, cpu = c["over_p50"], c["over_max"], c["cpu"]
    ys = list(range(len(shown)))[::-1]
    bar_colors = [colors[q] for q in shown]
    hatches = ["//" if builds[q] == "nogil" else None for q in shown]
    ax_over.barh(ys, over_p50, color=bar_colors, alpha=0.85, hatch=hatches, edgecolor="white")
    ax_over.errorbar(over_max, ys, fmt="|", color="black", ms=12, label="max")
    ax_over.set(title="Overshoot: deadline -> control back (bar p50, | max)",
                xlabel="milliseconds (linear to 10 ms, logarithmic above)")
    ax_over.set_xscale("symlog", linthresh=10)
    # each queue: the settle window's share (upper, pale) and to the end of the run (lower, full)
    ends = [0.0 if e is None else e for e in c["cpu_end"]]
    ax_cpu.barh([y + 0.2 for y in ys], cpu, height=0.38, color=bar_colors, alpha=0.4, hatch=hatches,
                edgecolor="white")
    ax_cpu.barh([y - 0.2 for y in ys], ends, height=0.38, color=bar_colors, alpha=0.9, hatch=hatches,
                edgecolor="white")
    ax_cpu.set(title="CPU burned after the deadline, per iteration: in the settle window (pale) and to the end (full)",
               xlabel="CPU seconds per iteration")
    top_over, top_cpu = max(over_max + [1.0]), max(cpu + ends + [0.01])
    for y, p50, mx, cw, b, e, n in zip(ys, over_p50, over_max, cpu, c["busy"], c["cpu_end"], c["running_end"]):
        ax_over.text(max(p50, mx, 0) * 1.15 + 1, y, f"{p50:.0f} ms (max {mx:.0f})", va="center", fontsize=8)
        note = f"{cw:.3f} s in the window" + (f", still busy after {b} iteration(s)" if b else "")
        ax_cpu.text(cw + top_cpu * 0.02, y + 0.2, note, va="center", fontsize=7)
        end_note = ("not followed" if e is None else f"{e:.3f} s to the end"
                    + (f", {n} still running at the end" if n else ""))
        ax_cpu.text((e or 0.0) + top_cpu * 0.02, y - 0.2, end_note, va="center", fontsize=7)
    ax_over.set_xlim(min(0.0, min(over_p50 + [0.0]) * 1.5), top_over * 12)
    ax_cpu.set_xlim(0, top_cpu * 1.6)
    for ax in (ax_over, ax_cpu):
        ax.set_yticks(ys, [labels[q] for q in shown], fontsize=9)
        ax.grid(alpha=0.3, axis="x")
        ax.axvline(0, color="grey", lw=0.8)


def _legend(ax, kind_color: dict, builds: dict) -> None:
    """The legend of the top panels, right of `ax`: a colour per kind, a marker per build, the line styles."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, lw=4, label=k) for k, c in kind_color.items()]
    handles += [Line2D([], [], color="grey", marker=m, ls="none", label=f"{b} build" + (" (bars hatched)" if b == "nogil" else ""))
                for b, m in (("gil", "o"), ("nogil", "^")) if b in builds.values()]
    handles += [
        Line2D([], [], color="black", lw=1.6, label="right after the call"),
        Line2D([], [], color="black", ls="--", lw=1.0, label="settled (SETTLE_SECONDS later)"),
    ]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)


def _title(records: list[dict]) -> str:
    run_id = next((r.get("run_id") for r in records if r.get("run_id")), "")
    first = next((r for r in records if "calibration" in r), None)
    return (f"Lab run {run_id}: a DuckDB query of {first['expected_seconds']:.1f} s ({first['rows']:,} rows) "
            f"timed out after {first['timeout']:g} s" if first else f"Lab run {run_id}")


def _timeline_panel(ax, shown: list[str], by_queue: dict, colors: dict, labels: dict, builds: dict) -> None:
    """Descendants of each worker over time after each deadline: one step line per timed-out call
    (solid; dashed on the nogil build), per call that ended in time (dotted, from its return); x where
    its own process was reaped."""
    from matplotlib.lines import Line2D

    drawn = []
    for index, queue in enumerate(shown):
        offset = 0.06 * (index - (len(shown) - 1) / 2)  # queues with the same counts stay apart
        for r in _measured(by_queue[queue]):
            samples = (r.get("timeline") or {}).get("samples") or []
            if not samples:
                continue
            ts = [sample["t"] for sample in samples]
            counts = [len(sample["p"]) + offset for sample in samples]
            control = r.get("outcome") != "timeout"
            ax.step(ts, counts, where="post", color=colors[queue], lw=0.9 if control else 1.3,
                    ls=":" if control else ("--" if builds[queue] == "nogil" else "-"), alpha=0.8)
            if r.get("reaped_after") is not None:
                at = next((i for i, t in enumerate(ts) if t >= r["reaped_after"]), len(ts) - 1)
                ax.plot([r["reaped_after"]], [counts[at]], marker="x", color=colors[queue], ms=7, mew=1.6)
            drawn.append(queue)
    ax.set(title="Processes over time after the deadline: each worker's descendants, every "
                 f"{_interval(by_queue, shown) * 1000:.0f} ms (x: the call's own process reaped)",
           xlabel="seconds after the deadline (calls that ended in time: after their return)",
           ylabel="descendant processes")
    ax.grid(alpha=0.3)
    ax.yaxis.get_major_locator().set_params(integer=True)
    if not drawn:
        ax.text(0.5, 0.5, "no timelines in these records", transform=ax.transAxes, ha="center")
        return
    handles = [Line2D([], [], color=colors[q], lw=2, ls="--" if builds[q] == "nogil" else "-", label=labels[q])
               for q in dict.fromkeys(drawn)]
    handles += [Line2D([], [], color="black", lw=1.3, label="after a timeout"),
                Line2D([], [], color="black", lw=0.9, ls=":", label="after a call that ended in time (control)"),
                Line2D([], [], color="black", marker="x", ls="none", label="its own process reaped")]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _interval(by_queue: dict, shown: list[str]) -> float:
    for queue in shown:
        for r in by_queue[queue]:
            if r.get("timeline"):
                return r["timeline"].get("interval") or 0.0
    return 0.0


# --- report.md ------------------------------------------------------------------------------------


def markdown(records: list[dict], queues: list[str], run_id: str, skipped_chart: str | None) -> str:
    lines = [f"# Lab run {run_id}", ""]
    lines += [f"- {line}" for line in summary.header(records)]
    first = next((r for r in records if "calibration" in r), None)
    if first:
        lines.append(
            f"- timeout {first['timeout']} s, DuckDB threads {first.get('duckdb_threads', '?')}, "
            f"settle {first.get('settle_seconds', '?')} s"
        )
    lines += [
        "",
        "## Strategy x pool x workload x build",
        "",
        matrix_table(records, queues),
        "",
        "Overshoot: from the deadline to the task getting control back; every strategy's deadline and times count "
        "from the task's start in the worker (`clock_source`: billiard's accept stamp in a prefork pool process, "
        "which Celery's time limits start after; task_prerun under solo). Query stopped: from the deadline "
        "to the query itself raising, before the strategy closed its connection. CPU in settle window: what "
        "leftover task processes and the worker's other threads burned from control coming back until "
        "SETTLE_SECONDS later (or the end of the cleanup, if later). CPU after deadline, to the end: the "
        "worker's other threads in that window plus each call's own leftover processes from control coming "
        "back until they exited, or until the run ended (`still running at the end`: more was to come). "
        "Quiet after deadline: until nothing burned CPU for the query any more "
        "(sampled every 10 ms; a runnable process counts as busy); `still busy` when something still ran at "
        "the end of the window. Worker resources: after iteration 1 -> after the last one (what grows there "
        "grows per timeout).",
        "",
        "## Per queue",
        "",
        summary.table(summary.rows(records, queues), markdown=True),
        "",
        "`now` is the snapshot right after the timed-out call returned; `settled` is taken "
        "SETTLE_SECONDS later. `leaked` counts task processes still there when settled; CPU in settle "
        "window is what leftover work burned while nobody waited for it in that window, CPU after "
        "deadline, to the end what it burned until it stopped or the run ended.",
        "",
    ]
    notes = summary.notes(records)
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    reaping = reaping_lines(records, queues)
    if reaping:
        lines += ["## Reaping", "",
                  "When the call's own process left the worker's process tree (was reaped: by the forkserver, "
                  "by the worker's next Process.start(), by a cleanup), from each record's timeline (the tree "
                  "listed every few tens of ms over the settle window; resolution: that interval). A call that "
                  "ended in time is the control: what shows after it is not the timeout's doing.", ""]
        lines += [f"- {line}" for line in reaping] + [""]
    lines.append(f"Chart skipped: {skipped_chart}" if skipped_chart else "![summary](summary.png)")
    return "\n".join(lines) + "\n"


def write(run_dir: Path, records: list[dict], queues: list[str], run_id: str) -> Path:
    skipped = chart(records, queues, run_dir / "summary.png")
    path = run_dir / "report.md"
    write_text(path, markdown(records, queues, run_id, skipped))
    return path


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m producer.report",
                                description="(Re)write report.md and summary.png of a run from its records.jsonl.")
    p.add_argument("run", metavar="RESULTS_DIR/RUN", help="a run's folder, with records.jsonl")
    try:
        ns = p.parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # --help: 0; argparse's own usage errors: 2
        return exc.code if isinstance(exc.code, int) else 2
    if not (Path(ns.run) / "records.jsonl").is_file():
        print(f"report: {ns.run}: expected a run's folder with records.jsonl", file=sys.stderr)
        return 2
    run_dir = Path(ns.run)
    records = read_jsonl(run_dir / "records.jsonl")
    queues = list(dict.fromkeys(r["queue"] for r in records))
    print(write(run_dir, records, queues, run_dir.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
