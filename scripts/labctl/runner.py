"""One runner for the lab's local processes: `scripts/lab run|quick` (native.py) and `scripts/lab claims` (claims.py).

`with LocalRun(run_id, env, logs=...) as run:` owns what one run starts on this machine:

- the broker (`run.start_broker()`): the one in BROKER_URL, else a private RabbitMQ node when
  rabbitmq-server is installed (LAB_BROKER auto or rabbitmq), else kombu's filesystem transport
  (LAB_BROKER filesystem, or auto without RabbitMQ), which needs no server;
- the base environment of every process (`run.env`): the caller's, without what would change how
  an interpreter runs, plus the run's marker (procs.MARKER), PYTHONPATH and the broker's URL;
- Celery workers from WorkerSpecs, all with the same argv (the pool from app/kernel/axes.py POOLS), and
  their readiness (`run.wait_ready`); any other process of the run (`run.spawn`), and the answer
  of a helper that prints one result line (`run.result`: experiments, senders, calibrations);
- the state record (cache/run/<run>.json): every pid it started and its owner, this process, so
  `scripts/lab down` leaves the run alone while it is alive and stops what it recorded after a crash.

However the block ends (return, exception, Ctrl-C), the run then stops exactly what it started
and did not stop yet, by pid (workers first, the broker last), sweeps any process still carrying
its marker (task processes, forkservers, epmd; procs.sweep), and removes its work folder and its
state record. Thread-safe: claims starts jobs from several threads; once the run is stopping,
`spawn` refuses to start anything.
"""

from __future__ import annotations

import concurrent.futures
import fnmatch
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from app.kernel import axes, defaults, result_line

from . import optional, paths, procs, rabbit

READY_SECONDS = 90.0  # a worker must say " ready." within this
READY_LINE = " ready."  # Celery's `celery@host ready.` once it consumes
# Never passed on from the caller's environment: how an interpreter runs is the run's choice
# (the nogil workers set PYTHON_GIL=0 themselves), and a venv's activation means nothing to another one.
ALWAYS_DROPPED = ("PYTHON_GIL", "VIRTUAL_ENV")


class UsageError(Exception):
    """Bad input: printed as one line, exit status 2, nothing started."""


@dataclass(frozen=True)
class WorkerSpec:
    """One Celery worker: the queue it consumes, on which build, with which strategy and pool."""

    queue: str
    build: str  # which interpreter runs it: gil or nogil
    strategy: str
    pool: str  # a key of axes.POOLS: the pool the strategy needs
    name: str = ""  # WORKER_NAME and the node's name (<name>@<host>); "": the queue's
    app: str = "app"  # the Celery app module (`-A`); app.experiments.claims_worker adds the claims' own task
    start_method: str | None = None  # None: the worker derives it from its queue (else the interpreter's default)
    max_tasks_per_child: int | None = None
    concurrency: int = 1  # --concurrency, for the pools that take it
    gil_off: bool = True  # nogil: PYTHON_GIL=0, as the lab's nogil workers run
    workload: str = axes.DEFAULT_WORKLOAD  # the C call it times out (the queue's, for the grammar's queues)
    workload_env: bool = False  # set WORKLOAD: a queue outside the grammar implies none

    @property
    def needs(self) -> tuple[str, ...]:
        """The optional modules the worker's interpreter must have: its pool's and its workload's."""
        workload = axes.WORKLOADS[self.workload]
        return tuple(m for m in (axes.POOLS[self.pool].package, workload.module if workload.package else None) if m)

    @property
    def worker_name(self) -> str:
        return self.name or self.queue

    def env(self) -> dict[str, str]:
        # the worker derives CLEANUP_CHILDREN (and without START_METHOD the start method) from the strategy and the queue
        extra = {"QUEUE": self.queue, "WORKER_NAME": self.worker_name, "TIMEOUT_STRATEGY": self.strategy}
        if self.start_method:
            extra["START_METHOD"] = self.start_method
        if self.workload_env:
            extra["WORKLOAD"] = self.workload
        if self.build == "nogil" and self.gil_off:
            extra["PYTHON_GIL"] = "0"  # keep the GIL off after `import duckdb` (it re-enables it otherwise)
        return extra

    def argv(self, python: str, hostname: str) -> list[str]:
        recycle = [f"--max-tasks-per-child={self.max_tasks_per_child}"] if self.max_tasks_per_child else []
        return [
            python, "-m", "celery", "-A", self.app, "worker", *axes.POOLS[self.pool].argv(self.concurrency), *recycle, "-Q", self.queue,
            "-n", f"{self.worker_name}@{hostname}", "--loglevel=INFO", "--without-gossip", "--without-mingle",
        ]


