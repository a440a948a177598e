"""Every setting of the lab, declared once: one `Setting` per environment variable.

In the style of environ-config: each entry says the variable's name, its kind, its default
(the value in app/kernel/defaults.py), what it accepts (the range or choices app/kernel/envparse.py enforces),
one line of help and who reads it. Everything else is made from these entries, or checked
against them by tests/worker/test_settings.py:

- parsing: WorkerConfig / BrokerConfig (app/kernel/config.py) and ProducerConfig (producer/config.py)
  read each variable with `SETTINGS[name].read(env)`, so the range in the error message is this one;
- the producer's flags (`--` + `flag`), the VARIABLE=value words of `scripts/lab run|quick`
  (reader "scripts/lab") and of `scripts/lab claims` (reader "claims", with CLAIMS_OVERRIDES),
  and every usage text that lists them;
- README.md's settings table (`markdown()`; `python3 -m app.kernel.settings --write` rewrites it);
- docker-compose.yml's pass-through (reader "compose": passed from your shell into the services
  of the readers "workers" / "producer"), and the CPython version and its SHA-256 (CPYTHON_*).

Standard library only: the producer and the host scripts import it without Celery or DuckDB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Iterable, Mapping

from . import axes, defaults, envparse

# The CPython the lab builds (scripts/lab setup, the Dockerfiles through Compose's build args) and
# the SHA-256 of its python.org tarball. Every file that repeats them is checked against these.
CPYTHON_VERSION = "3.14.7"
CPYTHON_SHA256 = "3b48dac8fb59f62eaa67ac83c1eb12bda1b7a08406dd286e252c11a66be27f81"

KINDS = ("integer", "number", "choice", "flag", "list", "url", "folder", "text")
# reader -> how the docs name it
READERS = {
    "producer": "producer",
    "workers": "workers",
    "scripts/lab": "`scripts/lab`",  # run|quick: a VARIABLE=value word, or the environment
    "claims": "`scripts/lab claims`",
    "compose": "Compose",  # docker-compose.yml passes it from your shell (or .env) into its services
    "setup": "`scripts/lab setup`",
    "docker-bootstrap": "`scripts/docker-bootstrap`",
    "images": "`docker compose build`",  # a build arg of the Dockerfiles
}
_SAME = object()


@dataclass(frozen=True)
class Setting:
    """One environment variable: what it is, what it accepts, who reads it."""

    name: str
    kind: str  # one of KINDS
    default: object  # the value when unset (None: auto, unset, or worked out by the reader: see default_doc)
    help: str  # one line: what it sets
    readers: tuple[str, ...]  # keys of READERS
    bounds: tuple | None = None  # integer, number: (lowest, highest), both accepted
    choices: tuple[str, ...] = ()  # choice, list: the names; url: the schemes it may start with
    auto: bool = False  # integer, number: the word `auto` is accepted too and reads as None
    pattern: str | None = None  # text, url: a regular expression the value must match
    expected: str | None = None  # text, url with a pattern: what the error says is accepted
    must_exist: bool = False  # folder: an existing one (else: writable, made if missing)
    flag: str | None = None  # the producer's flag, without `--`
    env: bool = True  # read from the environment too (False: claims reads it only from its command line)
    default_doc: str | None = None  # the docs' default, when the value alone does not say it (markdown)
    accepted_doc: str | None = None  # the docs' accepted, when the error's own text is too long (markdown)
    note: str = ""  # appended to the docs' accepted (markdown)
    read_note: str = ""  # appended to the docs' read-by (markdown)

    def __post_init__(self) -> None:
        problems = []
        if self.kind not in KINDS:
            problems.append(f"kind {self.kind!r} is not one of {KINDS}")
        if not set(self.readers) <= set(READERS) or not self.readers:
            problems.append(f"readers {self.readers} are not among {tuple(READERS)}")
        if (self.kind in ("integer", "number")) != (self.bounds is not None):
            problems.append("bounds go with integer and number, and only with them")
        if self.auto and self.kind not in ("integer", "number"):
            problems.append("only an integer or a number may accept `auto`")
        if self.kind in ("choice", "list") and not self.choices:
            problems.append(f"a {self.kind} needs its choices")
        if self.kind == "url" and not (self.choices or self.pattern):
            problems.append("a url needs its schemes (choices) or a pattern")
        if (self.pattern or self.kind == "text") and not self.expected:
            problems.append("a pattern (and any text) needs its expected text")
        if "\n" in self.help or not self.help:
            problems.append("help is one line")
        if problems:
            raise ValueError(f"{self.name}: " + "; ".join(problems))

    # --- parsing -------------------------------------------------------------------------------------

    def read(self, env: Mapping[str, str], default: object = _SAME):
        """The variable's value from `env` (unset or empty: `default`, else the declared one).

        Bad values raise envparse.ConfigError naming the variable and what it accepts.
        `default` is for readers whose default depends on something else (the queue's strategy,
        the cache folder, claims' --quick).
        """
        d = self.default if default is _SAME else default
        n = self.name
        if self.kind == "integer":
            return envparse.integer(env, n, d, self.bounds, auto=self.auto)
        if self.kind == "number":
            return envparse.number(env, n, d, self.bounds, auto=self.auto)
        if self.kind == "choice":
            return envparse.optional_choice(env, n, self.choices) if d is None else envparse.choice(env, n, d, self.choices)
        if self.kind == "flag":
            return envparse.flag(env, n, bool(d))
        if self.kind == "list":
            return envparse.choice_list(env, n, d, self.choices)
        if self.kind == "url" and self.choices:
            return envparse.url(env, n, d, self.choices)
        if self.kind == "folder":
            if self.must_exist:
                return envparse.existing_dir(env, n)
            return envparse.optional_writable_dir(env, n) if d is None else envparse.writable_dir(env, n, d)
        return envparse.text(env, n, d, self.pattern, self.expected)  # text, url with a pattern

    def error_expected(self) -> str:
        """What a bad value's error message says is accepted (the text app/kernel/envparse.py writes)."""
        if self.kind == "integer":
            return envparse.integer_expected(self.bounds, self.auto)
        if self.kind == "number":
            return envparse.number_expected(self.bounds, auto=self.auto)
        if self.kind == "choice":
            return envparse.choice_expected(self.choices, optional=self.default is None)
        if self.kind == "flag":
            return envparse.FLAG_EXPECTED
        if self.kind == "list":
            return envparse.list_expected(self.choices)
        if self.kind == "url" and self.choices:
            return envparse.url_expected(self.choices)
        if self.kind == "folder":
            return envparse.EXISTING_DIR_EXPECTED if self.must_exist else envparse.WRITABLE_DIR_EXPECTED
        return self.expected

    # --- the docs ------------------------------------------------------------------------------------

    def accepted(self) -> str:
        """What it accepts, as the README's table (markdown) and, via `plain`, the usage texts say it."""
        if self.accepted_doc is not None:
            text = self.accepted_doc
        elif self.kind == "integer":
            text = f"integer {_bound(self.bounds[0])}..{_bound(self.bounds[1])}"
        elif self.kind == "number":
            text = f"seconds {_bound(self.bounds[0])}..{_bound(self.bounds[1])}"
        elif self.kind == "choice":
            text = _ticks(self.choices) + (" (or unset)" if self.default is None else "")
        elif self.kind == "flag":
            text = "`1`/`0` (also `true`/`false`, `yes`/`no`, `on`/`off`)"
        elif self.kind == "list":
            text = "comma list of " + _ticks(self.choices)
        elif self.kind == "url" and self.choices:
            text = _ticks(self.choices) + " URLs"
        elif self.kind == "folder":
            text = "an existing folder" if self.must_exist else "a writable folder (made if missing)"
        else:
            text = self.expected
        if self.auto:
            text = f"`{envparse.AUTO}`, or {text}"
        return f"{text} {self.note}" if self.note else text

    def default_text(self) -> str:
        """The default, as the docs say it (markdown)."""
        if self.default_doc is not None:
            return self.default_doc
        d = self.default
        if d is None:
            return f"`{envparse.AUTO}`" if self.auto else "unset"
        if isinstance(d, bool):
            return "1" if d else "0"
        if isinstance(d, float):
            return f"{d:g}"
        if isinstance(d, int):
            return str(d)
        if isinstance(d, tuple):
            return "`" + ",".join(d) + "`"
        return f"`{d}`"

    def read_by(self) -> str:
        """Who reads it, as the docs say it (markdown)."""
        text = ", ".join(label for key, label in READERS.items() if key in self.readers)
        return f"{text}; {self.read_note}" if self.read_note else text

    def describe(self) -> str:
        """One line for a usage text: what it sets: what it accepts; its default."""
        return plain(f"{self.help}: {self.accepted()}; default {self.default_text()}")


def _bound(x) -> str:
    if isinstance(x, int) and x >= 10**6 and str(x).rstrip("0") == "1":
        return f"10^{len(str(x)) - 1}"
    return f"{x:g}" if isinstance(x, float) else str(x)


def _ticks(words: Iterable[str]) -> str:
    return ", ".join(f"`{w}`" for w in words)


def plain(markdown: str) -> str:
    """Markdown as a terminal shows it: no backticks, a link as its text."""
    return re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", markdown).replace("`", "")


# --- the settings ---------------------------------------------------------------------------------------

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"
QUEUE_PATTERN = r"^[a-z0-9][a-z0-9.+-]{0,63}$"
BROKER_SCHEMES = ("amqp://", "amqps://", "pyamqp://", defaults.FILESYSTEM_SCHEME, "memory://")
LAB_BROKERS = ("auto", "rabbitmq", "filesystem")
CLAIMS_INTERPRETERS = ("host", "gil", "nogil")  # this machine's python3, CPython 3.14 gil, 3.14 free-threaded
# How each timed-out call gets its DuckDB connection (app/strategies.py): opened and closed by the
# call (the article's), or one the worker keeps open for its calls.
CONNECTIONS = ("per-call", "reused")
_LAB = ("scripts/lab",)

SPEC = (
    # --- the workload (the producer sends it with each task) ---
    Setting("ITERATIONS", "integer", defaults.ITERATIONS, "iterations (tasks) per target queue",
            ("producer", *_LAB, "claims", "compose"), bounds=defaults.ITERATIONS_RANGE, flag="iterations"),
    Setting("DUCKDB_ROWS", "integer", defaults.DUCKDB_ROWS, "rows the timed-out DuckDB query scans",
            ("producer", *_LAB, "claims", "compose"), bounds=defaults.DUCKDB_ROWS_RANGE, auto=True, flag="duckdb-rows",
            note="(an explicit count wins; see [calibration](#sized-to-your-machine-the-calibration))",
            read_note="workers size `auto`"),
    Setting("QUERY_SECONDS", "number", defaults.QUERY_SECONDS,
            "how long the auto-sized query would run if nothing stopped it",
            ("producer", *_LAB, "compose"), bounds=defaults.QUERY_SECONDS_RANGE, auto=True, flag="query-seconds",
            default_doc=f"`auto`: {defaults.QUERY_TIMEOUTS} x `DUCKDB_TIMEOUT`, at least `DUCKDB_TIMEOUT` + "
                        f"`SETTLE_SECONDS` + {defaults.QUERY_BEYOND_SETTLE:g}",
            read_note="workers size the query"),
    Setting("DUCKDB_TIMEOUT", "number", defaults.DUCKDB_TIMEOUT, "the deadline of each query",
            ("producer", *_LAB, "claims", "compose"), bounds=defaults.DUCKDB_TIMEOUT_RANGE, flag="duckdb-timeout"),
    Setting("TARGET_QUEUES", "list", defaults.TARGET_QUEUES, "the queues the producer sends to",
            ("producer", *_LAB, "compose"), choices=axes.QUEUE_NAMES, flag="target-queues",
            default_doc=f"`{','.join(defaults.TARGET_QUEUES)}` (`scripts/lab run`: `{','.join(axes.ARTICLE_WORKERS)}`)",
            accepted_doc=f"comma list of {_ticks(axes.ARTICLE_WORKERS)} and the strategy queues "
                         f"`{axes.QUEUE_GRAMMAR}`",
            read_note="`scripts/lab`: the workers it starts"),
    # --- the broker ---
    Setting("BROKER_URL", "url", defaults.BROKER_URL, "the Celery broker",
            ("producer", "workers", *_LAB, "claims"), choices=BROKER_SCHEMES, flag="broker-url",
            default_doc=f"`{defaults.BROKER_URL}` (Compose: the `rabbitmq` service; `scripts/lab`: its own broker)",
            note=f"(`{defaults.FILESYSTEM_SCHEME}/abs/folder`: kombu's filesystem transport, no server)"),
    Setting("BROKER_CONNECT_SECONDS", "number", defaults.BROKER_CONNECT_SECONDS,
            "how long to keep retrying an unreachable broker", ("producer", "workers", *_LAB),
            bounds=defaults.BROKER_CONNECT_RANGE),
    Setting("RESULT_BACKEND", "url", "rpc://", "where task results go", ("producer", "workers", *_LAB),
            pattern=r"^[a-z+]+://", expected="a Celery result backend URL such as rpc:// or file:///path",
            default_doc="`rpc://` (a `filesystem://` broker: `file://` beside it; `memory://`: `cache+memory://`)"),
    # --- the producer ---
    Setting("RESULTS_DIR", "folder", defaults.RESULTS_DIR,
            "where each run writes `<run>/records.jsonl`, `summary.txt`, `report.md`, `summary.png`",
            ("producer", *_LAB, "claims"), flag="results-dir"),
    Setting("RESULT_GRACE_SECONDS", "number", defaults.RESULT_GRACE_SECONDS,
            "how long to wait beyond the iterations' own time before reporting a result missing",
            ("producer", *_LAB, "compose"), bounds=defaults.RESULT_GRACE_RANGE, flag="result-grace"),
    Setting("RUN_ID", "text", None, "the run's name (its results folder, its processes' marker)",
            ("producer", *_LAB, "claims", "compose"), pattern=RUN_ID_PATTERN, flag="run-id",
            expected="1-80 characters of letters, digits, '.', '_', '-'",
            accepted_doc="1-80 letters, digits, `._-` (not starting with `._-`)", default_doc="a timestamp"),
    # --- the workers ---
    Setting("START_METHOD", "choice", None, "how multiprocessing starts the timed-out call's process",
            ("workers", *_LAB, "compose"), choices=axes.START_METHODS,
            default_doc="the interpreter's (`fork` <= 3.13, `forkserver` 3.14; a queue "
                        "`<build>.<strategy>.<start method>` implies it)"),
    Setting("TIMEOUT_STRATEGY", "choice", defaults.STRATEGY, "how the query is timed out",
            ("workers", "compose"), choices=axes.STRATEGY_NAMES, note="(see [Mitigations](#mitigations-measured))",
            default_doc=f"implied by the queue (`{axes.ARTICLE_WORKERS['gil'][1]}`, "
                        f"`gil-clean`: `{axes.ARTICLE_WORKERS['gil-clean'][1]}`)",
            read_note="`scripts/lab` sets it per worker"),
    Setting("WORKLOAD", "choice", axes.DEFAULT_WORKLOAD, "the C call that is timed out",
            ("workers", "compose"), choices=axes.WORKLOAD_NAMES, note="(docs/workloads.md)",
            default_doc=f"implied by the queue (`{axes.DEFAULT_WORKLOAD}` unless it ends in another workload)",
            read_note="`scripts/lab` sets it per worker"),
    Setting("CLEANUP_CHILDREN", "flag", False, "reap the task processes after each timeout (the article's fix)",
            ("workers", *_LAB), default_doc="0 (`gil-clean`: 1)"),
    Setting("SETTLE_SECONDS", "number", defaults.SETTLE_SECONDS, "the wait between the two snapshots after a timeout",
            ("producer", "workers", *_LAB, "claims", "compose"), bounds=defaults.SETTLE_SECONDS_RANGE,
            flag="settle-seconds", read_note="producer: sizes its deadline"),
    Setting("CLEANUP_GRACE_SECONDS", "number", defaults.CLEANUP_GRACE_SECONDS,
            "the clean-up's wait between SIGTERM and SIGKILL", ("workers", *_LAB, "compose"),
            bounds=defaults.CLEANUP_GRACE_RANGE),
    Setting("DUCKDB_THREADS", "integer", defaults.DUCKDB_THREADS, "DuckDB's threads per query",
            ("workers", *_LAB, "compose"), bounds=defaults.DUCKDB_THREADS_RANGE),
    Setting("CONNECTION", "choice", CONNECTIONS[0], "the timed-out call's DuckDB connection: opened and closed "
            "by each call, or one the worker keeps open", ("workers",), choices=CONNECTIONS,
            note="(`reused`: the in-process strategies only; a process strategy refuses it)"),
    Setting("QUEUE", "text", "gil", "the queue a worker consumes; its name implies build, strategy, start method, pool, workload",
            ("workers",), pattern=QUEUE_PATTERN,
            expected="a queue name of lowercase letters, digits, '.', '+', '-' (1-64 chars)",
            read_note="Compose and `scripts/lab` set it per worker"),
    Setting("WORKER_NAME", "text", None, "the worker's node name, `<name>@<host>`", ("workers",),
            expected="a name", default_doc="the queue", read_note="Compose and `scripts/lab` set it per worker"),
    Setting("CALIBRATION_DIR", "folder", None, "a folder where a run's workers share the query's measured speed",
            ("workers",), default_doc="unset: each worker measures for itself",
            read_note="`scripts/lab` and `scripts/lab claims` set it"),
    # --- the host scripts ---
    Setting("LAB_BROKER", "choice", "auto", "the broker `scripts/lab` starts when `BROKER_URL` is unset",
            (*_LAB, "claims"), choices=LAB_BROKERS,
            note="(`auto`: a private RabbitMQ node if `rabbitmq-server` is installed, else `filesystem`)"),
    Setting("LAB_CACHE", "folder", None, "the lab's cache (interpreters, venvs, runs)",
            (*_LAB, "claims", "setup"), default_doc="`${XDG_CACHE_HOME:-~/.cache}/gil-timeout-lab`"),
    Setting("PYTHON_VERSION", "text", CPYTHON_VERSION, "the CPython version of the built interpreters",
            (*_LAB, "claims", "docker-bootstrap", "images"), pattern=r"^\d+\.\d+\.\d+$",
            expected=f"a version X.Y.Z such as {CPYTHON_VERSION}", read_note="`scripts/lab setup`: `--version`"),
    Setting("PYTHON_SHA256", "text", CPYTHON_SHA256, "the SHA-256 of `Python-<version>.tar.xz`",
            ("setup", "docker-bootstrap", "images"), pattern=r"^[0-9a-f]{64}$", expected="64 lowercase hex digits",
            default_doc=f"the {CPYTHON_VERSION} release's; needed for another version"),
    Setting("PYTHON_SOURCE", "text", None, "the CPython source to build instead of python.org's download",
            ("setup", "docker-bootstrap"), expected="a local `Python-<version>.tar.xz` or its URL",
            default_doc="python.org download"),
    Setting("WHEELHOUSE", "folder", None, "wheels preferred to PyPI (the cp314t duckdb wheel)",
            (*_LAB, "setup", "docker-bootstrap"), must_exist=True, default_doc="none"),
    Setting("CLAIMS_PARALLEL", "integer", 2, "claims jobs run at a time", ("claims",), bounds=(1, 4), env=False),
    Setting("CLAIMS_PYTHONS", "text", None, "the interpreters to measure, exactly these", ("claims",),
            expected="a comma-separated list of " + ", ".join(f"{i}=PATH" for i in CLAIMS_INTERPRETERS)
                     + " (each at most once)",
            default_doc="the host venv and the built ones"),
)
SETTINGS = {s.name: s for s in SPEC}
assert len(SETTINGS) == len(SPEC), "a variable is declared twice"


