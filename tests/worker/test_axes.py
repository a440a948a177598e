"""app/kernel/axes.py, the registry: every reader takes its strategies, pools and queue names from it."""

from __future__ import annotations

import re

import duckdb
import pytest
import timeout_decorator
from celery.exceptions import SoftTimeLimitExceeded

import labtest
from app.kernel import axes
from app import strategies
from app.kernel.config import WorkerConfig
from app.kernel.workload_axis import DEFAULT_WORKLOAD, WORKLOAD_NAMES
from labctl import compose_matrix, native
from producer import run as producer_run
from producer import summary


def test_every_strategy_has_its_runner_and_its_pool():
    """Each declared strategy names a runner app/strategies.py has and a pool the lab can start."""
    assert axes.STRATEGY_LIST and set(strategies.RUNNERS) == set(axes.STRATEGY_NAMES)
    for s in axes.STRATEGY_LIST:
        assert strategies.RUNNERS[s.name].__name__ == s.runner
        assert s.pool in axes.POOLS, s


def declared_queue_count() -> int:
    """How many queues the declarations make, counted apart from matrix_queues: the article's workers, then per
    build each strategy x (its interpreter's start method, or each named one if it starts processes) x (its own
    pool or each other), and each strategy on every other workload it can run on."""
    per_build = sum((1 + len(axes.START_METHODS) * s.starts_processes) * len(axes.POOL_NAMES)
                    + sum(s.runs_on(w) for w in WORKLOAD_NAMES if w != DEFAULT_WORKLOAD) for s in axes.STRATEGY_LIST)
    return len(axes.ARTICLE_WORKERS) + len(axes.BUILDS) * per_build


def test_the_covering_queues_spell_every_declared_token():
    """Every build, strategy, start method, pool, workload and article worker app/kernel/axes.py declares, each
    character of those names, and the longest known name are in the few names the broker tests send to."""
    chosen = labtest.covering_queues()
    declared = {("build", b) for b in axes.BUILDS} | {("strategy", s) for s in axes.STRATEGY_NAMES} \
        | {("start method", m) for m in axes.START_METHODS} | {("pool", p) for p in axes.POOL_NAMES} \
        | {("workload", w) for w in WORKLOAD_NAMES if w != DEFAULT_WORKLOAD} \
        | {("article worker", q) for q in axes.ARTICLE_WORKERS}
    # the characters of the declared names, and the separator (a '+' comes from process+cleanup)
    names = [*axes.BUILDS, *axes.STRATEGY_NAMES, *axes.START_METHODS, *axes.POOL_NAMES, *WORKLOAD_NAMES,
             *axes.ARTICLE_WORKERS]
    declared |= {("character", c) for name in names for c in name if not c.isalnum()} | {("character", ".")}
    assert ("character", "+") in declared and ("character", "-") in declared, declared
    assert set().union(*map(labtest.name_tokens, chosen)) == declared, sorted(declared - set().union(*map(labtest.name_tokens, chosen)))
    assert max(map(len, chosen)) == max(map(len, axes.KNOWN_QUEUES))
    assert len(chosen) == len(set(chosen)) and len(chosen) < len(axes.KNOWN_QUEUES) / 5, chosen


def test_every_known_queue_parses_back_to_its_name():
    """parse_queue reads every queue of the grammar, and strategy_queue writes it back the same."""
    assert len(axes.KNOWN_QUEUES) == len(set(axes.KNOWN_QUEUES)) == declared_queue_count()
    for queue in axes.KNOWN_QUEUES:
        spec = axes.parse_queue(queue)
        assert spec is not None and spec.name == queue, queue
        if queue not in axes.ARTICLE_WORKERS:
            assert axes.strategy_queue(spec.build, spec.strategy, spec.start_method, spec.pool, spec.workload) == queue


@pytest.mark.parametrize("name", ["celery", "GIL", "gil.magic", "gil.interrupt.fork", "gil.process.vfork",
                                  "pypy.process", "gil.", "", "gil.interrupt.solo", "gil.prefork-time-limit.prefork",
                                  "gil.interrupt.duckdb", "gil.interrupt.sqlite.threads", "gil.process.threads.fork",
                                  "gil.interrupt.threads.sqlite.x"])
def test_names_outside_the_grammar_parse_to_none(name):
    """A start method only goes with a strategy that starts processes; parts come in the grammar's order, a
    strategy's own pool and DuckDB are never named (one name per cell), unknown parts are refused."""
    assert axes.parse_queue(name) is None


def test_the_producer_labels_a_start_method_queue_by_its_strategy():
    """A missing iteration of `gil.process.fork` is labelled `process`, as the summary labels it."""
    assert producer_run._strategy_of("gil.process.fork") == "process"
    assert summary.strategy_of({"queue": "nogil.process+cleanup.spawn"}) == "process+cleanup"


