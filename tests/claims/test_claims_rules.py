"""Every verdict rule of scripts/labctl/claims_report/, on recorded claims.json files.

Pure rule evaluation: no 3.14 builds, RabbitMQ or Docker. The inputs in tests/claims/data/ are
real `scripts/lab claims` runs on this machine, trimmed by data/trim.py (data/README.md says
which command made each):

- complete.json: a full run with both 3.14 builds.
- no_builds.json: a quick run as a newcomer has it (a fresh LAB_CACHE: no 3.14 builds).
- early_query.json: a quick run with DUCKDB_ROWS=10000000 (every query ends before its deadline,
  also after the re-run with 4x the rows).
- broker_killed.json: a full run whose broker and workers a `scripts/lab down` elsewhere stopped
  mid-run (before claims runs named their owner): real failed jobs.
- missing_records.json and failed_job.json: derived from complete.json by data/derive.py: two job
  records and one iteration record removed; one job replaced by the error record the code wrote
  for that same job in broker_killed.json.
- per_workload.json: a quick claim-5 run with every workload of app/kernel/workload_axis.py on the three
  interpreters (the files above predate it: claim 5 measured DuckDB alone then).

The verdicts are computed again here with the rules under test (the files keep no verdicts).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pytest

from labctl import claims, claims_report as cr

DATA = Path(__file__).parent / "data"
FILES = ["complete.json", "no_builds.json", "early_query.json", "broker_killed.json", "missing_records.json",
         "failed_job.json", "per_workload.json"]
OTHER_WORKLOADS = ["sqlite", "numpy", "builtin", "pyarrow"]  # claim 5's, besides DuckDB
VERDICTS = {cr.HOLDS, cr.CAVEAT, cr.FAILS, cr.UNMEASURED}
COMPLETE_MITIGATIONS = {
    "reaping": "works",
    "Celery time limits": "works in prefork only",
    "--max-tasks-per-child": "does not work",
    "con.interrupt()": "works",
}


@lru_cache(maxsize=None)
def _raw(name: str) -> str:
    return (DATA / name).read_text()


def load(name: str) -> dict:
    return json.loads(_raw(name))


def settings_of(data: dict) -> claims.Settings:
    """The run's own settings, as `scripts/lab claims` parsed them (for the reproduce commands)."""
    st = data["settings"]
    args = (["--quick"] if st["quick"] else []) + ["--claims", ",".join(map(str, st["claims"]))]
    return claims.parse_args(args + [f"{k}={v}" for k, v in sorted(st["overrides"].items())], {})


def judged(name: str) -> dict:
    data = load(name)
    data["claims"] = cr.verdicts(data, settings_of(data))
    return data


def verdicts(data: dict) -> dict[int, str]:
    return {int(n): c["verdict"] for n, c in data["claims"].items()}


# --- every input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_every_rule_gives_a_verdict_and_the_table_renders(name):
    """No rule crashes on any recorded input, every row has a known verdict, and the markdown has one row per claim (claim 5: per workload)."""
    data = judged(name)
    assert sorted(data["claims"]) == [str(n) for n in data["settings"]["claims"]]
    for n, c in data["claims"].items():
        assert not c.get("report_error"), (n, c["summary"])
        assert c["verdict"] in VERDICTS, (n, c["verdict"])
        assert c["summary"] and c["why"] and c["measured"], (n, c)
        for w, row in (c.get("workloads") or {}).items():
            assert row["verdict"] in VERDICTS and row["summary"] and row["why"] and row["measured"], (n, w, row)
    md = cr.markdown(data, settings_of(data))
    rows = {n: len(c.get("workloads") or [None]) for n, c in data["claims"].items()}
    last = max(data["settings"]["claims"])
    assert sum(1 for line in md.splitlines() if line.startswith(f"| {last} | ")) == rows[str(last)]
    assert md.count("\n| ") == sum(rows.values()) + 1  # header (and its rule) + one row per claim (claim 5: per workload)
    if "5" in rows:
        assert rows["5"] == len(cr.STOP_WORKLOADS)


