"""The worker side of the lab: a Celery app whose task times out a DuckDB query.

`celery -A app worker` finds the Celery app as the attribute `app.app`. It is created on first
access (PEP 562), so the producer and the host scripts can import `app.defaults` and
`app.envparse` without importing Celery or DuckDB.
"""


def __getattr__(name: str):
    if name in ("app", "celery"):
        from .celery_app import app

        return app
    raise AttributeError(name)
