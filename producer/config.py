"""The producer's settings: environment first, CLI flags on top, validated before anything runs.

The variables, their flags and their help are declared in app/kernel/settings.py.
"""

from __future__ import annotations

import argparse
import os
import re
import time
import uuid
from dataclasses import dataclass
from typing import Mapping, Sequence

from app.kernel import defaults, settings
from app.kernel.config import BrokerConfig
from app.kernel.settings import SETTINGS

# CLI flag -> environment variable it overrides (each variable's `flag` in app/kernel/settings.py).
FLAGS = settings.producer_flags()
RUN_ID_PATTERN = re.compile(settings.RUN_ID_PATTERN)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, like every other bad input
        accepted = ", ".join(f"{flag} {var}" for flag, var in FLAGS.items())
        self.exit(2, f"producer: {message} (expected flags: {accepted})\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m producer", description="Enqueue lab iterations and collect their records.",
                epilog="Each flag overrides the environment variable it names; README.md, Settings.")
    for flag, var in FLAGS.items():
        p.add_argument(flag, dest=var, metavar=var, help=SETTINGS[var].describe().replace("%", "%%"))
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
        run_id = SETTINGS["RUN_ID"].read(env, default=time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4])
        results_dir = SETTINGS["RESULTS_DIR"].read(env)
        return cls(
            iterations=SETTINGS["ITERATIONS"].read(env),
            duckdb_rows=SETTINGS["DUCKDB_ROWS"].read(env),
            duckdb_timeout=SETTINGS["DUCKDB_TIMEOUT"].read(env),
            query_seconds=SETTINGS["QUERY_SECONDS"].read(env),
            target_queues=SETTINGS["TARGET_QUEUES"].read(env),
            results_dir=results_dir,
            run_id=run_id,
            result_grace=SETTINGS["RESULT_GRACE_SECONDS"].read(env),
            settle_seconds=SETTINGS["SETTLE_SECONDS"].read(env),
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