@pytest.mark.parametrize("name", FILES)
def test_not_measured_always_says_why(name):
    """A claim that is not measured states a reason: missing builds, a failed job's error, a missing record or a failed premise."""
    data = judged(name)
    reasons = ("scripts/lab setup", "the job failed:", "is missing from claims.json", "no record of iteration",
               cr.PREMISE + ":", "did not run", "not measured:")
    for n, c in data["claims"].items():
        for what, row in [(n, c)] + [(f"{n} {w}", r) for w, r in (c.get("workloads") or {}).items()]:
            if row["verdict"] == cr.UNMEASURED:
                assert any(r in row["summary"] for r in reasons), (what, row["summary"])


# --- a complete run -----------------------------------------------------------------------------------


def test_complete_run_verdicts():
    """A full run with both builds gets the verdicts this machine measured, every job judged."""
    data = judged("complete.json")
    assert verdicts(data) == {1: cr.CAVEAT, 2: cr.CAVEAT, 3: cr.HOLDS, 4: cr.CAVEAT, 5: cr.CAVEAT, 6: cr.HOLDS,
                              7: cr.CAVEAT, 8: cr.FAILS}
    for n, c in data["claims"].items():
        assert not c["facts"].get("not_measured"), (n, c["facts"]["not_measured"])
        text = c["workloads"]["duckdb"]["summary"] if n == "5" else c["summary"]  # made when claim 5 measured DuckDB alone
        assert "not measured" not in text and "not judged" not in text, (n, text)


def test_complete_run_facts():
    """The facts each verdict rests on: where children pile up, what reaping needs, which interpreters block the timer."""
    c = judged("complete.json")["claims"]
    assert c["1"]["facts"]["accumulates_under"] == ["fork"] and c["1"]["facts"]["cleared_under"] == ["forkserver"]
    assert c["2"]["facts"]["all_zero"] is True and c["2"]["facts"]["cleanup_not_needed_under"] == ["forkserver"]
    assert c["3"]["facts"]["differs_from_gil_build"] == []
    assert c["4"]["facts"]["flips"]["duckdb"] is True and c["4"]["facts"]["stays_off_with_PYTHON_GIL_0"]["duckdb"]
    assert c["5"]["facts"]["async_late"] == c["5"]["facts"]["interrupt_fast"] == ["host", "gil", "nogil"]
    assert c["5"]["facts"]["async_early"] == []
    assert c["5"]["facts"]["spin_blocks_watchdog"] == ["host", "gil"]  # the GIL builds only
    assert c["7"]["facts"]["decorated_in_place_fails"] and c["7"]["facts"]["parent_only_times_out"]
    assert c["8"]["facts"]["mitigations"] == COMPLETE_MITIGATIONS


def test_complete_run_states_every_jobs_calibration():
    """Every job with a query states rows/s measured on its interpreter, rows used and seconds expected, in the table too."""
    data = judged("complete.json")
    for job_id, d in data["jobs"].items():
        sz = cr.job_sizing(d)
        if d["job"]["kind"] == "plain" and d["job"]["experiment"] != "thread-stop":
            assert sz == {"query": False, "note": "this experiment runs no DuckDB query"}
            continue
        assert sz["rows_requested"] == "auto" and min(sz["rows_per_second"]) > 0 and min(sz["rows"]) > 0, job_id
        target = data["settings"]["THREAD_STOP_SECONDS" if d["job"]["kind"] == "plain" else "QUERY_SECONDS"]
        assert sz["expected_seconds"] and all(abs(e - target) < 0.01 * target for e in sz["expected_seconds"]), (job_id, sz)
        if d["job"].get("experiment") == "thread-stop":
            assert sz["builtin"]["items_per_second"] > 0 and sz["builtin"]["items"] > 0, sz
    md = cr.markdown(data, settings_of(data))
    workload = next(line for line in md.splitlines() if line.startswith("- duckdb "))
    assert "DUCKDB_ROWS=auto" in workload and "to run 10 s for the Celery workers and 4 s" in workload, workload
    speeds = workload.split("rows/s measured: ")[1]
    for who in ("3.11 ", "3.14 ", "3.14t "):
        assert who in speeds, (who, workload)
    assert md.count("M rows/s measured -> ") >= len([d for d in data["jobs"].values() if cr.job_sizing(d)["query"]])


# --- no 3.14 builds (a newcomer's machine) ----------------------------------------------------------


