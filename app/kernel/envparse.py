"""Parse settings from an explicit mapping (usually os.environ) into typed values.

Every reader of the environment goes through these functions (by way of its variable's entry in
app/kernel/settings.py, which says which function and with what range), so every bad value fails the
same way: one `ConfigError` whose message names the variable, the value and the accepted range.
Entry points print that message as one line and exit with status 2. The `*_expected` helpers
give that "accepted" text on its own, for the usage texts that list the variables.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Iterable, Mapping


class ConfigError(ValueError):
    """A setting has a value outside its accepted range."""

    def __init__(self, name: str, value: object, expected: str):
        self.name = name
        self.value = value
        self.expected = expected
        super().__init__(f"{name}={value!r}: expected {expected}")


def _raw(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


AUTO = "auto"


def _given(env: Mapping[str, str], name: str, auto: bool) -> tuple[str | None, bool]:
    """(the raw value or None when unset, whether it is the word `auto` where that is allowed)."""
    raw = _raw(env, name)
    return raw, auto and raw is not None and raw.lower() == AUTO


def integer_expected(bounds: tuple[int, int], auto: bool = False) -> str:
    lo, hi = bounds
    return f"an integer from {lo} to {hi}" + (f", or {AUTO}" if auto else "")


def number_expected(bounds: tuple[float, float], unit: str = "seconds", exclusive_low: bool = False,
                    auto: bool = False) -> str:
    lo, hi = bounds
    low_word = "greater than" if exclusive_low else "from"
    return f"a number {low_word} {lo:g} to {hi:g} ({unit})" + (f", or {AUTO}" if auto else "")


def choice_expected(choices: Iterable[str], optional: bool = False) -> str:
    return "one of " + ", ".join(choices) + (" (or unset)" if optional else "")


def list_expected(choices: Iterable[str]) -> str:
    return "a comma-separated list of " + ", ".join(choices)


def url_expected(schemes: Iterable[str]) -> str:
    return "a URL starting with " + ", ".join(schemes)


FLAG_EXPECTED = "1 or 0 (also true/false, yes/no, on/off)"
WRITABLE_DIR_EXPECTED = "a folder that is (or can be created as) a writable directory"
EXISTING_DIR_EXPECTED = "an existing folder (or unset)"


def integer(env: Mapping[str, str], name: str, default: int | None, bounds: tuple[int, int], *,
            auto: bool = False) -> int | None:
    """An integer within `bounds`; with `auto`, the word `auto` is accepted too and gives None."""
    lo, hi = bounds
    expected = integer_expected(bounds, auto)
    raw, is_auto = _given(env, name, auto)
    if raw is None or is_auto:
        return None if is_auto else default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        raise ConfigError(name, raw, expected) from None
    if not lo <= value <= hi:
        raise ConfigError(name, raw, expected)
    return value


def number(
    env: Mapping[str, str],
    name: str,
    default: float | None,
    bounds: tuple[float, float],
    *,
    unit: str = "seconds",
    exclusive_low: bool = False,
    auto: bool = False,
) -> float | None:
    """A finite number within `bounds`; with `auto`, the word `auto` is accepted too and gives None."""
    lo, hi = bounds
    expected = number_expected(bounds, unit, exclusive_low, auto)
    raw, is_auto = _given(env, name, auto)
    if raw is None or is_auto:
        return None if is_auto else default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, raw, expected) from None
    if math.isnan(value) or math.isinf(value):
        raise ConfigError(name, raw, expected)
    if value < lo or value > hi or (exclusive_low and value == lo):
        raise ConfigError(name, raw, expected)
    return value


def choice(env: Mapping[str, str], name: str, default: str, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    raw = _raw(env, name)
    if raw is None:
        return default
    if raw not in choices:
        raise ConfigError(name, raw, choice_expected(choices))
    return raw


def optional_choice(env: Mapping[str, str], name: str, choices: Iterable[str]) -> str | None:
    """Like `choice`, but unset means None (e.g. START_METHOD: the interpreter's default)."""
    choices = tuple(choices)
    raw = _raw(env, name)
    if raw is None:
        return None
    if raw not in choices:
        raise ConfigError(name, raw, choice_expected(choices, optional=True))
    return raw


def flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = _raw(env, name)
    if raw is None:
        return default
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(name, raw, FLAG_EXPECTED)


def choice_list(
    env: Mapping[str, str], name: str, default: Iterable[str], choices: Iterable[str]
) -> tuple[str, ...]:
    """A comma-separated list of names, each from `choices` (anything with `in`: axes.QUEUE_NAMES
    is a grammar), no duplicates, at least one."""
    choices = choices if hasattr(choices, "__contains__") else tuple(choices)
    expected = list_expected(choices)
    raw = _raw(env, name)
    if raw is None:
        return tuple(default)
    items = [item.strip() for item in raw.split(",")]
    if not items or any(not item for item in items):
        raise ConfigError(name, raw, expected)
    for item in items:
        if item not in choices:
            raise ConfigError(name, raw, f"{expected} ({item!r} is not one)")
    if len(set(items)) != len(items):
        raise ConfigError(name, raw, f"{expected}, each at most once")
    return tuple(items)


def url(env: Mapping[str, str], name: str, default: str | None, schemes: Iterable[str]) -> str | None:
    """A URL starting with one of `schemes` (e.g. BROKER_URL: amqp://, filesystem://, ...)."""
    schemes = tuple(schemes)
    raw = _raw(env, name)
    if raw is None:
        return default
    if not raw.startswith(schemes):
        raise ConfigError(name, raw, url_expected(schemes))
    return raw


def text(env: Mapping[str, str], name: str, default: str | None, pattern: str | None, expected: str) -> str | None:
    """A word matching `pattern` (e.g. RUN_ID, QUEUE); unset gives `default`, which must match too."""
    raw = _raw(env, name)
    value = default if raw is None else raw
    if value is not None and pattern is not None and not re.match(pattern, value):
        raise ConfigError(name, value, expected)
    return value


def writable_dir(env: Mapping[str, str], name: str, default: str) -> str:
    """A folder that is, or can be created as, a writable directory: found bad now, not after a run."""
    raw = _raw(env, name)
    value = default if raw is None else raw
    path = Path(value).expanduser().absolute()
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(name, value, WRITABLE_DIR_EXPECTED)
    return value


def optional_writable_dir(env: Mapping[str, str], name: str) -> str | None:
    """Like `writable_dir`, but unset means None."""
    return None if _raw(env, name) is None else writable_dir(env, name, "")


def existing_dir(env: Mapping[str, str], name: str) -> str | None:
    """An optional folder that must exist (e.g. WHEELHOUSE); None when unset."""
    raw = _raw(env, name)
    if raw is not None and not Path(raw).expanduser().is_dir():
        raise ConfigError(name, raw, EXISTING_DIR_EXPECTED)
    return raw
