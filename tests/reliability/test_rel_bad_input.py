"""Bad input everywhere: one line naming the setting and what it accepts, exit 2, nothing enqueued.

The exhaustive tables go through the frozen config dataclasses (`ProducerConfig.from_env`,
`WorkerConfig.from_env`), the way every entry point parses its settings. The real entry points
(`python -m producer`, `celery -A app worker`, `scripts/lab`) are then run once per setting with
a bad value, against a real RabbitMQ node, whose queues must not change.
(scripts/build-python's flags are tested with the build, in tests/build.)
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

import reltest
from app.kernel import axes, settings
from app.kernel.config import WorkerConfig
from app.kernel.envparse import ConfigError
from labctl import native
from producer.config import FLAGS, ProducerConfig

BROKER = [
    ("BROKER_URL", "redis://localhost"),
    ("BROKER_URL", "localhost:5672"),
    ("BROKER_URL", "filesystem://relative/folder"),
    ("BROKER_CONNECT_SECONDS", "-1"),
    ("BROKER_CONNECT_SECONDS", "601"),
    ("BROKER_CONNECT_SECONDS", "soon"),
    ("BROKER_CONNECT_SECONDS", "nan"),
    ("RESULT_BACKEND", "nope"),
    ("RESULT_BACKEND", "://"),
]

PRODUCER = BROKER + [
    ("ITERATIONS", "0"),
    ("ITERATIONS", "10001"),
    ("ITERATIONS", "three"),
    ("ITERATIONS", "1.5"),
    ("ITERATIONS", "-2"),
    ("DUCKDB_ROWS", "0"),
    ("DUCKDB_ROWS", "1000000000001"),
    ("DUCKDB_ROWS", "1e9"),
    ("DUCKDB_ROWS", "automatic"),
    ("QUERY_SECONDS", "0"),
    ("QUERY_SECONDS", "86401"),
    ("QUERY_SECONDS", "nan"),
    ("QUERY_SECONDS", "long"),
    ("DUCKDB_TIMEOUT", "0"),
    ("DUCKDB_TIMEOUT", "0.001"),
    ("DUCKDB_TIMEOUT", "3601"),
    ("DUCKDB_TIMEOUT", "inf"),
    ("DUCKDB_TIMEOUT", "nan"),
    ("DUCKDB_TIMEOUT", "half a second"),
    ("TARGET_QUEUES", "celery"),
    ("TARGET_QUEUES", "GIL"),
    ("TARGET_QUEUES", "gil,gil"),
    ("TARGET_QUEUES", "gil,"),
    ("TARGET_QUEUES", ","),
    ("TARGET_QUEUES", "gil.process.vfork"),
    ("RESULTS_DIR", "/etc/passwd"),
    ("RESULTS_DIR", "/etc/passwd/results"),
    ("RESULT_GRACE_SECONDS", "0"),
    ("RESULT_GRACE_SECONDS", "0.5"),
    ("RESULT_GRACE_SECONDS", "3601"),
    ("RESULT_GRACE_SECONDS", "a minute"),
    ("RUN_ID", "../escape"),
    ("RUN_ID", "with space"),
    ("RUN_ID", "-leading-dash"),
    ("RUN_ID", "x" * 81),
    ("SETTLE_SECONDS", "-0.1"),
    ("SETTLE_SECONDS", "61"),
    ("SETTLE_SECONDS", "later"),
]

WORKER = BROKER + [
    ("QUEUE", "Gil"),
    ("QUEUE", "two words"),
    ("QUEUE", ".hidden"),
    ("QUEUE", "q" * 65),
    ("TIMEOUT_STRATEGY", "magic"),
    ("TIMEOUT_STRATEGY", "PROCESS"),
    ("CLEANUP_CHILDREN", "maybe"),
    ("CLEANUP_CHILDREN", "2"),
    ("START_METHOD", "vfork"),
    ("START_METHOD", "Fork"),
    ("SETTLE_SECONDS", "-1"),
    ("SETTLE_SECONDS", "61"),
    ("CLEANUP_GRACE_SECONDS", "-0.5"),
    ("CLEANUP_GRACE_SECONDS", "61"),
    ("CLEANUP_GRACE_SECONDS", "nan"),
    ("DUCKDB_THREADS", "0"),
    ("DUCKDB_THREADS", "257"),
    ("DUCKDB_THREADS", "1.5"),
    ("CONNECTION", "pooled"),
    ("CONNECTION", "Reused"),
]

# The ranges the messages must state (from app/kernel/settings.py, so a changed range changes the test).
_SPEC = settings.SETTINGS
RANGES = {
    **{name: f"from {_SPEC[name].bounds[0]} to {_SPEC[name].bounds[1]}"
       for name in ("ITERATIONS", "DUCKDB_ROWS", "DUCKDB_THREADS")},
    **{name: f"from {_SPEC[name].bounds[0]:g} to {_SPEC[name].bounds[1]:g}"
       for name in ("DUCKDB_TIMEOUT", "QUERY_SECONDS", "RESULT_GRACE_SECONDS", "BROKER_CONNECT_SECONDS")},
    "TIMEOUT_STRATEGY": ", ".join(axes.STRATEGY_NAMES),
    "START_METHOD": ", ".join(axes.START_METHODS),
    "TARGET_QUEUES": "gil, gil-clean, nogil",
    "CONNECTION": ", ".join(settings.CONNECTIONS),
}


def _assert_message(text: str, name: str) -> None:
    assert "\n" not in text.strip(), text
    assert name in text and "expected" in text, text
    if name in RANGES:
        assert RANGES[name] in text, f"{text!r} does not state the range {RANGES[name]!r}"


@pytest.mark.parametrize(("name", "value"), PRODUCER, ids=[f"{n}={v[:20]}" for n, v in PRODUCER])
def test_producer_config_rejects(tmp_path, name, value):
    env = {"RESULTS_DIR": str(tmp_path), name: value}
    with pytest.raises(ConfigError) as caught:
        ProducerConfig.from_env(env)
    assert caught.value.name == name
    _assert_message(str(caught.value), name)


@pytest.mark.parametrize(("name", "value"), WORKER, ids=[f"{n}={v[:20]}" for n, v in WORKER])
def test_worker_config_rejects(name, value):
    with pytest.raises(ConfigError) as caught:
        WorkerConfig.from_env({name: value})
    assert caught.value.name == name
    _assert_message(str(caught.value), name)


def test_start_method_may_not_contradict_the_queue():
    with pytest.raises(ConfigError) as caught:
        WorkerConfig.from_env({"QUEUE": "gil.process.spawn", "START_METHOD": "fork"})
    assert caught.value.name == "START_METHOD" and "spawn" in str(caught.value)


def test_a_process_strategy_refuses_a_reused_connection():
    """Its connection lives in a task process started per call: `reused` is refused in one line, naming CONNECTION."""
    for queue in ("gil", "gil-clean", "nogil.process", "gil.process+cleanup.spawn"):
        with pytest.raises(ConfigError) as caught:
            WorkerConfig.from_env({"QUEUE": queue, "CONNECTION": "reused"})
        assert caught.value.name == "CONNECTION" and "per-call" in str(caught.value), str(caught.value)
        assert WorkerConfig.from_env({"QUEUE": queue, "CONNECTION": "per-call"}).connection == "per-call"
    for strategy in ("signals", "interrupt", "deadline", "prefork-time-limit"):
        assert WorkerConfig.from_env({"QUEUE": f"nogil.{strategy}", "CONNECTION": "reused"}).connection == "reused"


def test_the_ends_of_every_range_are_accepted(tmp_path):
    lo = {
        "ITERATIONS": "1", "DUCKDB_ROWS": "1", "DUCKDB_TIMEOUT": "0.01", "RESULT_GRACE_SECONDS": "1",
        "SETTLE_SECONDS": "0", "BROKER_CONNECT_SECONDS": "0", "RESULTS_DIR": str(tmp_path / "new" / "folder"),
        "RUN_ID": "a", "TARGET_QUEUES": "gil", "QUERY_SECONDS": "0.01",
    }
    hi = {
        "ITERATIONS": "10000", "DUCKDB_ROWS": str(10**12), "DUCKDB_TIMEOUT": "3600", "RESULT_GRACE_SECONDS": "3600",
        "SETTLE_SECONDS": "60", "BROKER_CONNECT_SECONDS": "600", "RESULTS_DIR": str(tmp_path), "RUN_ID": "r" * 80,
        "TARGET_QUEUES": ",".join(axes.KNOWN_QUEUES), "QUERY_SECONDS": "86400",
    }
    assert ProducerConfig.from_env(lo).iterations == 1
    assert ProducerConfig.from_env(hi).duckdb_rows == 10**12
    assert (ProducerConfig.from_env(lo).query_seconds, ProducerConfig.from_env(hi).query_seconds) == (0.01, 86400)


def test_auto_is_the_default_and_can_be_said(tmp_path):
    """DUCKDB_ROWS and QUERY_SECONDS default to auto (None: the workers calibrate) and accept the word."""
    unset = ProducerConfig.from_env({"RESULTS_DIR": str(tmp_path)})
    said = ProducerConfig.from_env({"RESULTS_DIR": str(tmp_path), "DUCKDB_ROWS": "AUTO", "QUERY_SECONDS": "auto"})
    assert (unset.duckdb_rows, unset.query_seconds) == (None, None) == (said.duckdb_rows, said.query_seconds)
    worker_lo = {"DUCKDB_THREADS": "1", "SETTLE_SECONDS": "0", "CLEANUP_GRACE_SECONDS": "0", "CLEANUP_CHILDREN": "no"}
    worker_hi = {"DUCKDB_THREADS": "256", "SETTLE_SECONDS": "60", "CLEANUP_GRACE_SECONDS": "60", "CLEANUP_CHILDREN": "on"}
    assert WorkerConfig.from_env(worker_lo).duckdb_threads == 1
    assert WorkerConfig.from_env(worker_hi).cleanup_children is True


# --- the real entry points, against a real broker ----------------------------------------------------

# flag -> a bad value for it
BAD_FLAG_VALUES = {
    "--iterations": "0", "--duckdb-rows": "-5", "--duckdb-timeout": "nan", "--target-queues": "nogil,bogus",
    "--broker-url": "http://broker", "--results-dir": "/etc/passwd", "--run-id": "no/slash",
    "--result-grace": "0", "--settle-seconds": "99", "--query-seconds": "0",
}
# Lines that state what is accepted without the word "expected".
SAYS_IT_OTHERWISE = ("down takes no arguments", "run `scripts/lab setup` first", "--builds goes with --strategies", "--pools goes with --strategies")


def _first_per_name(table):
    seen = {}
    for name, value in table:
        seen.setdefault(name, value)
    return seen


def _producer_cases(url: str, tmp) -> list[tuple[str, list[str], dict[str, str], str]]:
    """(label, argv, env, the name the line must carry): every producer variable and flag."""
    env = {"BROKER_URL": url, "RESULTS_DIR": str(tmp / "results"), "BROKER_CONNECT_SECONDS": "0"}
    cases = [(f"producer {n}", [], {**env, n: v}, n) for n, v in _first_per_name(PRODUCER).items()]
    assert set(FLAGS) == set(BAD_FLAG_VALUES), "a producer flag has no bad-value case"
    cases += [(f"producer {f}", [f, v], env, FLAGS[f]) for f, v in BAD_FLAG_VALUES.items()]
    cases += [
        ("producer --bogus", ["--bogus", "1"], env, "--iterations"),
        ("producer --iterations (no value)", ["--iterations"], env, "--iterations"),
        ("producer stray word", ["extra"], env, "--iterations"),
    ]
    return cases


def _lab_cases(url: str, tmp) -> list[tuple[str, list[str], dict[str, str], str]]:
    """(label, scripts/lab argv, env, name): every override variable, option and command."""
    env = {"BROKER_URL": url, "RESULTS_DIR": str(tmp / "lab-results")}
    values = {**_first_per_name(PRODUCER), **_first_per_name(WORKER)}
    cases = [(f"lab quick {n}", ["quick", f"{n}={values[n]}"], env, n) for n in native.OVERRIDES if n in values]
    cases += [
        ("lab quick LAB_BROKER", ["quick", "LAB_BROKER=redis"], env, "LAB_BROKER"),
        ("lab quick LAB_CACHE", ["quick", "LAB_CACHE=/etc/passwd"], env, "LAB_CACHE"),
        ("lab quick WHEELHOUSE", ["quick", "WHEELHOUSE=/nonexistent/wheels"], env, "WHEELHOUSE"),
        ("lab run PYTHON_VERSION", ["run", "PYTHON_VERSION=2.7.0"], env, "PYTHON_VERSION"),
        ("lab quick typo", ["quick", "ITERATONS=5"], env, "ITERATONS"),
        ("lab quick QUEUE", ["quick", "QUEUE=gil"], env, "QUEUE"),
        ("lab quick lowercase", ["quick", "iterations=5"], env, "VARIABLE=value"),
        ("lab quick no value", ["quick", "ITERATIONS"], env, "VARIABLE=value"),
        ("lab run --strategies", ["run", "--strategies", "magic"], env, "STRATEGIES"),
        ("lab run --strategies (no value)", ["run", "--strategies"], env, "--strategies"),
        ("lab run --builds", ["run", "--strategies", "deadline", "--builds", "pypy"], env, "BUILDS"),
        ("lab run --builds alone", ["run", "--builds", "gil"], env, "--strategies"),
        ("lab run --frobnicate", ["run", "--frobnicate"], env, "--strategies"),
        ("lab quick nogil only", ["quick", "TARGET_QUEUES=nogil"], env, "TARGET_QUEUES"),
        ("lab quick env LAB_BROKER", ["quick"], {**env, "LAB_BROKER": "docker"}, "LAB_BROKER"),
        ("lab quick env ITERATIONS", ["quick"], {**env, "ITERATIONS": "0"}, "ITERATIONS"),
        ("lab down extra", ["down", "now"], env, "down"),
    ]
    assert {n for n in native.OVERRIDES} <= {c[3] for c in cases}, "an override has no bad-value case"
    return cases


def _check(label: str, code, stderr: str, stdout: str, name: str) -> str | None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    if code != 2 or len(lines) != 1 or name not in lines[0]:
        return f"{label}: exit {code}, stderr:\n{stderr}stdout:\n{stdout[-500:]}"
    if "expected" not in lines[0] and not any(s in lines[0] for s in SAYS_IT_OTHERWISE):
        return f"{label}: the line does not say what is accepted: {lines[0]}"
    return None


def _subprocess(argv, env):
    return subprocess.run(argv, env=env, cwd=reltest.REPO, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_every_entry_point_rejects_bad_input_with_one_line_and_enqueues_nothing(rabbitmq, tmp_path, capsys):
    """Every variable and flag, through the entry points' own main(); a sample of each as a real process."""
    run = reltest.run_id("rel-bad")
    base = reltest.env(run)
    # a queue with one message in it, so the comparison below reads a real listing, not two empty parses
    from kombu import Connection

    sentinel = f"{run}-sentinel"
    with Connection(rabbitmq.url) as conn:
        queue = conn.SimpleQueue(sentinel)
        queue.put("sentinel")
        queue.close()
    before = rabbitmq.queue_depths()
    assert before.get(sentinel) == 1, before
    problems = []

    import producer.__main__ as producer_main
    from labctl import cli

    producer_cases = _producer_cases(rabbitmq.url, tmp_path)
    for label, argv, env, name in producer_cases:
        try:
            code = producer_main.main(argv, {**base, **env})
        except SystemExit as exc:  # argparse's own exit (bad flags)
            code = exc.code
        out = capsys.readouterr()
        problems.append(_check(label, code, out.err, out.out, name))
    lab_cases = _lab_cases(rabbitmq.url, tmp_path)
    for label, argv, env, name in lab_cases:
        code = native.main(argv[0], argv[1:], {**base, **env}) if argv[0] != "down" else cli.main(argv)
        out = capsys.readouterr()
        problems.append(_check(label, code, out.err.replace("lab down: ", ""), out.out, name))

    # Real processes: every worker variable (the worker has no in-process entry point), a sample of
    # the producer's and the lab's, and an unknown lab command.
    py, lab = reltest.PYTHON, str(reltest.REPO / "scripts" / "lab")
    real = [(f"worker {n}", reltest.worker_argv("gil", "bad"), {"BROKER_URL": rabbitmq.url, "BROKER_CONNECT_SECONDS": "0", n: v}, n)
            for n, v in _first_per_name(WORKER).items()]
    real += [(label + " (process)", [py, "-m", "producer", *argv], env, name)
             for label, argv, env, name in producer_cases if label in ("producer ITERATIONS", "producer --bogus",
                                                                      "producer RESULTS_DIR")]
    real += [(label + " (process)", [lab, *argv], env, name)
             for label, argv, env, name in lab_cases if label in ("lab quick DUCKDB_TIMEOUT", "lab quick typo",
                                                                 "lab run --strategies", "lab down extra")]
    real.append(("worker CONNECTION=reused on a process queue", reltest.worker_argv("gil", "bad"),
                 {"BROKER_URL": rabbitmq.url, "BROKER_CONNECT_SECONDS": "0", "CONNECTION": "reused"}, "CONNECTION"))
    real.append(("lab unknown command", [lab, "frobnicate"], {}, "quick, setup, run, down"))
    with ThreadPoolExecutor(max_workers=3) as pool:
        done = list(pool.map(lambda case: _subprocess(case[1], {**base, **case[2]}), real))
    for (label, _, _, name), d in zip(real, done):
        problems.append(_check(label, d.returncode, d.stderr, d.stdout, name)
                        if "unknown command" not in label else
                        (None if d.returncode == 2 and len(d.stderr.strip().splitlines()) == 1 and name in d.stderr
                         else f"{label}: exit {d.returncode}: {d.stderr}"))

    problems = [p for p in problems if p]
    assert not problems, "\n\n".join(problems)
    assert rabbitmq.queue_depths() == before, "a rejected invocation touched the broker's queues"
    with Connection(rabbitmq.url) as conn:
        conn.SimpleQueue(sentinel).queue.delete()
    assert not (tmp_path / "results").exists() and not (tmp_path / "lab-results").exists()
    assert not reltest.procs.marked(run), "a rejected invocation left a process running"


def test_lab_override_names_are_the_documented_ones():
    """Every name scripts/lab accepts is a setting something reads (and a typo is not)."""
    producer_vars = set(FLAGS.values()) | {"BROKER_CONNECT_SECONDS", "RESULT_BACKEND"}
    worker_vars = {"START_METHOD", "CLEANUP_CHILDREN", "SETTLE_SECONDS", "CLEANUP_GRACE_SECONDS", "DUCKDB_THREADS"}
    lab_vars = {"LAB_BROKER", "LAB_CACHE", "PYTHON_VERSION", "WHEELHOUSE"}
    assert set(native.OVERRIDES) == producer_vars | worker_vars | lab_vars
