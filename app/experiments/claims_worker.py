"""The lab's worker plus one task for `scripts/lab claims`: `celery -A app.experiments.claims_worker worker ...`.

`claims.leak_demo_children_allowed` is `tasks.leak_demo`, run after clearing the pool process's
daemon flag. Celery's prefork pool processes are daemonic, so the multiprocessing fallback of
timeout-decorator cannot start a process there ("daemonic processes are not allowed to have
children"); clearing the flag is the workaround passed around in Celery issues. The claims run
uses it to see what `--max-tasks-per-child` does with the processes a timed-out call leaves
behind once they can exist in a prefork pool at all. The lab's own workers never load this.
"""

from __future__ import annotations

import multiprocessing

from .. import tasks
from ..celery import app  # noqa: F401  (`celery -A app.experiments.claims_worker` finds the app here)


@app.task(name="claims.leak_demo_children_allowed")
def leak_demo_children_allowed(iteration: int, rows: int, timeout: float, run_id: str | None = None) -> dict:
    # billiard makes its pool process multiprocessing's current process; the check in
    # multiprocessing.Process.start() reads this flag.
    multiprocessing.current_process()._config["daemon"] = False
    record = tasks.leak_demo(iteration, rows, timeout, run_id)
    record["children_allowed"] = True
    return record
