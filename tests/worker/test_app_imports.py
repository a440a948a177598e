"""The app package's imports: what the producer and host scripts load, how `celery -A app` finds the app.

Each check runs in a fresh interpreter (this test session has long since imported Celery and DuckDB).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import labtest

# What the producer and the host scripts (scripts/labctl) import from the worker side.
LIGHT_MODULES = ("app", "app.kernel.defaults", "app.kernel.axes", "app.kernel.envparse", "app.kernel.procfs", "app.kernel.config", "producer.config")
WORKER_VARS = ("QUEUE", "WORKER_NAME", "TIMEOUT_STRATEGY", "START_METHOD", "CLEANUP_CHILDREN", "SETTLE_SECONDS",
               "CLEANUP_GRACE_SECONDS", "DUCKDB_THREADS", "CALIBRATION_DIR", "BROKER_URL", "RESULT_BACKEND",
               "BROKER_CONNECT_SECONDS")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in WORKER_VARS and not k.startswith("PYTEST_")}
    env.update({"BROKER_URL": "memory://", "QUEUE": "gil.process"}, **extra)
    return env


def _python(code: str, **extra: str) -> dict:
    """Run `code` in a fresh interpreter from the repository root; it prints one JSON line."""
    done = subprocess.run([sys.executable, "-c", code], cwd=labtest.REPO, env=_env(**extra),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _celery(*args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "celery", *args], cwd=labtest.REPO, env=_env(**extra),
                          capture_output=True, text=True, timeout=120)


def test_light_modules_import_neither_celery_nor_duckdb():
    """The modules the producer and host scripts import load without Celery, kombu or DuckDB."""
    code = (f"import importlib, json, sys\nfor m in {LIGHT_MODULES!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('celery', 'kombu', 'duckdb'))))")
    assert _python(code) == []


def test_kernel_imports_with_the_standard_library_alone():
    """Every module of app/kernel/ loads in an interpreter that has no site-packages at all (no Celery, DuckDB or psutil)."""
    names = sorted(f"app.kernel.{p.stem}" for p in (labtest.REPO / "app" / "kernel").glob("*.py") if p.stem != "__init__")
    assert len(names) >= 11, names  # axes, config, defaults, envparse, interpreter, procfs, results_io, settings, ...
    code = (f"import importlib, json, sys\nfor m in {names!r}: importlib.import_module(m)\n"
            "outside = {m.split('.')[0] for m in sys.modules} - set(sys.stdlib_module_names)\n"
            "print(json.dumps(sorted(outside - {'__main__', '__mp_main__'})))")
    # -S: no site-packages on sys.path; -E: no PYTHONPATH; the repository root comes from the cwd ('' for -c)
    done = subprocess.run([sys.executable, "-S", "-E", "-c", code], cwd=labtest.REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["app"]


def test_celery_dash_a_app_finds_the_worker_app():
    """`celery -A app` resolves to the worker's app (app/celery.py), configured from the environment, tasks included."""
    done = _celery("-A", "app", "report", QUEUE="nogil.thread")
    assert done.returncode == 0, done.stderr
    assert "include: ['app.tasks']" in done.stdout
    assert "task_default_queue: 'nogil.thread'" in done.stdout
    for target in ("app", "app.experiments.claims_worker"):
        done = _celery("-A", target, "worker", "--help")
        assert done.returncode == 0 and "Start worker instance." in done.stdout, (target, done.stderr)


def test_tasks_module_registers_leak_demo_without_importing_the_app_module():
    """Importing app.tasks loads no app/celery.py, and the worker's app then has tasks.leak_demo."""
    code = ("import json, sys\nimport app.tasks\nseparate = 'app.celery' not in sys.modules\n"
            "from app.celery import app\n"
            "print(json.dumps([separate, 'tasks.leak_demo' in app.tasks, app.tasks['tasks.leak_demo'].app is app]))")
    assert _python(code) == [True, True, True]


def test_worker_start_up_imports_the_included_tasks():
    """The worker's loader imports the app's include, app.tasks, which registers tasks.leak_demo on it."""
    code = ("import json, sys\nfrom app.celery import app\nbefore = 'app.tasks' in sys.modules\n"
            "app.loader.import_default_modules()\n"
            "print(json.dumps([before, 'app.tasks' in sys.modules, 'tasks.leak_demo' in app.tasks]))")
    assert _python(code) == [False, True, True]
