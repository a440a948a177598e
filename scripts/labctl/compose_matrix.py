"""The Compose profiles `mitigations`, `pools` and `workloads`, generated from the registry (app/kernel/axes.py).

`mitigations`: one worker service per strategy queue of each build (plus `process.fork`, the
article's case: the start method Python 3.11 and the article used) in the strategy's own pool.
`pools`: every strategy of each build in every other pool (`<build>.<strategy>.<pool>`).
`workloads`: every strategy of each build on every other C call (`<build>.<strategy>.<workload>`). Each
service consumes the queue it is named after; the worker derives strategy, start method, pool,
workload and clean-up from the queue. Each block lives in docker-compose.yml between its two
marker lines; a test checks that it is what this module renders, so adding a strategy or a pool
to the registry adds its services:

    python3 scripts/labctl/compose_matrix.py --write     # regenerate the block in place
    python3 scripts/labctl/compose_matrix.py --check     # exit 1 if docker-compose.yml differs
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from app.kernel import axes  # noqa: E402

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
IMAGES = {"gil": "*image-gil", "nogil": "*image-nogil"}
EXTRA_ENV = {"gil": "", "nogil": ', PYTHON_GIL: "0"'}  # keep the GIL off after `import duckdb`
# Cells no image can run: the pool's package has no wheel for the build (requirements/optional.txt
# installs wheels only; `scripts/lab pools` reports the same cell as "not run").
NOT_BUILT = {("nogil", "gevent"): "gevent 26.9.0 has no cp314t wheel"}


def marker(profile: str, what: str) -> tuple[str, str]:
    return (f"  # ==== profile `{profile}`: {what}, generated from app/kernel/axes.py ====",
            f"  # ==== end of profile `{profile}` ====")


def mitigation_queues() -> list[str]:
    """The strategy matrix: every strategy per build in its own pool, and `.fork` for `process`."""
    out = []
    for build in axes.BUILDS:
        for strategy in axes.STRATEGY_LIST:
            out.append(axes.strategy_queue(build, strategy.name))
            if strategy.starts_processes and strategy.name == "process":
                out.append(axes.strategy_queue(build, strategy.name, "fork"))
    return out


def pool_queues() -> list[str]:
    """The pool matrix: every strategy per build in every pool but its own (that one is `mitigations`')."""
    return [axes.strategy_queue(b, s.name, pool=p) for b in axes.BUILDS for p in axes.POOL_NAMES
            for s in axes.STRATEGY_LIST if p != s.pool and (b, p) not in NOT_BUILT]


def workload_queues() -> list[str]:
    """The workload matrix: every strategy per build in its own pool on every C call but DuckDB's
    (DuckDB's are `mitigations`'), where the workload has the stop the strategy needs."""
    return [axes.strategy_queue(b, s.name, workload=w) for b in axes.BUILDS for w in axes.WORKLOAD_NAMES
            for s in axes.STRATEGY_LIST if w != axes.DEFAULT_WORKLOAD and s.runs_on(w)]


queues = mitigation_queues  # the name tests/worker/test_axes.py and older readers use


@dataclass(frozen=True)
class Profile:
    name: str
    what: str
    prefix: str  # of the service names
    queues: Callable[[], list[str]]
    intro: tuple[str, ...]

    @property
    def begin(self) -> str:
        return marker(self.name, self.what)[0]

    @property
    def end(self) -> str:
        return marker(self.name, self.what)[1]


PROFILES = (
    Profile("mitigations", "the strategy matrix", "mit-", mitigation_queues, (
        "  # One worker per timeout strategy and build, each consuming the queue it is named after",
        "  # (<build>.<strategy>[.<start method>]; the worker derives strategy and start method from it,",
        "  # the pool is the one the strategy declares). Regenerate: python3 scripts/labctl/compose_matrix.py --write",
        "  #",
        "  #   docker compose --profile mitigations up -d",
        "  #   TARGET_QUEUES={queues} \\",
        "  #     docker compose run --rm producer",
        "  #   docker compose --profile mitigations down",
        "  #",
        "  # `process` runs with the image's default start method (forkserver on 3.14); `process.fork` is",
        "  # the article's case (the task process inherits Celery's SIGTERM handler and keeps running).",
    )),
    Profile("pools", "every strategy in every other Celery pool", "pool-", pool_queues, (
        "  # One worker per strategy, build and pool other than the strategy's own (those are the",
        "  # mitigations profile's), each consuming <build>.<strategy>.<pool>; the worker checks that it runs",
        "  # the pool its queue names. One task at a time (--concurrency=1), so each record measures one call.",
        "  # Not generated: " + "; ".join(f"{b} {p} ({why})" for (b, p), why in NOT_BUILT.items()) + ".",
        "  # Regenerate: python3 scripts/labctl/compose_matrix.py --write; docs/pools.md has what they show.",
        "  #",
        "  #   docker compose --profile pools up -d",
        "  #   TARGET_QUEUES={queues} \\",
        "  #     docker compose run --rm producer",
        "  #   docker compose --profile pools down",
    )),
    Profile("workloads", "every strategy on every C call but DuckDB's", "wl-", workload_queues, (
        "  # One worker per strategy, build and workload (sqlite, numpy, builtin, pyarrow: docs/workloads.md),",
        "  # each consuming <build>.<strategy>.<workload>, in the strategy's own pool; a strategy the workload",
        "  # has no stop for (interrupt on numpy) has no service. Regenerate: python3 scripts/labctl/compose_matrix.py --write",
        "  #",
        "  #   docker compose --profile workloads up -d",
        "  #   TARGET_QUEUES={queues} \\",
        "  #     docker compose run --rm producer",
        "  #   docker compose --profile workloads down",
    )),
)


def service_name(queue: str, prefix: str = "mit-") -> str:
    return prefix + queue.replace(".", "-").replace("+", "-")


def render(profile: Profile = PROFILES[0]) -> str:
    queues = profile.queues()
    lines = [profile.begin, *(line.replace("{queues}", ",".join(queues)) for line in profile.intro)]
    for queue in queues:
        spec = axes.parse_queue(queue)
        pool = " ".join(axes.POOLS[spec.pool].argv())
        lines += [
            f"  {service_name(queue, profile.prefix)}:",
            f"    <<: [*worker, {IMAGES[spec.build]}]",
            f"    profiles: [{profile.name}]",
        ]
        if spec.pool != "solo":
            lines.append(f"    # the {spec.pool} pool: {axes.POOLS[spec.pool].summary}")
            lines.append(f'    command: ["sh", "-c", "exec celery -A app worker {pool} -Q \\"$$QUEUE\\" '
                         f'-n \\"$$WORKER_NAME@%h\\" --loglevel=INFO"]')
        # said explicitly, so a TIMEOUT_STRATEGY / START_METHOD / WORKLOAD exported in the shell (read by
        # *worker-env for the article's workers) cannot change a matrix cell
        start = f", START_METHOD: {spec.start_method}" if spec.start_method else ""
        lines.append(f"    environment: {{<<: *worker-env{EXTRA_ENV[spec.build]}, QUEUE: {queue}, WORKER_NAME: {queue}, "
                     f"TIMEOUT_STRATEGY: {spec.strategy}{start}, WORKLOAD: {spec.workload}}}")
    lines.append(profile.end)
    return "\n".join(lines) + "\n"


def current(text: str, profile: Profile = PROFILES[0]) -> str:
    """The block as docker-compose.yml has it now (marker lines included); "" when it has none."""
    if profile.begin not in text:
        return ""
    start = text.index(profile.begin)
    end = text.index(profile.end, start) + len(profile.end) + 1
    return text[start:end]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="scripts/labctl/compose_matrix.py", description=__doc__.split("\n\n")[0])
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", action="store_true", help="regenerate the block in docker-compose.yml")
    group.add_argument("--check", action="store_true", help="exit 1 when docker-compose.yml's block differs")
    group.add_argument("--print", action="store_true", help="print the block")
    args = p.parse_args(argv)
    text = COMPOSE.read_text()
    if args.print:
        print("".join(render(p) for p in PROFILES), end="")
        return 0
    if args.check:
        stale = [p.name for p in PROFILES if current(text, p) != render(p)]
        print("docker-compose.yml: " + (f"profile(s) {', '.join(stale)} differ from app/kernel/axes.py" if stale
                                         else "generated profiles up to date"))
        return 1 if stale else 0
    for before, p in zip((None, *PROFILES), PROFILES):
        block = current(text, p)
        # a profile new to the file goes right after the one declared before it
        text = text.replace(block, render(p)) if block else text.replace(
            current(text, before), current(text, before) + "\n" + render(p))
    COMPOSE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