def test_worker_config_native_spec_and_producer_read_the_registry():
    """The worker's strategy, clean-up, start method and pool all come from the queue's declaration."""
    assert len(axes.KNOWN_QUEUES) == declared_queue_count()
    for queue in axes.KNOWN_QUEUES:
        spec = axes.parse_queue(queue)
        cfg = WorkerConfig.from_env({"QUEUE": queue})
        assert (cfg.strategy, cfg.start_method) == (spec.strategy, spec.start_method)
        assert cfg.cleans_up == axes.STRATEGIES[spec.strategy].cleans_up
        worker = native.worker_spec(queue)
        assert worker.pool == (spec.pool_named or axes.STRATEGIES[spec.strategy].pool) == cfg.pool
        assert worker.workload == spec.workload == cfg.workload
        assert all(flag in worker.argv("python", "host") for flag in axes.POOLS[worker.pool].argv())


def test_timeout_signs_match_the_real_exceptions():
    """Each strategy counts as a timeout what its mechanism raises, and a plain error as an error."""
    interrupted = duckdb.InterruptException("INTERRUPT Error: Interrupted!")
    in_query = RuntimeError("Query interrupted")
    decorator = timeout_decorator.TimeoutError("Timed Out")
    soft = SoftTimeLimitExceeded()
    real_error = RuntimeError("Catalog Error: Table with name x does not exist!")
    expect = {
        "process": {decorator},
        "process+cleanup": {decorator},
        "signals": {decorator, interrupted, in_query},
        "interrupt": {decorator, interrupted},
        "deadline": {decorator, interrupted},
        "prefork-time-limit": {decorator, interrupted, in_query, soft},
    }
    for name, timeouts in expect.items():
        s = axes.STRATEGIES[name]
        for exc in (interrupted, in_query, decorator, soft, real_error):
            assert s.is_timeout(exc) == (exc in timeouts), f"{name}: {type(exc).__name__}({exc})"


def test_the_docs_table_is_the_registry():
    """docs/strategies.md carries the table generated from the registry, and its prose table names each strategy once."""
    text = (labtest.REPO / "docs" / "strategies.md").read_text()
    block = text.split("<!-- generated from app/kernel/axes.py -->\n", 1)[1].split("<!-- end generated -->", 1)[0]
    assert block == axes.strategies_markdown()
    prose = re.findall(r"^\| `([a-z+-]+)` \| (?!solo|prefork)", text, re.M)
    assert prose == list(axes.STRATEGY_NAMES), prose


@pytest.mark.parametrize("profile", compose_matrix.PROFILES, ids=lambda p: p.name)
def test_the_compose_matrix_is_generated_from_the_registry(profile):
    """docker-compose.matrix.yml is what compose_matrix renders, one service per queue of each profile, and
    docker-compose.yml includes it."""
    path = labtest.REPO / "docker-compose.matrix.yml"
    assert compose_matrix.MATRIX == path
    text = path.read_text() if path.is_file() else ""
    assert compose_matrix.current(text, profile) == compose_matrix.render_profile(profile), \
        "run: python3 scripts/labctl/compose_matrix.py --write"
    assert text == compose_matrix.render(), "run: python3 scripts/labctl/compose_matrix.py --write"
    assert text.startswith("# GENERATED by scripts/labctl/compose_matrix.py")
    queues = profile.queues()
    assert queues, profile.name
    for queue in queues:
        assert f"  {compose_matrix.service_name(queue, profile.prefix)}:\n" in text
    compose = (labtest.REPO / "docker-compose.yml").read_text()
    assert re.search(r"^include:\n  - docker-compose\.matrix\.yml\n", compose, re.M), "docker-compose.yml must include it"
    assert f"profiles: [{profile.name}]" not in compose, f"a {profile.name} service is written into docker-compose.yml"


def test_the_pools_profile_names_every_other_pool_of_every_strategy():
    """Every strategy runs in every pool but its own on each build, but the cells no image can run (gevent on 3.14t)."""
    cells = {(s.build, s.strategy, s.pool) for s in map(axes.parse_queue, compose_matrix.pool_queues())}
    want = {(b, s.name, p) for b in axes.BUILDS for s in axes.STRATEGY_LIST for p in axes.POOL_NAMES
            if p != s.pool and (b, p) != ("nogil", "gevent")}
    assert cells == want


def test_the_workloads_profile_names_every_strategy_each_workload_can_run():
    """Every strategy a workload has what it needs for runs on every C call but DuckDB's, on each build, in its own pool."""
    cells = {(s.build, s.strategy, s.pool, s.workload) for s in map(axes.parse_queue, compose_matrix.workload_queues())}
    want = {(b, s.name, s.pool, w) for b in axes.BUILDS for s in axes.STRATEGY_LIST for w in axes.WORKLOAD_NAMES
            if w != "duckdb" and s.runs_on(w)}
    assert cells == want and ("gil", "interrupt", "solo", "numpy") not in cells
