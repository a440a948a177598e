"""Host-side tooling of the lab: building interpreters, running the lab natively, Docker bootstrap.

Runs on any CPython >= 3.10 with the standard library only, so it works before any venv exists.
"""
