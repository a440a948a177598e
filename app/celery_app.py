"""The worker's Celery app under its former module name, for `from .celery_app import app` in
app/claims_worker.py: the app itself is app/celery.py's. Remove this once that import reads `.celery`.
"""

from .celery import app  # noqa: F401