def test_no_builds_the_314_claims_say_not_measured_and_how_to_fix_it():
    """Without the 3.14 builds, claims 3, 4 and 7 are not measured and name the missing venv and `scripts/lab setup`."""
    c = judged("no_builds.json")["claims"]
    for n, build in (("3", "nogil"), ("4", "nogil"), ("7", "gil")):
        assert c[n]["verdict"] == cr.UNMEASURED, (n, c[n]["verdict"])
        assert f"no {build} CPython 3.14.7 venv at " in c[n]["summary"] and "(scripts/lab setup)" in c[n]["summary"]


def test_no_builds_the_host_claims_are_judged():
    """Without the 3.14 builds the host's python3 still measures claims 1, 2, 5, 6 and 8, every job judged."""
    data = judged("no_builds.json")
    assert data["interpreters"]["available"] == ["host"]
    assert {n: v for n, v in verdicts(data).items() if n in (1, 2, 5, 6, 8)} == {
        1: cr.CAVEAT, 2: cr.CAVEAT, 5: cr.CAVEAT, 6: cr.HOLDS, 8: cr.FAILS}
    c = data["claims"]
    assert c["8"]["facts"]["mitigations"] == COMPLETE_MITIGATIONS
    assert c["5"]["facts"]["async_late"] == c["5"]["facts"]["interrupt_fast"] == c["5"]["facts"]["spin_blocks_watchdog"] == ["host"]
    for n in ("1", "2", "5", "6", "8"):
        assert not c[n]["facts"].get("not_measured"), (n, c[n]["facts"]["not_measured"])


# --- a query that ends before its deadline ------------------------------------------------------------


def test_early_query_claim5_says_premise_failed_not_a_reason():
    """The thread-stop query that ended before its deadline is "premise failed", not "an async exception stopped it early"."""
    data = judged("early_query.json")
    c = data["claims"]["5"]
    assert c["verdict"] == cr.UNMEASURED
    assert c["workloads"]["duckdb"]["summary"].startswith("premise failed: the query ended before its deadline"), c["summary"]
    assert c["summary"].startswith("`duckdb`: premise failed: the query ended before its deadline"), c["summary"]
    assert "stopped the DuckDB call early" not in c["why"] and "async exception" not in c["why"], c["why"]
    assert sorted(c["facts"]["not_measured"]) == ["thread-stop-gil", "thread-stop-host", "thread-stop-nogil"]
    for job_id in c["facts"]["not_measured"]:  # the timer never fired: no watchdog_late to format
        assert data["jobs"][job_id]["result"]["async_exc"]["watchdog_ran_at"] is None


def test_early_query_worker_claims_say_premise_failed():
    """Claims 1, 2 and 3 on queries that ended before their deadline are not measured (premise failed), never "does not hold"."""
    c = judged("early_query.json")["claims"]
    for n in ("1", "2", "3"):
        assert c[n]["verdict"] == cr.UNMEASURED, (n, c[n]["verdict"], c[n]["summary"])
        assert c[n]["summary"].startswith("premise failed: the query ended "), (n, c[n]["summary"])
        assert all(r.startswith("premise failed: ") for r in c[n]["facts"]["not_measured"].values()), n


def test_early_query_claim8_never_counts_a_mitigation_that_had_nothing_to_stop():
    """With queries that ended early, no mitigation "works" on their strength: each is measured or "not measured"."""
    c = judged("early_query.json")["claims"]["8"]
    m = c["facts"]["mitigations"]
    assert m["--max-tasks-per-child"] == cr.UNMEASURED and m["con.interrupt()"] == cr.UNMEASURED, m
    assert m["reaping"] == cr.UNMEASURED, m
    assert not m["Celery time limits"].startswith("works in prefork only"), m  # the solo query never outlasted the limit
    assert c["verdict"] in (cr.UNMEASURED, cr.FAILS), c["verdict"]
    assert "works" not in [v for k, v in m.items() if k != "Celery time limits"]


def test_early_query_jobs_were_run_again_four_times_larger():
    """Every job whose query ended before its deadline ran once more with 4x the rows, and says so."""
    data = load("early_query.json")
    rerun = {j: d for j, d in data["jobs"].items() if d.get("premise_rerun")}
    assert rerun, "no job was re-run"
    for job_id, d in rerun.items():
        first = d["premise_rerun"]
        assert first["reason"].startswith("the query ")
        assert max(cr.job_sizing(d)["rows"]) == 4 * max(first["sizing"]["rows"]), (job_id, first["sizing"])
        assert d["job"]["rows" if d["job"]["kind"] == "worker" else "params"] is not None


