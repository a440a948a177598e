"""Host-side tooling of the lab: building interpreters, running the lab natively, Docker bootstrap.

Runs on any CPython >= 3.10 with the standard library only, so it works before any venv exists.
It shares the worker side's standard-library modules (app/kernel/) and so runs with both scripts/
and the repository on the path: `python -m labctl`, as scripts/lab starts it (launch.py puts them
on PYTHONPATH), or in tests, pyproject.toml's pytest `pythonpath`.

- cli.py: `scripts/lab COMMAND`, the dispatcher; __main__.py runs it.
- the commands: build.py (setup), native.py (run, quick, down), claims.py (with claims_report/,
  its verdicts and table), pools.py.
- what they share: parsing.py (arguments), venvs.py (this machine's venvs), runner.py (a run's
  processes), procs.py (one process), rabbit.py, paths.py, optional.py.
- launch.py: how the files run by their path become modules; compose_matrix.py, a file run by its
  path, renders docker-compose.matrix.yml.
"""
