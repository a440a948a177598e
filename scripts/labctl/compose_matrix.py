"""The Compose profile `mitigations`, generated from the registry (app/axes.py).

One worker service per strategy queue of each build (plus `process.fork`, the article's case:
the start method Python 3.11 and the article used), each consuming the queue it is named after; the worker derives strategy, start
method and clean-up from the queue, and the pool comes from the strategy's declaration. The
block lives in docker-compose.yml between its two marker lines; a test checks that it is what
this module renders, so adding a strategy to the registry adds its services:

    python3 scripts/labctl/compose_matrix.py --write     # regenerate the block in place
    python3 scripts/labctl/compose_matrix.py --check     # exit 1 if docker-compose.yml differs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from app import axes  # noqa: E402

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
BEGIN = "  # ==== profile `mitigations`: the strategy matrix, generated from app/axes.py ===="
END = "  # ==== end of profile `mitigations` ===="
IMAGES = {"gil": "*image-gil", "nogil": "*image-nogil"}
EXTRA_ENV = {"gil": "", "nogil": ', PYTHON_GIL: "0"'}  # keep the GIL off after `import duckdb`


def queues() -> list[str]:
    """The matrix: every strategy per build, and `.fork` for the strategies that start processes."""
    out = []
    for build in axes.BUILDS:
        for strategy in axes.STRATEGY_LIST:
            out.append(axes.strategy_queue(build, strategy.name))
            if strategy.starts_processes and strategy.name == "process":
                out.append(axes.strategy_queue(build, strategy.name, "fork"))
    return out


def service_name(queue: str) -> str:
    return "mit-" + queue.replace(".", "-").replace("+", "-")


def render() -> str:
    lines = [
        BEGIN,
        "  # One worker per timeout strategy and build, each consuming the queue it is named after",
        "  # (<build>.<strategy>[.<start method>]; the worker derives strategy and start method from it,",
        "  # the pool is the one the strategy declares). Regenerate: python3 scripts/labctl/compose_matrix.py --write",
        "  #",
        "  #   docker compose --profile mitigations up -d",
        f"  #   TARGET_QUEUES={','.join(queues())} \\",
        "  #     docker compose run --rm producer",
        "  #   docker compose --profile mitigations down",
        "  #",
        "  # `process` runs with the image's default start method (forkserver on 3.14); `process.fork` is",
        "  # the article's case (the task process inherits Celery's SIGTERM handler and keeps running).",
    ]
    for queue in queues():
        spec = axes.parse_queue(queue)
        pool = " ".join(axes.POOLS[spec.pool].argv())
        lines += [
            f"  {service_name(queue)}:",
            f"    <<: [*worker, {IMAGES[spec.build]}]",
            "    profiles: [mitigations]",
        ]
        if spec.pool != "solo":
            lines.append(f"    # {spec.strategy} needs the {spec.pool} pool: {axes.POOLS[spec.pool].summary}")
            lines.append(f'    command: ["sh", "-c", "exec celery -A app worker {pool} -Q \\"$$QUEUE\\" '
                         f'-n \\"$$WORKER_NAME@%h\\" --loglevel=INFO"]')
        # said explicitly, so a TIMEOUT_STRATEGY / START_METHOD / WORKLOAD exported in the shell (read by
        # *worker-env for the article's workers) cannot change a matrix cell
        start = f", START_METHOD: {spec.start_method}" if spec.start_method else ""
        lines.append(f"    environment: {{<<: *worker-env{EXTRA_ENV[spec.build]}, QUEUE: {queue}, WORKER_NAME: {queue}, "
                     f"TIMEOUT_STRATEGY: {spec.strategy}{start}, WORKLOAD: {spec.workload}}}")
    lines.append(END)
    return "\n".join(lines) + "\n"


def current(text: str) -> str:
    """The block as docker-compose.yml has it now (marker lines included)."""
    start = text.index(BEGIN)
    end = text.index(END, start) + len(END) + 1
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
        print(render(), end="")
        return 0
    if args.check:
        same = current(text) == render()
        print("docker-compose.yml: mitigations profile " + ("up to date" if same else "differs from app/axes.py"))
        return 0 if same else 1
    COMPOSE.write_text(text.replace(current(text), render()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