def test_premise_failure_words():
    """premise_failure names the rows, their expected time and the deadline; a premise that held gives None."""
    early, complete = load("early_query.json"), load("complete.json")
    text = cr.premise_failure(early["jobs"]["thread-stop-gil"])
    assert text.startswith("the query ended before its deadline") and "rows" in text and "deadline 0.5 s" in text
    assert cr.premise_failure(early["jobs"]["gil-fork-process"]).startswith("the query ended before its deadline in ")
    assert all(cr.premise_failure(d) is None for d in complete["jobs"].values())


# --- missing records and failed jobs ----------------------------------------------------------------


def test_missing_solo_job_is_not_a_working_max_tasks_per_child():
    """Claim 8 with the solo --max-tasks-per-child job's record missing says "not measured", never "works"."""
    c = judged("missing_records.json")["claims"]["8"]
    assert c["facts"]["mitigations"]["--max-tasks-per-child"] == cr.UNMEASURED
    assert c["verdict"] == cr.UNMEASURED  # the other mitigations were measured and none failed
    assert "`gil-solo-mtpc1-process`: its record is missing from claims.json" in c["summary"], c["summary"]
    assert "not measured: --max-tasks-per-child" in c["why"], c["why"]


def test_missing_thread_stop_record_is_named_and_the_rest_judged():
    """Claim 5 without one interpreter's record is judged on the others and names the missing one."""
    c = judged("missing_records.json")["claims"]["5"]
    assert c["verdict"] == cr.CAVEAT
    assert c["facts"]["async_late"] == ["host", "gil"]
    assert c["facts"]["not_measured"] == {"thread-stop-nogil": "its record is missing from claims.json"}
    assert "not judged: `thread-stop-nogil`: its record is missing" in c["summary"]


def test_missing_iteration_record_leaves_its_job_out():
    """A worker with an iteration's record missing is left out of claims 1, 2 and 6 and named, not read as "cleared"."""
    c = judged("missing_records.json")["claims"]
    reason = "no record of iteration 2 (of 3)"
    assert c["1"]["facts"]["not_measured"] == {"host-fork-process": reason}
    assert "host-fork-process" not in c["1"]["facts"] and c["1"]["facts"]["accumulates_under"] == ["fork"]
    assert c["2"]["facts"]["not_measured"]["host-fork-process"] == reason
    assert c["6"]["facts"]["not_measured"]["host-fork-process"] == reason
    assert "3.11 fork" not in c["1"]["summary"].split(";")[0], c["1"]["summary"]


def test_failed_job_is_not_measured_with_its_error():
    """Claim 8 with the solo --max-tasks-per-child job failed names the job and its error, and does not say "works"."""
    data = judged("failed_job.json")
    c = data["claims"]["8"]
    assert c["facts"]["mitigations"]["--max-tasks-per-child"] == cr.UNMEASURED
    reason = c["facts"]["not_measured"]["gil-solo-mtpc1-process"]
    assert reason.startswith("the job failed: worker-gil-solo-mtpc1-process exited before it was ready"), reason
    md = cr.markdown(data, settings_of(data))
    assert "Jobs that failed (the claims above are judged without them): `gil-solo-mtpc1-process`" in md


def test_a_run_with_its_broker_gone_judges_only_what_was_measured():
    """In a run whose broker was stopped mid-run, claim 8 is "not measured" with every failed job's error; the rest stands."""
    data = judged("broker_killed.json")
    failed = {j for j, d in data["jobs"].items() if d.get("error")}
    assert len(failed) == 13
    c = data["claims"]["8"]
    assert c["verdict"] == cr.UNMEASURED
    assert c["facts"]["mitigations"] == {"reaping": "works", "Celery time limits": cr.UNMEASURED,
                                         "--max-tasks-per-child": cr.UNMEASURED, "con.interrupt()": "works"}
    assert set(c["facts"]["not_measured"]) == failed  # every one of them a claim-8 job
    assert all(r.startswith("the job failed: ") for r in c["facts"]["not_measured"].values())
    assert verdicts(data)[1] == cr.CAVEAT and verdicts(data)[5] == cr.CAVEAT


