"""Arguments as every `scripts/lab` command (and bench/) reads them.

Every command parses its arguments with `Parser` (argparse): `scripts/lab COMMAND --help` (or
`-h`) prints that command's usage and exits 0; bad input is one line naming what is wrong and
what is accepted, exit status 2, and nothing is started. A list option takes `all` or a
comma-separated list of its choices (`choices`).
"""

from __future__ import annotations

import argparse
import re
from typing import Sequence

from app.kernel import envparse
from app.kernel.envparse import ConfigError

from .runner import UsageError

# command -> what it does (the top-level usage, and each command's own --help)
COMMANDS = {
    "quick": "the gil and gil-clean workers on this machine's python3 (no build), in a minute",
    "setup": "build CPython 3.14 (gil and free-threaded) and their venvs (scripts/build-python)",
    "run": "the full lab: broker, gil / gil-clean / nogil workers, producer, summary",
    "down": "stop anything a crashed run left behind",
    "claims": "measure the article's claims and write results/<run>/claims.md",
    "pools": "what each Celery pool does with time limits, signals and processes: results/<run>/pools.md",
    "libraries": "the timeout libraries from PyPI in real workers, every pool: results/<run>/libraries.md",
}
ALL = "all"  # as the value of a list option: every choice


class _Formatter(argparse.HelpFormatter):
    """argparse's help, but never a line break inside a hyphenated name (`wrapt-process`, `func-timeout`)."""

    def _split_lines(self, text, width):
        import textwrap

        return textwrap.wrap(self._whitespace_matcher.sub(" ", text).strip(), width, break_on_hyphens=False)

    def _fill_text(self, text, width, indent):
        import textwrap

        return textwrap.fill(self._whitespace_matcher.sub(" ", text).strip(), width, initial_indent=indent,
                             subsequent_indent=indent, break_on_hyphens=False)


class RawDescriptionFormatter(_Formatter):
    """The description as written (its own line breaks), the options as _Formatter wraps them."""

    def _fill_text(self, text, width, indent):
        return "".join(indent + line for line in text.splitlines(keepends=True))


class Parser(argparse.ArgumentParser):
    """argparse as every `scripts/lab` command uses it.

    -h/--help prints the usage (`help_text` if given) and exits 0 (SystemExit). Bad input raises
    `error_type` with one line that names the option and says what is accepted; the command
    prints it and exits 2. `add_argument(..., expects="...")` states what an option's value is,
    for the line an option given without a value gets. Options must be spelled out (no
    abbreviations: `--strat` is an unknown option, not `--strategies`).
    """

    def __init__(self, *args, error_type: type[Exception] = ValueError, help_text: str | None = None,
                 **kwargs):
        self._expects: dict[str, str] = {}
        self.error_type, self.help_text = error_type, help_text
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, expects: str | None = None, **kwargs):
        action = super().add_argument(*args, **kwargs)
        if expects:
            for flag in action.option_strings:
                self._expects[flag] = expects
        return action

    def format_help(self) -> str:
        return self.help_text.rstrip("\n") + "\n" if self.help_text is not None else super().format_help()

    def accepted(self) -> str:
        """What the command accepts, in a few words: its options, then its positional words."""
        options, helps, positionals = [], [], []
        for action in self._actions:
            if action.help is argparse.SUPPRESS:
                continue
            if action.option_strings:
                (helps if isinstance(action, argparse._HelpAction) else options).append("/".join(action.option_strings))
            elif action.metavar:
                positionals.append(f"{action.metavar} words")
        words = [*options, *helps, *positionals]
        return ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else "".join(words)

    def error(self, message: str):
        first = message.strip().splitlines()[0] if message.strip() else "bad arguments"
        unknown = re.match(r"unrecognized arguments: (.*)", first)
        if unknown:
            words = unknown.group(1).split()
            word = next((w for w in words if w.startswith("-")), words[0] if words else "?")
            raise self.error_type(f"unknown option {word.partition('=')[0]}: expected {self.accepted()}")
        bare = re.match(r"argument (\S+): expected (?:one|at least one) argument", first)
        if bare:
            flag = bare.group(1).split("/")[-1]
            what = self._expects.get(flag)
            raise self.error_type(f"{flag} needs a value" + (f": expected {what}" if what else ""))
        raise self.error_type(first)


def drop_values(argv: list[str], flags: tuple[str, ...]) -> list[str]:
    """argv without `--flag value` / `--flag=value` for the given flags (a parent's own options, before it passes the rest to its children: bench/strategies.py, bench/workloads.py)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in flags:
            skip = True
            continue
        if any(arg.startswith(f + "=") for f in flags):
            continue
        out.append(arg)
    return out


def choices(name: str, value: str, allowed: Sequence[str]) -> tuple[str, ...]:
    """The value of list option `name`: `all` (every one of `allowed`), or a comma-separated list of them, each at most once."""
    if value.strip() == ALL:
        return tuple(allowed)
    expected = f"{ALL}, or a comma-separated list of {', '.join(allowed)}"
    if not value.strip():
        raise ConfigError(name, value, expected)
    if ALL in (item.strip() for item in value.split(",")):
        raise ConfigError(name, value, f"{ALL} alone, or a comma-separated list of {', '.join(allowed)}")
    try:
        return envparse.choice_list({name: value}, name, (), allowed)
    except ConfigError as exc:
        raise ConfigError(name, exc.value, f"{ALL}, or {exc.expected}") from None


def number(flag: str, value: str | None, default: float, lo: float, hi: float, what: str = "seconds") -> float:
    """An option's number (`default` when not given), or UsageError naming it and the accepted range."""
    if value is None:
        return default
    try:
        got = float(value)
    except ValueError:
        got = float("nan")
    if not lo <= got <= hi:
        raise UsageError(f"{flag} {value}: expected {what} from {lo:g} to {hi:g}")
    return got