def command(prog: str, parse: Callable[[], object], act: Callable[[object], int]) -> int:
    """A host command's exit status, the same for every `scripts/lab` command and bench: `act(parse())`.

    -h/--help (argparse's SystemExit while parsing) exits with its code; bad input (ConfigError,
    UsageError) is one line `prog: ...` and 2; a component that failed to start or run
    (RuntimeError: everything the run started is stopped already) one line and 1; Ctrl-C 130.
    """
    from app.kernel.envparse import ConfigError

    try:
        try:
            parsed = parse()
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 0
        return act(parsed)
    except (ConfigError, UsageError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def missing_modules(python: str, modules: Iterable[str]) -> dict[str, str]:
    """The `modules` that `python` cannot import, each with a short reason for the run's line (what
    scripts/labctl/optional.py recorded when it was left out of the venv, e.g. "no gevent
    (gevent==26.9.0: no wheel for this interpreter)")."""
    modules = tuple(modules)
    if not modules:
        return {}
    probe = ("import importlib.util, json, sys; "
             "print(json.dumps([m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]))")
    done = subprocess.run([python, "-c", probe, *modules], capture_output=True, text=True, timeout=60)
    absent = json.loads(done.stdout) if done.returncode == 0 else list(modules)
    record_path = Path(python).parent.parent / optional.RECORD
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    out = {}
    for module in absent:
        why = next((f"{pin}: {reason}" for pin, reason in record.get("missing", {}).items()
                    if pin.split("==")[0] == module), "not installed")
        out[module] = f"no {module} ({why})" if why != "not installed" else f"{module} is not installed"
    return out


def base_env(env: Mapping[str, str], run_id: str, drop: Iterable[str] = ()) -> dict[str, str]:
    """What every process of run `run_id` starts from: `env` without ALWAYS_DROPPED and `drop`
    (names, or shell-style patterns such as PYTEST_*), plus the run's marker, PYTHONPATH (the
    repository) and PYTHONUNBUFFERED (the logs show each line when it is written)."""
    patterns = (*ALWAYS_DROPPED, *drop)
    out = {k: v for k, v in env.items() if not any(fnmatch.fnmatchcase(k, p) for p in patterns)}
    out.update({procs.MARKER: run_id, "PYTHONPATH": str(paths.REPO), "PYTHONUNBUFFERED": "1"})
    return out


class LocalRun:
    """The processes of one run on this machine; a context manager (see the module's docstring).

    `broker`: auto | rabbitmq | filesystem (LAB_BROKER, validated by the caller); `broker_url`:
    a broker to use instead of starting one. `grace`: seconds a process has after SIGTERM when
    the run stops it at the end. `say` gets the run's lines, each starting with `tag`.
    """

    def __init__(self, run_id: str, env: Mapping[str, str], *, logs: Path, broker: str = "auto",
                 broker_url: str | None = None, drop: Iterable[str] = (), grace: float = 10.0,
                 say: Callable[[str], None] = print, tag: str = "[lab]"):
        self.run_id, self.logs, self.grace, self.say, self.tag = run_id, Path(logs), grace, say, tag
        self._broker_choice, self._broker_given = broker, broker_url or None
        run_dir = paths.cache_root(env) / "run"
        self.work = run_dir / run_id  # the run's private files (broker data, calibration); removed at the end
        self.env = base_env(env, run_id, drop)
        self.hostname = f"{socket.gethostname()}-{run_id}"
        self.broker_url: str | None = None
        self.broker_desc: str | None = None
        self.started: list[procs.Started] = []
        self._broker: procs.Started | None = None
        self._stopped: set[tuple[int, int | None]] = set()
        self._lock = threading.Lock()
        self._closing = False
        self.state = procs.StateFile(run_dir / f"{run_id}.json")
        # owner: this process; `scripts/lab down` (native.down) leaves the run alone while it is alive
        self.record = {"run_id": run_id, "work": str(self.work), "started": [],
                       "owner": {"pid": os.getpid(), "started": procs.start_time(os.getpid())}}

    def __enter__(self) -> "LocalRun":
        self.state.write(self.record)
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- starting ---------------------------------------------------------------------------------

    def _remember(self, p: procs.Started) -> procs.Started:
        """Record `p` (the caller holds the lock)."""
        self.started.append(p)
        self.record["started"].append(p.as_dict())
        self.state.write(self.record)
        return p

    def spawn(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None,
              log: str | None = None) -> procs.Started:
        """Start `argv` with the run's environment plus `env`, output to logs/<log>.log (default:
        the name, spaces as dashes), in a session of its own; recorded before this returns."""
        env = {**self.env, **(env or {})}
        path = self.logs / f"{log or name.replace(' ', '-')}.log"
        with self._lock:
            if self._closing:
                raise RuntimeError(f"{name}: not started, the run is stopping")
            return self._remember(procs.spawn(name, list(argv), env, path, cwd=paths.REPO))

    def start_worker(self, spec: WorkerSpec, python: str, env: Mapping[str, str] | None = None,
                     name: str | None = None) -> procs.Started:
        """Start the Celery worker `spec` on `python` (name: `worker <queue>`, log worker-<queue>.log)."""
        return self.spawn(name or f"worker {spec.queue}", spec.argv(python, self.hostname), {**spec.env(), **(env or {})})

    def wait_ready(self, workers: Iterable[procs.Started], timeout: float = READY_SECONDS) -> None:
        """Wait until each worker says it is ready; RuntimeError with its log's tail if one dies or is late."""
        for p in workers:
            procs.wait_for_line(p, [READY_LINE], timeout=timeout)

    def start_broker(self) -> tuple[str, str]:
        """The broker's URL and a description of it; every process started afterwards gets the URL."""
        if self._broker_given:
            url, desc = self._broker_given, "given by BROKER_URL"
        elif self._broker_choice in ("auto", "rabbitmq") and rabbit.available():
            self.say(f"{self.tag} starting a private RabbitMQ node ...")
            node, url = rabbit.start(self.work / "rabbitmq", self.env, self.run_id)
            with self._lock:
                self._broker = self._remember(node)
            desc = f"private RabbitMQ node (pid {node.pid})"
        elif self._broker_choice == "rabbitmq":
            raise UsageError("LAB_BROKER=rabbitmq: rabbitmq-server is not installed (apt-get install rabbitmq-server)")
        else:
            url = f"{defaults.FILESYSTEM_SCHEME}{self.work / 'broker'}"
            desc = "embedded (kombu filesystem transport, no server)"
        self.env["BROKER_URL"] = url
        self.broker_url, self.broker_desc = url, desc
        self.say(f"{self.tag} broker: {desc}")
        return url, desc

    # --- stopping ---------------------------------------------------------------------------------

    def stop(self, p: procs.Started, grace: float | None = None) -> str:
        """Stop one process of the run now (procs.stop: its group, SIGKILL after `grace`); how it ended."""
        how = procs.stop(p, grace=self.grace if grace is None else grace)
        with self._lock:
            self._stopped.add((p.pid, p.started))
        return how

    def result(self, p: procs.Started, timeout: float, watch: procs.Started | None = None) -> dict:
        """The result line helper `p` printed (app/kernel/result_line.py), once it exited.

        procs.wait_exit: TimeoutError after `timeout`; RuntimeError as soon as `watch` (the worker `p`
        talks to) is gone. Whatever is left of `p`'s group is stopped however the wait ends. RuntimeError
        naming its exit and its log's last lines when it printed no result."""
        try:
            code = procs.wait_exit(p, timeout, watch)
        finally:
            self.stop(p, grace=2.0)
        output = p.output()
        try:
            return result_line.read(output)
        except result_line.Missing:
            raise RuntimeError(f"{p.name} gave no result ({procs.exit_text(code)}): "
                               + " | ".join(procs.tail(output, 5).splitlines())) from None

    def close(self) -> list[int]:
        """Stop what the run started and did not stop yet, workers first and the broker last, then
        sweep its marker; remove its work folder and state record. The pids the sweep stopped."""
        with self._lock:
            self._closing = True
            running = [p for p in self.started if (p.pid, p.started) not in self._stopped]
        # Workers first, all at once (each warm shutdown, up to the grace, overlaps the others'), said in
        # the order they were started; the broker last.
        workers = [p for p in running if p is not self._broker]
        with concurrent.futures.ThreadPoolExecutor(max(1, len(workers))) as ex:
            hows = list(ex.map(self.stop, workers))
        for p, how in zip(workers, hows):
            self.say(f"{self.tag} {p.name} (pid {p.pid}): {how}")
        for p in running:
            if p is self._broker:
                self.say(f"{self.tag} {p.name} (pid {p.pid}): {self.stop(p)}")
        names = {pid: procs.name(pid) for pid in procs.marked(self.run_id)}
        left = procs.sweep(self.run_id)
        if left:
            what = ", ".join(f"{names.get(pid, '?')} {pid}" for pid in left)
            self.say(f"{self.tag} stopped {len(left)} leftover process(es) of run {self.run_id}: {what}")
        shutil.rmtree(self.work, ignore_errors=True)
        self.state.remove()
        return left