# --- partial data made from recorded data in memory ---------------------------------------------------


def test_a_timer_that_never_ran_during_the_builtin_is_not_a_crash():
    """The builtin's timer can be cancelled before it ever runs (watchdog_late None): claim 5 says so and counts it as blocked."""
    data = load("complete.json")
    # app/experiments/claims.py _timed records watchdog_late None when the timer was cancelled before it ran
    spin = data["jobs"]["thread-stop-gil"]["result"]["spin_async_exc"]
    spin.update(watchdog_late=None, watchdog_ran_at=None, call_finished=True)
    c = cr.claim5(data)
    assert "gil" in c["facts"]["spin_blocks_watchdog"]
    assert any("the timer thread never ran before the builtin returned" in m for m in c["measured"])


def test_claim8_solo_time_limit_that_never_came_due_is_not_ignored():
    """A solo time-limit query that ended before the hard limit is "premise failed", not "ignored by the solo pool"."""
    data = load("complete.json")
    d = data["jobs"]["gil-solo-time-limit"]
    for r in d["records"]:  # as if its query had ended after 0.2 s: before the 1.5 s hard limit
        r["elapsed"] = 0.2
    assert cr.premise_failure(d).startswith("the query ended before the time limit")
    m = cr.claim8(data)["facts"]["mitigations"]
    assert m["Celery time limits"] == "works in prefork (solo not measured)", m


def test_a_record_without_a_plan_is_still_judged():
    """A claims.json written before runs kept their plan is judged on the jobs it has."""
    data = load("complete.json")
    del data["plan"]
    assert cr.claim8(data)["facts"]["mitigations"] == COMPLETE_MITIGATIONS
    assert cr.claim1(data)["verdict"] == cr.CAVEAT


def test_reaping_that_found_nothing_to_reap_proves_nothing():
    """Claim 8 counts reaping as working only where the reaper had task processes to reap (under fork), not on forkserver alone."""
    data = load("complete.json")
    # as if only host-forkserver-cleanup had recorded: there the forkserver reaped every child first
    # (gil-forkserver-cleanup's reaper caught one in iteration 3 of this run, so it goes too)
    for job_id in ("host-fork-cleanup", "gil-fork-cleanup", "gil-forkserver-cleanup"):
        del data["jobs"][job_id]
    assert set(cr.claim2(data)["facts"]["not_measured"]) == {"gil-fork-cleanup", "host-fork-cleanup",
                                                            "gil-forkserver-cleanup"}
    assert [r["cleanup"]["terminated"] for r in data["jobs"]["host-forkserver-cleanup"]["records"]] == [0, 0, 0]
    c = cr.claim8(data)
    assert c["facts"]["mitigations"]["reaping"] == cr.UNMEASURED, c["facts"]["mitigations"]
    assert "the reaper found nothing to reap" in c["summary"]


def test_claim3_without_its_fork_workers_is_not_a_failure():
    """Claim 3 judged on forkserver workers only (nothing piles up there on either build) is "not measured", not "does not hold"."""
    data = load("complete.json")
    del data["jobs"]["nogil-fork-process"]  # as if the free-threaded fork worker's record were missing
    c = cr.claim3(data)
    assert c["verdict"] == cr.UNMEASURED, (c["verdict"], c["summary"])
    assert c["facts"]["not_measured"] == {"nogil-fork-process": "its record is missing from claims.json"}
    assert {f["pattern"] for j, f in c["facts"].items() if j.startswith("nogil-")} == {"cleared"}


# --- claim 5, one verdict per workload ----------------------------------------------------------------


def test_old_record_judges_duckdb_and_says_the_rest_was_not_measured():
    """A record from before claim 5 measured each workload gets DuckDB's verdict, and every other workload says it was not measured and why."""
    for name in ("complete.json", "no_builds.json", "missing_records.json"):
        c = judged(name)["claims"]["5"]
        assert list(c["workloads"]) == ["duckdb"] + OTHER_WORKLOADS, name
        assert c["workloads"]["duckdb"]["verdict"] == cr.CAVEAT == c["verdict"], (name, c["workloads"]["duckdb"])
        for w in OTHER_WORKLOADS:
            row = c["workloads"][w]
            assert row["verdict"] == cr.UNMEASURED, (name, w, row)
            assert row["summary"] == f"not measured: this record has no {w} measurement (claim 5 measured DuckDB alone when it was made)"
        assert c["facts"]["workloads"] == {"duckdb": cr.CAVEAT, **{w: cr.UNMEASURED for w in OTHER_WORKLOADS}}


