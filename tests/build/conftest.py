"""Fixtures for the interpreter-build tests: they run after `scripts/lab setup` built the cache."""

from __future__ import annotations

import os

import pytest

from build_helpers import VERSION, build, paths, snapshot


@pytest.fixture(scope="session")
def built() -> dict:
    """The --print-paths view of both flavours; fails in CI (skips elsewhere) if setup did not build them."""
    info = build.print_paths(VERSION, paths.FLAVOURS, os.environ)
    missing = [f for f, i in info.items() if not (i["built"] and i["venv_ready"])]
    if missing:
        msg = f"interpreters not built for {missing}: run scripts/lab setup (or scripts/build-python) first"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return info


@pytest.fixture
def cache_state(built):
    """A snapshot of the cache before the test; the test compares it after."""
    root = paths.cache_root(os.environ)
    before = snapshot(root)
    return lambda: (before, snapshot(root))
