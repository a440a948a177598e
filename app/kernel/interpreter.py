"""What the running interpreter is: version, build flavour, GIL state, start method."""

from __future__ import annotations

import multiprocessing
import platform
import sys
import sysconfig


def build_flavour() -> str:
    """`nogil` for a free-threaded (--disable-gil) build, else `gil`."""
    return "nogil" if sysconfig.get_config_var("Py_GIL_DISABLED") else "gil"


def gil_enabled() -> bool:
    """Whether the GIL is on right now (always True before 3.13 and on GIL builds)."""
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


def package_version(name: str | None) -> str | None:
    """The installed version of a distribution (a timeout library's), or None: none asked, or not installed."""
    from importlib import metadata

    try:
        return metadata.version(name) if name else None
    except metadata.PackageNotFoundError:
        return None


def describe() -> dict:
    """Facts every record carries. Call after importing duckdb: that import can turn the GIL on."""
    import duckdb

    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "build": build_flavour(),
        "gil_enabled": gil_enabled(),
        "start_method": multiprocessing.get_start_method(),
        "duckdb": duckdb.__version__,
    }