def test_per_workload_verdicts():
    """Every workload measured on 3.11, 3.14 and 3.14t: DuckDB's and sqlite3's interrupts stop them, nothing stops numpy, the builtin or pyarrow."""
    data = judged("per_workload.json")
    c = data["claims"]["5"]
    assert c["facts"]["workloads"] == {"duckdb": cr.CAVEAT, "sqlite": cr.CAVEAT, "numpy": cr.HOLDS,
                                       "builtin": cr.HOLDS, "pyarrow": cr.HOLDS}
    assert c["verdict"] == cr.CAVEAT and not c["facts"].get("not_measured")
    rows = c["workloads"]
    for w in OTHER_WORKLOADS:
        f = rows[w]["facts"]
        assert f["async_late"] == ["host", "gil", "nogil"] and f["async_stops"] == [], (w, f)  # lands when it returns
        assert "not measured" not in rows[w]["summary"] and "not judged" not in rows[w]["summary"], (w, rows[w]["summary"])
    assert rows["sqlite"]["facts"]["interrupt_fast"] == ["host", "gil", "nogil"]
    assert rows["pyarrow"]["facts"]["interrupt_declared"] and rows["pyarrow"]["facts"]["interrupt_fast"] == []
    assert "was handled only when the call returned" in rows["pyarrow"]["why"]
    assert not rows["numpy"]["facts"]["interrupt_declared"] and "no interrupt of its own" in rows["numpy"]["summary"]
    assert rows["builtin"]["facts"]["watchdog_blocked"] == ["host", "gil"]  # holding the GIL: the GIL builds only
    assert rows["numpy"]["facts"]["watchdog_blocked"] == []  # numpy releases it
    assert rows["duckdb"]["facts"]["async_late"] == rows["duckdb"]["facts"]["interrupt_fast"] == ["host", "gil", "nogil"]


def test_per_workload_table_rows():
    """The table shows claim 5 as one row per workload, DuckDB first, each with its own verdict; the details name each workload."""
    data = judged("per_workload.json")
    md = cr.markdown(data, settings_of(data))
    rows = [line for line in md.splitlines() if line.startswith("| 5 | ")]
    assert len(rows) == 5
    for line, (w, row) in zip(rows, cr.per_workload(data["claims"]["5"])):
        assert f"workload `{w}`" in line.lower() and f"| **{row['verdict']}** |" in line, (w, line)
    assert sum(1 for line in md.splitlines() if line.startswith("   - `pyarrow`: ")) == 3  # one per interpreter


def test_a_workload_that_cannot_be_imported_is_not_measured_where_it_failed():
    """A workload whose import failed on an interpreter is judged on the others and named there; where it failed everywhere it is not measured."""
    data = load("per_workload.json")
    r = data["jobs"]["thread-stop-nogil-pyarrow"]["result"]
    # what app.experiments.claims records for an interpreter without the wheel (one line: import_error)
    data["jobs"]["thread-stop-nogil-pyarrow"]["result"] = {
        **{k: r[k] for k in ("python", "build", "default_start_method", "PYTHON_GIL", "workload", "module", "unit",
                             "stops", "gil_enabled")},
        "import_error": "ModuleNotFoundError: No module named 'pyarrow'"}
    assert cr.premise_failure(data["jobs"]["thread-stop-nogil-pyarrow"]) is None
    row = cr.claim5(data)["workloads"]["pyarrow"]
    assert row["verdict"] == cr.HOLDS and row["facts"]["async_late"] == ["host", "gil"]
    reason = row["facts"]["not_measured"]["thread-stop-nogil-pyarrow"]
    assert reason == "`import pyarrow` fails on 3.14t: ModuleNotFoundError: No module named 'pyarrow'", reason
    assert "not judged: `thread-stop-nogil-pyarrow`: `import pyarrow` fails on 3.14t" in row["summary"]
    for interp in ("host", "gil"):
        data["jobs"][f"thread-stop-{interp}-pyarrow"]["result"] = {
            **data["jobs"]["thread-stop-nogil-pyarrow"]["result"], "python": r["python"]}
    c = cr.claim5(data)
    assert c["workloads"]["pyarrow"]["verdict"] == cr.UNMEASURED
    assert c["workloads"]["pyarrow"]["summary"].startswith("not measured: `thread-stop-host-pyarrow`: `import pyarrow` fails on 3.11")
    assert c["verdict"] == cr.CAVEAT  # the other workloads stand


