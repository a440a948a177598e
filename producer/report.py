"""results/<run>/report.md and summary.png, made from the records alone.

`python -m producer.report results/<run>` rebuilds both from records.jsonl, so a report can be
regenerated (or compared) without running anything.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from . import summary
from .results import read_jsonl, write_text


def chart(records: list[dict], queues: list[str], path: Path) -> str | None:
    """Draw the summary chart; returns why it was skipped, or None when written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -r requirements/report.txt)"

    by_queue: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        if "immediate" in r:
            by_queue[r["queue"]].append(r)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    ax_children, ax_zombies, ax_cost = axes
    for queue in queues:
        recs = sorted(by_queue.get(queue, []), key=lambda r: r["iteration"])
        if not recs:
            continue
        its = [r["iteration"] for r in recs]
        line = ax_children.plot(its, [r["immediate"]["children"] for r in recs], marker="o", label=f"{queue} now")
        ax_children.plot(
            its, [r["settled"]["children"] for r in recs], ls="--", marker="x", color=line[0].get_color(),
            label=f"{queue} settled",
        )
        ax_zombies.plot(its, [r["immediate"]["zombies"] for r in recs], marker="o", label=f"{queue} now")
        ax_zombies.plot(
            its, [r["settled"]["zombies"] for r in recs], ls="--", marker="x", color=ax_zombies.lines[-1].get_color(),
            label=f"{queue} settled",
        )
    ax_children.set(title="Descendant processes of the worker", xlabel="iteration", ylabel="processes")
    ax_zombies.set(title="Zombies among them", xlabel="iteration", ylabel="zombie processes")
    names, overshoot, cpu = [], [], []
    for queue in queues:
        recs = by_queue.get(queue, [])
        if not recs:
            continue
        names.append(queue)
        vals = sorted(r["overshoot"] for r in recs if r.get("overshoot") is not None)
        overshoot.append(vals[len(vals) // 2] * 1000 if vals else 0.0)
        cpu.append(sum(r.get("cpu_after_deadline") or 0 for r in recs) / len(recs))
    xs = range(len(names))
    ax_cost.bar([x - 0.2 for x in xs], overshoot, width=0.4, label="overshoot p50 (ms)", color="tab:blue")
    twin = ax_cost.twinx()
    twin.bar([x + 0.2 for x in xs], cpu, width=0.4, label="CPU after deadline (s / iteration)", color="tab:red")
    ax_cost.set_xticks(list(xs), names, rotation=30, ha="right")
    ax_cost.set(title="Cost of a timeout per queue", ylabel="overshoot p50 (ms)")
    twin.set_ylabel("CPU after deadline (s per iteration)")
    handles = ax_cost.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax_cost.legend(handles[0] + more[0], handles[1] + more[1], fontsize=8, loc="upper left")
    for ax in (ax_children, ax_zombies):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return None


def markdown(records: list[dict], queues: list[str], run_id: str, skipped_chart: str | None) -> str:
    lines = [
        f"# Lab run {run_id}",
        "",
        summary.table(summary.rows(records, queues), markdown=True),
        "",
        "`now` is the snapshot right after the timed-out call returned; `settled` is taken "
        "SETTLE_SECONDS later. `leaked` counts task processes still there when settled; CPU after "
        "deadline is what leftover work burned while nobody waited for it.",
        "",
    ]
    lines.append(f"Chart skipped: {skipped_chart}" if skipped_chart else "![summary](summary.png)")
    return "\n".join(lines) + "\n"


def write(run_dir: Path, records: list[dict], queues: list[str], run_id: str) -> Path:
    skipped = chart(records, queues, run_dir / "summary.png")
    path = run_dir / "report.md"
    write_text(path, markdown(records, queues, run_id, skipped))
    return path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not (Path(argv[0]) / "records.jsonl").is_file():
        print("report: usage: python -m producer.report RESULTS_DIR/RUN (a folder with records.jsonl)", file=sys.stderr)
        return 2
    run_dir = Path(argv[0])
    records = read_jsonl(run_dir / "records.jsonl")
    queues = list(dict.fromkeys(r["queue"] for r in records))
    print(write(run_dir, records, queues, run_dir.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
