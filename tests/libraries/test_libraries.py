"""The timeout libraries' table (scripts/lab libraries): every cell against docs/libraries.md and its own records.

docs/libraries.md publishes what each library's documented call did with a long C call in a real Celery
worker, build by build (a run of its own); a fresh run must give every cell the same verdict and the same
exception, and each verdict must be what the cell's records show by the clock: back soon after the deadline,
back only when the call would have ended, no timeout at all. What a cell says it left behind (processes,
zombies, threads) must be what its records counted.
"""

from __future__ import annotations

import re

import pytest

import labtest
from app.kernel import axes
from labctl import libraries

DOCS = labtest.REPO / "docs" / "libraries.md"
HEADINGS = {"host": "### host build", "gil": "### gil build", "nogil": "### nogil build"}
# back after this share of the call's calibrated length: about when it would have ended anyway (a call that
# runs to its end takes at least about its length; pebble's 3 s grace before SIGKILL stays well under it)
LATE_SHARE = 0.7
LEFT = re.compile(r"left (\d+) running, (\d+) zombies?, (\d+) threads?")
TOLD = re.compile(r"; told apart: (yes|no)$")
# the package each library's own classes live in (a timeout raised as one of them is told from a real error)
PACKAGE = {"timeout-decorator": "timeout_decorator", "pebble": "pebble", "wrapt-timeout-decorator": "wrapt_timeout_decorator",
           "func-timeout": "func_timeout", "stopit": "stopit"}


def published() -> dict[tuple[str, str, str, str], str]:
    """docs/libraries.md's tables: (build, pool, workload, strategy) -> the cell's text."""
    text = DOCS.read_text()
    out = {}
    for build, heading in HEADINGS.items():
        section = text.split(heading, 1)[1].split("\n### ", 1)[0].split("<!-- libraries:end", 1)[0]
        header, *rows = [line.strip().strip("|").strip().split(" | ") for line in section.splitlines()
                         if line.startswith("| ")]
        assert header[:2] == ["strategy (library)", "workload"] and rows, section
        for row in rows:
            strategy = row[0].split("`")[1]
            for pool, cell_text in zip(header[2:], row[2:], strict=True):
                out[(build, pool, row[1], strategy)] = cell_text
    return out


# what requirements/lab.txt pins: every worker must report running exactly that
PINNED = dict(line.split("==") for line in (labtest.REPO / "requirements" / "lab.txt").read_text().splitlines()
              if "==" in line and not line.startswith("#"))
PUBLISHED = published()
CELLS = sorted({(p, w, s) for (_, p, w, s) in PUBLISHED})


def cell(data: dict, build: str, pool: str, workload: str, strategy: str) -> dict:
    found = [c for c in data["cells"] if (c["build"], c["pool"], c["workload"], c["strategy"]) ==
             (build, pool, workload, strategy)]
    assert len(found) == 1, f"{build} {pool} {workload} {strategy}: {len(found)} cells"
    return found[0]


# each library's own timeout exception, by the name a failed task reports
OWN_EXCEPTION = {"func-timeout": "FunctionTimedOut", "stopit-thread": "TimeoutException",
                 "stopit-signal": "TimeoutException"}


def by_clock(r: dict, strategy: str) -> str:
    """What one record shows, read here: control back (a timeout) before or after most of the call's calibrated
    length (its worker measured it alone before the others started), no timeout at all, the library's own
    exception failing the task after the call returned (late too), or an error."""
    if r["outcome"] in ("failed", "error") and r.get("elapsed") is None and OWN_EXCEPTION.get(strategy) and \
            r["exception_type"].rsplit(".", 1)[-1] == OWN_EXCEPTION[strategy]:
        return "late"
    if r["outcome"] == "timeout":
        assert r["elapsed"] >= r["timeout"], r
        return "works" if r["elapsed"] < LATE_SHARE * r["expected_seconds"] else "late"
    if r["outcome"] == "ok":
        return "ignored" if r["elapsed"] > r["timeout"] else "premise failed"
    return "error"


def allowed(want_text: str) -> set[str]:
    """The verdicts a published cell admits: its own, or each of a mixed cell's ("late 2, ignored 1"). Late and
    ignored are one outcome here: the call ran to its end; whether the library's exception still comes after it
    is a race in some cells (stopit's timer thread waits for the GIL a builtin holds, then finds the block done)."""
    mixed = re.search(r"\(((?:(?:works|late|ignored|error) \d+(?:, )?)+)\)", want_text)
    verdicts = {part.split()[0] for part in mixed.group(1).split(", ")} if mixed else {want_text.split(":", 1)[0]}
    return verdicts | ({"late", "ignored"} if verdicts & {"late", "ignored"} else set())