def test_a_missing_workload_record_is_named_and_the_rest_judged():
    """A workload job without a record is "not measured" for that interpreter, named, and the others judge the workload."""
    data = load("per_workload.json")
    del data["jobs"]["thread-stop-gil-sqlite"]
    c = cr.claim5(data)
    row = c["workloads"]["sqlite"]
    assert row["verdict"] == cr.CAVEAT and row["facts"]["interrupt_fast"] == ["host", "nogil"]
    assert row["facts"]["not_measured"] == {"thread-stop-gil-sqlite": "its record is missing from claims.json"}
    assert c["facts"]["not_measured"] == {"thread-stop-gil-sqlite": "its record is missing from claims.json"}
    for interp in ("host", "nogil"):
        del data["jobs"][f"thread-stop-{interp}-sqlite"]
    row = cr.claim5(data)["workloads"]["sqlite"]
    assert row["verdict"] == cr.UNMEASURED and "is missing from claims.json" in row["summary"], row["summary"]


def test_an_async_exception_that_lands_mid_call_is_a_failure():
    """Had the watchdog's exception landed with most of the call's CPU still to use, the workload's verdict would be "does not hold"."""
    data = load("per_workload.json")
    r = data["jobs"]["thread-stop-nogil-numpy"]["result"]
    r["async_exc"].update(cpu=0.2 * r["query_alone_cpu"], elapsed=r["deadline"] + 0.01, overshoot=0.01)
    c = cr.claim5(data)
    assert c["workloads"]["numpy"]["verdict"] == cr.FAILS and c["workloads"]["numpy"]["facts"]["async_stops"] == ["nogil"]
    assert "stopped the numpy call mid-call on 3.14t" in c["workloads"]["numpy"]["why"]
    assert c["verdict"] == cr.FAILS


def test_a_workload_call_that_ended_before_its_deadline_is_premise_failed():
    """A workload call that ended before the watchdog fired is "premise failed" with the numbers, never evidence."""
    data = load("per_workload.json")
    d = data["jobs"]["thread-stop-host-builtin"]
    d["result"]["async_exc"].update(call_finished=True, elapsed=0.1, watchdog_ran_at=None, watchdog_late=None,
                                    exception_type=None)
    text = cr.premise_failure(d)
    assert text.startswith("the query ended before its deadline (builtin: ") and "items" in text, text
    row = cr.claim5(data)["workloads"]["builtin"]
    assert row["facts"]["not_measured"]["thread-stop-host-builtin"].startswith("premise failed: the query ended")
    assert row["verdict"] == cr.HOLDS and row["facts"]["async_late"] == ["gil", "nogil"]


def test_workload_jobs_state_their_own_calibration():
    """Each workload job states its own speed in its own units; the DuckDB speeds of the table's header leave them out."""
    data = judged("per_workload.json")
    for job_id, d in data["jobs"].items():
        sz = cr.job_sizing(d)
        if cr.stop_workload(d["job"]) == "duckdb":
            assert sz["query"] and "M rows/s measured" in cr.describe_sizing(sz), job_id
            continue
        w = cr.stop_workload(d["job"])
        assert not sz["query"] and sz["workload"] == w and sz["rows_requested"] == "auto", (job_id, sz)
        assert min(sz["rows_per_second"]) > 0 and abs(sz["expected_seconds"][0] - claims.WORKLOAD_STOP_SECONDS) < 0.01
        assert cr.describe_sizing(sz).startswith(f"{w} (") and f"{sz['unit']}/s measured" in cr.describe_sizing(sz)
    assert set(cr.sizing_by_interp(data)) == {"host", "gil", "nogil"}
    assert all(v["rows_per_second"] and len(v["rows"]) == 1 for v in cr.sizing_by_interp(data).values())