def names(reader: str) -> tuple[str, ...]:
    """The variables `reader` reads, in declaration order (e.g. names("scripts/lab"): native.OVERRIDES)."""
    assert reader in READERS, reader
    return tuple(s.name for s in SPEC if reader in s.readers)


def producer_flags() -> dict[str, str]:
    """`--flag` -> the variable it overrides (the producer's CLI)."""
    return {f"--{s.flag}": s.name for s in SPEC if s.flag}


# --- scripts/lab claims: its own ranges and defaults for a few ------------------------------------------

# The claims run a shorter workload than the lab, so a few variables accept less there (a
# measurement of 1e12 rows or 10000 iterations would run for hours) and default differently.
CLAIMS_QUICK_ITERATIONS = 2
CLAIMS_OVERRIDES = {
    "ITERATIONS": dict(bounds=(1, 20), help="Celery iterations per worker", env=False,
                       default_doc=f"{defaults.ITERATIONS}, --quick {CLAIMS_QUICK_ITERATIONS}"),
    "DUCKDB_ROWS": dict(bounds=(10_000_000, 100_000_000_000), env=False, note="",
                        help="rows the timed-out query scans (`auto`: sized on each interpreter from its measured speed)"),
    "DUCKDB_TIMEOUT": dict(bounds=(0.05, 10.0), env=False),
    "SETTLE_SECONDS": dict(bounds=(0.0, 10.0), env=False),
    "BROKER_URL": dict(default=None, default_doc="unset: the run starts one, as `LAB_BROKER` says"),
    "RUN_ID": dict(env=False, default_doc="`claims-` and a timestamp"),
}


