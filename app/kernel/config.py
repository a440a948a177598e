"""The worker's settings, parsed once from an explicit mapping (normally os.environ).

Each variable is read through its declaration in app/kernel/settings.py (its range, choices and default).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from . import axes, defaults
from .envparse import ConfigError
from .settings import SETTINGS


@dataclass(frozen=True)
class BrokerConfig:
    """Broker and result backend, shared by workers and the producer."""

    broker_url: str
    result_backend: str
    transport_options: dict
    connect_seconds: float

    @property
    def kind(self) -> str:
        """`rabbitmq`, `filesystem` (embedded, no server) or `memory`."""
        scheme = self.broker_url.split("://", 1)[0]
        return {"filesystem": "filesystem", "memory": "memory"}.get(scheme, "rabbitmq")

    @property
    def display_url(self) -> str:
        """The broker URL without its password, for logs and summaries."""
        parts = urlsplit(self.broker_url)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
            return parts._replace(netloc=netloc).geturl()
        return self.broker_url

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "BrokerConfig":
        url = SETTINGS["BROKER_URL"].read(env)
        connect = SETTINGS["BROKER_CONNECT_SECONDS"].read(env)
        options: dict = {}
        backend = SETTINGS["RESULT_BACKEND"].default  # unless the broker implies another
        if url.startswith(defaults.FILESYSTEM_SCHEME):
            folder = url[len(defaults.FILESYSTEM_SCHEME):]
            if not folder.startswith("/"):
                raise ConfigError("BROKER_URL", url, "filesystem:// followed by an absolute folder path")
            messages = Path(folder) / "messages"
            options = {
                "data_folder_in": str(messages),
                "data_folder_out": str(messages),
                "processed_folder": str(Path(folder) / "processed"),
                # exchange bindings (kombu writes them to ./control by default)
                "control_folder": str(Path(folder) / "control"),
                "store_processed": False,
                "polling_interval": 0.05,
            }
            backend = f"file://{Path(folder) / 'results'}"
        elif url.startswith("memory://"):
            backend = "cache+memory://"
        backend = SETTINGS["RESULT_BACKEND"].read(env, default=backend)
        return cls(broker_url=url, result_backend=backend, transport_options=options, connect_seconds=connect)

    def ensure_folders(self) -> None:
        """Create the embedded broker's folders (a no-op for RabbitMQ)."""
        for key in ("data_folder_in", "processed_folder", "control_folder"):
            if key in self.transport_options:
                Path(self.transport_options[key]).mkdir(parents=True, exist_ok=True)
        if self.result_backend.startswith("file://"):
            Path(self.result_backend[len("file://"):]).mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class WorkerConfig:
    queue: str
    worker_name: str
    strategy: str
    cleanup_children: bool
    start_method: str | None
    settle_seconds: float
    cleanup_grace: float
    duckdb_threads: int
    broker: BrokerConfig
    # CALIBRATION_DIR: a folder where the run's workers share the query's measured speed (one
    # measurement per build; app/measure/calibrate.py). Unset: each worker measures once for itself.
    calibration_dir: str | None = None
    # CONNECTION: per-call (each call opens and closes its DuckDB connection) or reused (app/strategies.py)
    connection: str = "per-call"
    # the Celery pool its queue names (app/kernel/axes.py); None: a queue outside the grammar, any pool
    pool: str | None = None
    # WORKLOAD: the C call it times out (app/kernel/workload_axis.py); the queue implies it
    workload: str = axes.DEFAULT_WORKLOAD

    @property
    def cleans_up(self) -> bool:
        return self.cleanup_children or axes.STRATEGIES[self.strategy].cleans_up

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "WorkerConfig":
        env = os.environ if env is None else env
        queue = SETTINGS["QUEUE"].read(env)
        # The article's and the matrix's queues imply their strategy; TIMEOUT_STRATEGY overrides it.
        spec = axes.parse_queue(queue)
        implied = spec.strategy if spec else defaults.STRATEGY
        strategy = SETTINGS["TIMEOUT_STRATEGY"].read(env, default=implied)
        # A matrix queue `<build>.<strategy>.<start>` implies its start method; START_METHOD may
        # repeat it but not contradict it.
        implied_start = spec.start_method if spec else None
        start_method = SETTINGS["START_METHOD"].read(env) or implied_start
        if implied_start and start_method != implied_start:
            raise ConfigError("START_METHOD", start_method, f"{implied_start} (or unset): queue {queue} implies it")
        implied_workload = spec.workload if spec else axes.DEFAULT_WORKLOAD
        workload = SETTINGS["WORKLOAD"].read(env, default=implied_workload)
        if spec and queue not in axes.ARTICLE_WORKERS and workload != implied_workload:
            raise ConfigError("WORKLOAD", workload, f"{implied_workload} (or unset): queue {queue} implies it")
        if not axes.STRATEGIES[strategy].runs_on(workload):
            raise ConfigError("TIMEOUT_STRATEGY", strategy, f"a strategy {workload} has a stop for: {workload} has no "
                                                            f"{axes.STRATEGIES[strategy].stop} (docs/workloads.md)")
        connection = SETTINGS["CONNECTION"].read(env)
        if connection != "per-call" and axes.STRATEGIES[strategy].per_call_connection:
            raise ConfigError("CONNECTION", connection, f"per-call with {strategy}: its connection lives in a task "
                                                        "process or thread started per call, which it cannot outlive")
        return cls(
            queue=queue,
            worker_name=SETTINGS["WORKER_NAME"].read(env, default=queue),
            strategy=strategy,
            cleanup_children=SETTINGS["CLEANUP_CHILDREN"].read(env),
            start_method=start_method,
            settle_seconds=SETTINGS["SETTLE_SECONDS"].read(env),
            cleanup_grace=SETTINGS["CLEANUP_GRACE_SECONDS"].read(env),
            duckdb_threads=SETTINGS["DUCKDB_THREADS"].read(env),
            broker=BrokerConfig.from_env(env),
            calibration_dir=SETTINGS["CALIBRATION_DIR"].read(env),
            connection=connection,
            pool=spec.pool if spec else None,
            workload=workload,
        )