def assert_as_published(got: dict, want_text: str) -> None:
    """The run's cell has a verdict and exception the published cell admits, and its records show it by the clock."""
    ok = allowed(want_text)
    assert got["verdict"] in ok, f"docs/libraries.md: {want_text!r}; the run measured {got['verdict']}: {got['detail']}"
    records = got["records"]
    assert len(records) >= 1, got
    seen = [by_clock(r, got["strategy"]) for r in records]
    assert set(seen) <= ok and got["verdict"] in seen, (seen, want_text, got["detail"])
    if got["verdict"] == "error":
        return
    published = set(want_text.split(": ", 1)[1].split(" ", 1)[0].split("/")) | ({"none"} if "ignored" in ok else set())
    assert set(got["detail"].split(" ", 1)[0].split("/")) <= published, (want_text, got["detail"])
    running, zombies, threads = map(int, LEFT.search(got["detail"]).groups())
    last = records[-1]
    if "settled" in last:  # a worker's record (a failed task has only the producer's)
        assert (running, zombies) == (last["running_after_settle"], last["settled"]["zombies"]), (got["detail"], last)
    assert threads == max(r.get("threads_left", 0) for r in records), got["detail"]
    assert_told_apart(got, want_text, [r for r, verdict in zip(records, seen) if verdict in ("works", "late")])


def assert_told_apart(got: dict, want_text: str, timed_out: list[dict]) -> None:
    """"told apart" is yes exactly when every timeout raised a class of the library's own package, and as published."""
    told = TOLD.search(got["detail"])
    if not timed_out:
        assert told is None, got["detail"]
        return
    package = PACKAGE[axes.STRATEGIES[got["strategy"]].library]
    want = "yes" if all((r["exception_type"] or "").split(".")[0] == package for r in timed_out) else "no"
    assert told and told.group(1) == want, (got["detail"], [r["exception_type"] for r in timed_out])
    published = TOLD.search(want_text)
    assert published and published.group(1) == want, (want_text, got["detail"])


def test_the_published_tables_cover_every_library_pool_workload_and_build():
    """docs/libraries.md has a cell for every build, pool and workload the command runs by default, and every library strategy."""
    want = {(b, p, w, s) for b in libraries.BUILDS for p in libraries.POOLS for w in libraries.WORKLOADS
            for s in libraries.STRATEGIES}
    assert len(want) == 3 * 3 * 2 * 9
    assert set(PUBLISHED) == want, sorted(set(PUBLISHED) ^ want)
    assert {s for s in libraries.STRATEGIES if axes.STRATEGIES[s].library != "timeout-decorator"} == {
        "pebble", "pebble-pool", "wrapt-process", "wrapt-signals", "func-timeout", "stopit-thread", "stopit-signal"}


@pytest.mark.slow
@pytest.mark.rabbitmq
@pytest.mark.parametrize("pool,workload,strategy", CELLS)
def test_cell_is_what_the_library_does(libraries_run, pool, workload, strategy):
    """Each cell of each build this machine has is docs/libraries.md's, and its records show it."""
    for build in libraries_run["builds"]:
        got = cell(libraries_run, build, pool, workload, strategy)
        assert_as_published(got, PUBLISHED[(build, pool, workload, strategy)])
        assert got["command"] == libraries.command_for(build, pool, workload, strategy)
        library = axes.STRATEGIES[strategy].library
        reported = [(r["library"], r["library_version"]) for r in got["records"] if "library_version" in r]
        assert len(reported) >= 1 or got["verdict"] == "error", got["records"]
        assert set(reported) <= {(library, PINNED[library])}, (reported, PINNED[library])


def test_every_library_strategy_names_the_exception_it_documents():
    """A library's strategy declares the class a timeout raises, and only the libraries' own classes count as told apart."""
    declared = {s: axes.STRATEGIES[s].raises for s in libraries.STRATEGIES}
    assert len(declared) == 9 and all(declared.values()), declared
    assert {s for s, sign in declared.items() if "." in sign.type} == {
        "process", "signals", "func-timeout", "stopit-thread", "stopit-signal"}


@pytest.mark.parametrize("args,says", [
    (["--strategies", "deadline"], "STRATEGIES='deadline': expected all, or a comma-separated list of process"),
    (["--builds", "pypy"], "BUILDS='pypy': expected"),
    (["--iterations", "0"], "--iterations 0: expected a whole number from 1 to 20"),
    (["--iterations", "1.5"], "--iterations 1.5: expected a whole number from 1 to 20"),
    (["--timeout", "9"], "--timeout 9: expected seconds from 0.05 to 5"),
    (["--query-seconds", "1"], "--query-seconds 1: expected at least"),
    (["--bogus"], "unknown option --bogus"),
])
def test_bad_flags_are_one_line_and_exit_2(tmp_path, args, says):
    """A bad flag is one line naming it and what is accepted, exit 2, and no run folder."""
    labtest.assert_lab_rejects(tmp_path, "libraries", args, says)
