"""The worker's settings, parsed once from an explicit mapping (normally os.environ)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from . import axes, defaults, envparse
from .envparse import ConfigError

QUEUE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,63}$")


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
        url = envparse.broker_url(env, "BROKER_URL", defaults.BROKER_URL)
        connect = envparse.number(
            env, "BROKER_CONNECT_SECONDS", defaults.BROKER_CONNECT_SECONDS, defaults.BROKER_CONNECT_RANGE
        )
        options: dict = {}
        backend = (env.get("RESULT_BACKEND") or "").strip()
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
            backend = backend or f"file://{Path(folder) / 'results'}"
        elif url.startswith("memory://"):
            backend = backend or "cache+memory://"
        backend = backend or "rpc://"
        if not re.match(r"^[a-z+]+://", backend):
            raise ConfigError("RESULT_BACKEND", backend, "a Celery result backend URL such as rpc:// or file:///path")
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
    # measurement per build; app/calibrate.py). Unset: each worker measures once for itself.
    calibration_dir: str | None = None

    @property
    def cleans_up(self) -> bool:
        return self.cleanup_children or axes.STRATEGIES[self.strategy].cleans_up

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "WorkerConfig":
        env = os.environ if env is None else env
        queue = (env.get("QUEUE") or "gil").strip()
        if not QUEUE_PATTERN.match(queue):
            raise ConfigError("QUEUE", queue, "a queue name of lowercase letters, digits, '.', '+', '-' (1-64 chars)")
        # The article's and the matrix's queues imply their strategy; TIMEOUT_STRATEGY overrides it.
        spec = axes.parse_queue(queue)
        implied = spec.strategy if spec else defaults.STRATEGY
        strategy = envparse.choice(env, "TIMEOUT_STRATEGY", implied, axes.STRATEGY_NAMES)
        # A matrix queue `<build>.<strategy>.<start>` implies its start method; START_METHOD may
        # repeat it but not contradict it.
        implied_start = spec.start_method if spec else None
        start_method = envparse.optional_choice(env, "START_METHOD", axes.START_METHODS) or implied_start
        if implied_start and start_method != implied_start:
            raise ConfigError("START_METHOD", start_method, f"{implied_start} (or unset): queue {queue} implies it")
        return cls(
            queue=queue,
            worker_name=(env.get("WORKER_NAME") or queue).strip(),
            strategy=strategy,
            cleanup_children=envparse.flag(env, "CLEANUP_CHILDREN", False),
            start_method=start_method,
            settle_seconds=envparse.number(env, "SETTLE_SECONDS", defaults.SETTLE_SECONDS, defaults.SETTLE_SECONDS_RANGE),
            cleanup_grace=envparse.number(
                env, "CLEANUP_GRACE_SECONDS", defaults.CLEANUP_GRACE_SECONDS, defaults.CLEANUP_GRACE_RANGE
            ),
            duckdb_threads=envparse.integer(env, "DUCKDB_THREADS", defaults.DUCKDB_THREADS, defaults.DUCKDB_THREADS_RANGE),
            broker=BrokerConfig.from_env(env),
            calibration_dir=envparse.optional_writable_dir(env, "CALIBRATION_DIR"),
        )
