"""The producer's settings: environment first, CLI flags on top, validated before anything runs."""

from __future__ import annotations

import argparse
import os
import re
import time
import uuid
from dataclasses import dataclass
from typing import Mapping, Sequence

from app import axes, defaults, envparse
from app.config import BrokerConfig
from app.envparse import ConfigError

# CLI flag -> environment variable it overrides. The flags carry the variables' names.
FLAGS = {
    "--iterations": "ITERATIONS",
    "--duckdb-rows": "DUCKDB_ROWS",
    "--duckdb-timeout": "DUCKDB_TIMEOUT",
    "--query-seconds": "QUERY_SECONDS",
    "--target-queues": "TARGET_QUEUES",
    "--broker-url": "BROKER_URL",
    "--results-dir": "RESULTS_DIR",
    "--run-id": "RUN_ID",
    "--result-grace": "RESULT_GRACE_SECONDS",
    "--settle-seconds": "SETTLE_SECONDS",
}
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other bad input
        accepted = ", ".join(f"{flag} {var}" for flag, var in FLAGS.items())
        self.exit(2, f"producer: {message} (expected flags: {accepted})\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m producer", description="Enqueue lab iterations and collect their records.")
    for flag, var in FLAGS.items():
        p.add_argument(flag, dest=var, metavar=var, help=f"overrides ${var}")
    return p


@dataclass(frozen=True)
class ProducerConfig:
    iterations: int
    duckdb_rows: int | None  # None: auto, each worker sizes the query from its calibration
    duckdb_timeout: float
    query_seconds: float | None  # None: auto (calibrate.target_seconds)
    target_queues: tuple[str, ...]
    results_dir: str
    run_id: str
    result_grace: float
    settle_seconds: float  # what the producer assumes workers sleep; only sizes its deadline
    broker: BrokerConfig

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ProducerConfig":
        run_id = (env.get("RUN_ID") or "").strip() or time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4]
        if not RUN_ID_PATTERN.match(run_id):
            raise ConfigError("RUN_ID", run_id, "1-80 characters of letters, digits, '.', '_', '-'")
        results_dir = envparse.writable_dir(env, "RESULTS_DIR", defaults.RESULTS_DIR)
        return cls(
            iterations=envparse.integer(env, "ITERATIONS", defaults.ITERATIONS, defaults.ITERATIONS_RANGE),
            duckdb_rows=envparse.integer(env, "DUCKDB_ROWS", defaults.DUCKDB_ROWS, defaults.DUCKDB_ROWS_RANGE, auto=True),
            duckdb_timeout=envparse.number(
                env, "DUCKDB_TIMEOUT", defaults.DUCKDB_TIMEOUT, defaults.DUCKDB_TIMEOUT_RANGE
            ),
            query_seconds=envparse.number(
                env, "QUERY_SECONDS", defaults.QUERY_SECONDS, defaults.QUERY_SECONDS_RANGE, auto=True
            ),
            target_queues=envparse.choice_list(env, "TARGET_QUEUES", defaults.TARGET_QUEUES, axes.KNOWN_QUEUES),
            results_dir=results_dir,
            run_id=run_id,
            result_grace=envparse.number(
                env, "RESULT_GRACE_SECONDS", defaults.RESULT_GRACE_SECONDS, defaults.RESULT_GRACE_RANGE
            ),
            settle_seconds=envparse.number(
                env, "SETTLE_SECONDS", defaults.SETTLE_SECONDS, defaults.SETTLE_SECONDS_RANGE
            ),
            broker=BrokerConfig.from_env(env),
        )

    @classmethod
    def from_argv(cls, argv: Sequence[str] | None, env: Mapping[str, str] | None = None) -> "ProducerConfig":
        """Flags override the environment; both go through the same validation."""
        merged = dict(os.environ if env is None else env)
        args = parser().parse_args(argv)
        merged.update({k: v for k, v in vars(args).items() if v is not None})
        return cls.from_env(merged)

    def workload(self) -> str:
        """The query's size as asked for, for the producer's first line."""
        if self.duckdb_rows is not None:
            return f"rows={self.duckdb_rows}"
        seconds = "auto" if self.query_seconds is None else f"{self.query_seconds:g}s"
        return f"rows=auto (calibrated by each worker, QUERY_SECONDS={seconds})"

    def iteration_budget(self) -> float:
        """Seconds one iteration may take on a worker before it counts as late."""
        return self.duckdb_timeout + self.settle_seconds + 2 * defaults.CLEANUP_GRACE_SECONDS + 5.0
