"""The worker side of the lab: a Celery app whose task times out a DuckDB query.

`celery -A app worker` finds the Celery app in the submodule app/celery.py (Celery looks there
when the package has no `app` or `celery` attribute); its tasks are in app/tasks.py. Importing
the package, or app.kernel.defaults, app.kernel.axes, app.kernel.envparse, app.kernel.procfs, app.kernel.config, imports neither
Celery nor DuckDB: the producer and the host scripts use them.
"""