def claims_settings() -> dict[str, Setting]:
    """The variables `scripts/lab claims` accepts, as it reads them (its overrides applied)."""
    assert set(CLAIMS_OVERRIDES) <= set(names("claims")), "an override of a variable claims does not read"
    return {name: replace(SETTINGS[name], **CLAIMS_OVERRIDES.get(name, {})) for name in names("claims")}


# --- usage texts and README.md ---------------------------------------------------------------------------


def usage_lines(settings: Iterable[Setting], indent: int = 2, width: int = 100) -> list[str]:
    """A --help's list of variables: NAME  what it sets: what it accepts; its default (wrapped to `width`)."""
    import textwrap

    settings = list(settings)
    column = indent + max(len(s.name) for s in settings) + 2
    lines = []
    for s in settings:
        first = f"{' ' * indent}{s.name:<{column - indent - 2}}  "
        lines += textwrap.wrap(s.describe(), width=width, initial_indent=first, subsequent_indent=" " * column,
                               break_on_hyphens=False)
    return lines


BEGIN = "<!-- generated from app/kernel/settings.py -->\n"
END = "<!-- end generated -->"


def _claims_note(s: Setting, claims: Setting) -> str:
    differs = []
    if claims.accepted() != s.accepted():
        differs.append(claims.accepted())
    if claims.default_text() != s.default_text():
        differs.append(f"default {claims.default_text()}")
    return READERS["claims"] + (f" ({'; '.join(differs)})" if differs else "")


def markdown() -> str:
    """README.md's settings table: every variable, its help, default, accepted values and readers."""
    claims = claims_settings()
    from .tables import render

    rows = []
    for s in SPEC:
        read_by = s.read_by()
        if s.name in claims:
            read_by = read_by.replace(READERS["claims"], _claims_note(s, claims[s.name]), 1)
        rows.append([f"`{s.name}`", s.help, s.default_text(), s.accepted(), read_by])
    return render(["variable", "what it sets", "default", "accepted", "read by"], rows, markdown=True) + "\n"


def readme_block(text: str) -> str:
    """The generated part of README.md's text (between BEGIN and END)."""
    return text.split(BEGIN, 1)[1].split(END, 1)[0]


if __name__ == "__main__":  # python3 -m app.kernel.settings [--write]: print the table, or rewrite README.md's
    import sys
    from pathlib import Path

    if sys.argv[1:] == ["--write"]:
        readme = Path(__file__).resolve().parents[2] / "README.md"
        text = readme.read_text()
        readme.write_text(text.replace(BEGIN + readme_block(text), BEGIN + markdown(), 1))
    else:
        print(markdown(), end="")
