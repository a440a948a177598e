"""The worker side of the lab: a Celery app whose task times out a DuckDB query.

`celery -A app worker` finds the Celery app in the submodule app/celery.py (Celery looks there
when the package has no `app` or `celery` attribute); its tasks are in app/tasks.py.

- app/kernel/: standard library only (settings, defaults, the registry, config parsing), imported
  by the producer and the host scripts too; importing it, or this package, loads neither Celery
  nor DuckDB.
- app/measure/: what the worker measures around the call (probe, calibration, followers, workloads).
- app/experiments/: the claims' and the benchmarks' experiments, run in the lab's venvs.
"""
