"""Fixtures for the interpreter-build tests: most run after `scripts/lab setup` built the cache.

Bad options and bad inputs need no build: they run against a fresh, empty LAB_CACHE of their
own (which must stay empty), and again against the built cache when there is one (which must
stay exactly as it was).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import labtest
from build_helpers import VERSION, base_env, build, paths, python_source, snapshot


@pytest.fixture(scope="session")
def built() -> dict:
    """The --print-paths view of both flavours; fails in CI (skips elsewhere) if setup did not build them."""
    info = build.print_paths(VERSION, paths.FLAVOURS, os.environ)
    missing = [f for f, i in info.items() if not (i["built"] and i["venv_ready"])]
    labtest.need(not missing, f"interpreters not built for {missing}: run scripts/lab setup (or scripts/build-python) first")
    return info


@pytest.fixture
def cache_state(built):
    """A snapshot of the cache before the test; the test compares it after."""
    root = paths.cache_root(os.environ)
    before = snapshot(root)
    return lambda: (before, snapshot(root))


class Cache:
    """The LAB_CACHE a bad-input run of build-python gets, and what it held before the run."""

    def __init__(self, root: Path, extra: dict[str, str]):
        self.root, self.extra = root, extra
        self.before = snapshot(root)

    def env(self, **extra: str) -> dict[str, str]:
        """base_env() (the inputs setup ran with) pointed at this cache, plus `extra`."""
        return base_env(**self.extra, **extra)

    def state(self) -> tuple[dict, dict]:
        return self.before, snapshot(self.root)


@pytest.fixture(params=["empty", pytest.param("built", marks=pytest.mark.built)])
def bad_input_cache(request, tmp_path) -> Cache:
    """A fresh empty LAB_CACHE (no builds needed), or the built cache (skips without the 3.14 builds)."""
    if request.param == "empty":
        root = tmp_path / "fresh-cache"
        return Cache(root, {"LAB_CACHE": str(root)})
    request.getfixturevalue("built")
    return Cache(paths.cache_root(os.environ), {})


@pytest.fixture
def tarball() -> Path:
    """The CPython source tarball setup builds from (shared/vendor or PYTHON_SOURCE); needs no build."""
    path = python_source()
    labtest.need(path.is_file(), f"no CPython source tarball at {path} (set PYTHON_SOURCE or LAB_SHARED)")
    return path
