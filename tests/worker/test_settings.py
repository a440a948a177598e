"""app/kernel/settings.py, the one settings spec: what parses, lists, documents and passes on each variable is made from it or checked against it."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

import labtest
from app.kernel import axes, defaults, envparse, settings
from app.kernel.config import WorkerConfig
from app.kernel.envparse import ConfigError
from app.kernel.settings import SETTINGS, SPEC
from labctl import build, claims, cli, native, paths
from producer import config as producer_config
from producer.config import ProducerConfig

# What the lab accepted before the spec existed: the spec may add, never drop or rename.
PRODUCER_FLAGS = {
    "--iterations": "ITERATIONS", "--duckdb-rows": "DUCKDB_ROWS", "--duckdb-timeout": "DUCKDB_TIMEOUT",
    "--query-seconds": "QUERY_SECONDS", "--target-queues": "TARGET_QUEUES", "--broker-url": "BROKER_URL",
    "--results-dir": "RESULTS_DIR", "--run-id": "RUN_ID", "--result-grace": "RESULT_GRACE_SECONDS",
    "--settle-seconds": "SETTLE_SECONDS",
}
LAB_OVERRIDES = {
    "ITERATIONS", "DUCKDB_ROWS", "DUCKDB_TIMEOUT", "QUERY_SECONDS", "TARGET_QUEUES", "BROKER_URL",
    "BROKER_CONNECT_SECONDS", "RESULT_BACKEND", "RESULTS_DIR", "RESULT_GRACE_SECONDS", "RUN_ID", "START_METHOD",
    "CLEANUP_CHILDREN", "SETTLE_SECONDS", "CLEANUP_GRACE_SECONDS", "DUCKDB_THREADS", "LAB_BROKER", "LAB_CACHE",
    "PYTHON_VERSION", "WHEELHOUSE",
}
CLAIMS_VARIABLES = {
    "ITERATIONS", "DUCKDB_ROWS", "DUCKDB_TIMEOUT", "SETTLE_SECONDS", "CLAIMS_PARALLEL", "LAB_BROKER", "BROKER_URL",
    "RESULTS_DIR", "RUN_ID", "PYTHON_VERSION", "LAB_CACHE", "CLAIMS_PYTHONS",
}
# name -> (its default, its range) in app/kernel/defaults.py
FROM_DEFAULTS = {
    "ITERATIONS": (defaults.ITERATIONS, defaults.ITERATIONS_RANGE),
    "DUCKDB_ROWS": (defaults.DUCKDB_ROWS, defaults.DUCKDB_ROWS_RANGE),
    "QUERY_SECONDS": (defaults.QUERY_SECONDS, defaults.QUERY_SECONDS_RANGE),
    "DUCKDB_TIMEOUT": (defaults.DUCKDB_TIMEOUT, defaults.DUCKDB_TIMEOUT_RANGE),
    "DUCKDB_THREADS": (defaults.DUCKDB_THREADS, defaults.DUCKDB_THREADS_RANGE),
    "SETTLE_SECONDS": (defaults.SETTLE_SECONDS, defaults.SETTLE_SECONDS_RANGE),
    "CLEANUP_GRACE_SECONDS": (defaults.CLEANUP_GRACE_SECONDS, defaults.CLEANUP_GRACE_RANGE),
    "RESULT_GRACE_SECONDS": (defaults.RESULT_GRACE_SECONDS, defaults.RESULT_GRACE_RANGE),
    "BROKER_CONNECT_SECONDS": (defaults.BROKER_CONNECT_SECONDS, defaults.BROKER_CONNECT_RANGE),
    "BROKER_URL": (defaults.BROKER_URL, None),
    "RESULTS_DIR": (defaults.RESULTS_DIR, None),
    "TARGET_QUEUES": (defaults.TARGET_QUEUES, None),
    "TIMEOUT_STRATEGY": (defaults.STRATEGY, None),
}


def bad_values(s: settings.Setting) -> list[str]:
    """Values the entry must refuse: just past each end of its range, a name outside its choices, ..."""
    if s.kind == "integer":
        return [str(s.bounds[0] - 1), str(s.bounds[1] + 1)]
    if s.kind == "number":
        return [str(s.bounds[0] - 0.001), str(s.bounds[1] + 1)]
    if s.kind in ("choice", "list"):
        return ["bogus"]
    if s.kind == "flag":
        return ["maybe"]
    if s.kind == "url":
        return ["bogus"]
    if s.kind == "folder":
        return ["/nonexistent/folder" if s.must_exist else "/etc/passwd"]
    return ["bad value!"] if s.pattern else []  # a text without a pattern refuses nothing


def rejected(read, s: settings.Setting, value: str) -> str | None:
    """The message `read` refuses the value with (None: accepted); `read` must name the variable."""
    try:
        read(value)
    except ConfigError as exc:
        assert exc.name == s.name, f"{s.name}={value!r} refused as {exc.name}: {exc}"
        return str(exc)
    return None


def spec_message(s: settings.Setting, value: str) -> str:
    message = rejected(lambda v: s.read({s.name: v}), s, value)
    assert message is not None, f"{s.name}'s entry accepts its own bad value {value!r}"
    return message


def test_every_entry_is_well_formed():
    """Each entry has a known kind and readers, one line of help, a default its own parser gives back, and only DUCKDB_ROWS and QUERY_SECONDS take `auto`."""
    assert [s.name for s in SPEC] == list(SETTINGS)
    assert {s.name for s in SPEC if s.auto} == {"DUCKDB_ROWS", "QUERY_SECONDS"}
    for s in SPEC:
        assert s.kind in settings.KINDS and set(s.readers) <= set(settings.READERS), s
        assert s.help and "\n" not in s.help and s.help == s.help.strip(), s
        if s.bounds:
            lo, hi = s.bounds
            assert lo < hi and (s.default is None or lo <= s.default <= hi), s
        if s.kind == "choice" and s.default is not None:
            assert s.default in s.choices, s
        if s.kind == "list":
            assert set(s.default) <= set(s.choices), s
        if s.kind != "folder":  # folders are looked at on disk; their defaults are where the reader is
            assert s.read({}) == s.default, s
    with pytest.raises(ValueError, match="ITERATIONS: kind 'string'"):  # refused when the module loads
        settings.Setting("ITERATIONS", "string", 3, "iterations", ("producer",))


def test_defaults_and_ranges_are_app_defaults():
    """The entries' defaults and ranges are app/kernel/defaults.py's values, and the CPython ones are paths.py's."""
    for name, (default, bounds) in FROM_DEFAULTS.items():
        assert (SETTINGS[name].default, SETTINGS[name].bounds) == (default, bounds), name
    assert SETTINGS["TARGET_QUEUES"].choices is axes.QUEUE_NAMES
    assert all(queue in axes.QUEUE_NAMES for queue in axes.KNOWN_QUEUES)
    assert SETTINGS["TIMEOUT_STRATEGY"].choices == axes.STRATEGY_NAMES
    assert SETTINGS["START_METHOD"].choices == axes.START_METHODS
    assert SETTINGS["PYTHON_VERSION"].default == settings.CPYTHON_VERSION == paths.DEFAULT_PYTHON_VERSION
    assert SETTINGS["PYTHON_SHA256"].default == settings.CPYTHON_SHA256 == paths.DEFAULT_PYTHON_SHA256


def test_error_messages_are_envparse_s():
    """What an entry says it accepts is the text of the error its bad values get."""
    for s in SPEC:
        for value in bad_values(s):
            assert f": expected {s.error_expected()}" in spec_message(s, value), (s.name, value)


@pytest.mark.parametrize("reader", ["producer", "workers"])
def test_the_configs_read_exactly_their_variables_through_the_spec(tmp_path, reader):
    """ProducerConfig and WorkerConfig refuse each bad value of the variables the spec says they read, with the spec's own message, and ignore the others."""
    def parse(name, value):
        if reader == "producer":
            return ProducerConfig.from_env({"RESULTS_DIR": str(tmp_path), name: value})
        return WorkerConfig.from_env({"QUEUE": "gil.process", name: value})

    checked = set()
    for s in SPEC:
        for value in bad_values(s):
            got = rejected(lambda v: parse(s.name, v), s, value)
            if reader in s.readers:
                assert got == spec_message(s, value), f"{reader} reads {s.name} otherwise than its entry"
                checked.add(s.name)
            else:
                assert got is None, f"{reader} reads {s.name}, which the spec does not say: {got}"
    assert checked == set(settings.names(reader)) - {"WORKER_NAME"}  # WORKER_NAME refuses nothing
    # and unset, each is its entry's default
    cfg = ProducerConfig.from_env({"RESULTS_DIR": str(tmp_path)}) if reader == "producer" else WorkerConfig.from_env({})
    fields = {"producer": {"iterations": "ITERATIONS", "duckdb_rows": "DUCKDB_ROWS", "duckdb_timeout": "DUCKDB_TIMEOUT",
                           "query_seconds": "QUERY_SECONDS", "target_queues": "TARGET_QUEUES",
                           "result_grace": "RESULT_GRACE_SECONDS", "settle_seconds": "SETTLE_SECONDS"},
              "workers": {"queue": "QUEUE", "strategy": "TIMEOUT_STRATEGY", "cleanup_children": "CLEANUP_CHILDREN",
                          "settle_seconds": "SETTLE_SECONDS", "cleanup_grace": "CLEANUP_GRACE_SECONDS",
                          "duckdb_threads": "DUCKDB_THREADS", "calibration_dir": "CALIBRATION_DIR"}}[reader]
    assert {f: getattr(cfg, f) for f in fields} == {f: SETTINGS[n].default for f, n in fields.items()}
    assert (cfg.broker.broker_url, cfg.broker.connect_seconds, cfg.broker.result_backend) == (
        SETTINGS["BROKER_URL"].default, SETTINGS["BROKER_CONNECT_SECONDS"].default, SETTINGS["RESULT_BACKEND"].default)


def test_the_producer_flags_are_the_spec_s():
    """`python -m producer`'s flags are `--` + each entry's flag, today's names exactly, each overriding its variable."""
    assert producer_config.FLAGS == {f"--{s.flag}": s.name for s in SPEC if s.flag}
    assert producer_config.FLAGS == PRODUCER_FLAGS
    for flag, name in PRODUCER_FLAGS.items():
        assert vars(producer_config.parser().parse_args([flag, "7"]))[name] == "7"


def test_scripts_lab_accepts_the_spec_s_variables(tmp_path):
    """`scripts/lab run|quick VARIABLE=value` accepts the entries read by scripts/lab (today's set), and each one is read: a bad value stops the plan."""
    assert native.OVERRIDES == settings.names("scripts/lab")
    assert set(native.OVERRIDES) == LAB_OVERRIDES
    assert native.parse_overrides([f"{n}=1" for n in native.OVERRIDES]) == {n: "1" for n in native.OVERRIDES}
    with pytest.raises(native.UsageError, match="unknown variable TIMEOUT_STRATEGY"):
        native.parse_overrides(["TIMEOUT_STRATEGY=deadline"])  # each worker's queue sets it
    base = {"RESULTS_DIR": str(tmp_path), "LAB_CACHE": str(tmp_path / "cache")}
    for name in native.OVERRIDES:
        s = SETTINGS[name]
        for value in bad_values(s):
            if name == "PYTHON_VERSION":  # read when the run looks for its interpreters
                with pytest.raises(native.UsageError, match="PYTHON_VERSION"):
                    native.built_python("gil", {**base, name: value})
                continue
            assert rejected(lambda v: native.make_plan("quick", {name: v}, base), s, value) == spec_message(s, value)
    assert native.BROKERS == SETTINGS["LAB_BROKER"].choices


def test_claims_variables_are_the_spec_s(tmp_path):
    """`scripts/lab claims` accepts the entries read by claims, with CLAIMS_OVERRIDES' ranges and defaults, from the environment only where the entry says so."""
    spec = settings.claims_settings()
    assert set(claims.VARIABLES) == set(spec) == set(settings.names("claims")) == CLAIMS_VARIABLES
    assert claims.VARIABLES == {name: s.describe() for name, s in spec.items()}
    assert spec["ITERATIONS"].bounds == (1, 20) and spec["DUCKDB_ROWS"].bounds == (10_000_000, 100_000_000_000)
    env = {"RESULTS_DIR": str(tmp_path)}
    assert claims.parse_args([], env).iterations == spec["ITERATIONS"].default == defaults.ITERATIONS
    assert claims.parse_args(["--quick"], env).iterations == settings.CLAIMS_QUICK_ITERATIONS
    for name, s in spec.items():
        for value in bad_values(s):
            if name == "LAB_CACHE":
                continue  # claims reads LAB_CACHE where it uses it (paths.cache_root), not in parse_args
            said = rejected(lambda v: claims.parse_args([f"{name}={v}"], env), s, value)
            assert said == spec_message(s, value), (name, value, said)
            from_env = rejected(lambda v: claims.parse_args([], {**env, name: v}), s, value)
            assert (from_env is not None) == s.env, f"claims reads {name} from the environment: {from_env}"


def test_every_help_prints_the_spec_s_entries(capsys):
    """`scripts/lab --help`, `scripts/lab run|quick --help`, `scripts/lab claims --help` and `python -m producer --help` list their variables with the spec's words."""
    top = cli.usage()
    assert all(name in top for name in settings.names("scripts/lab")), top
    assert "|".join(SETTINGS["LAB_BROKER"].choices) in top
    for mode in ("run", "quick"):
        text = native._parser(mode).format_help()
        assert "\n".join(settings.usage_lines(SETTINGS[n] for n in native.OVERRIDES)) in text, text
    assert "\n".join(settings.usage_lines(settings.claims_settings().values())) in claims.USAGE
    flat = "".join(producer_config.parser().format_help().split())  # argparse wraps, even at hyphens
    for flag, name in producer_config.FLAGS.items():
        assert "".join(f"{flag} {name} {SETTINGS[name].describe()}".split()) in flat, (flag, flat)


def test_the_readme_table_is_generated_from_the_spec():
    """README.md's settings section carries exactly the table app/kernel/settings.py renders, with its two links."""
    text = (labtest.REPO / "README.md").read_text()
    section = text.split("## Settings (env overrides)\n", 1)[1].split("\n## ", 1)[0]
    assert settings.BEGIN in section and settings.END in section, "the markers moved out of the settings section"
    block = settings.readme_block(text)
    assert block == settings.markdown(), "run: python3 -m app.kernel.settings --write"
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \|", block, re.M)
    assert rows == [s.name for s in SPEC]
    assert "(#sized-to-your-machine-the-calibration)" in block and "(#mitigations-measured)" in block
    for s in SPEC:  # each row says its default, what it accepts and who reads it
        assert f"| `{s.name}` | {s.help} | {s.default_text()} | {s.accepted()} |" in block


# --- docker-compose.yml ---------------------------------------------------------------------------------

PASS_THROUGH = re.compile(r"([A-Z][A-Z0-9_]*): \$\{([A-Z][A-Z0-9_]*)")


def compose_environments(text: str) -> dict[str, dict]:
    """Each service (and x- template) of a Compose file: its command line and the `KEY: ${VAR...}` of its environment."""
    blocks: dict[str, dict] = {}
    top = block = None
    env_indent = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            top = line.split(":", 1)[0]
            block, env_indent = (None if top == "services" else top), None
            continue
        if top == "services" and indent == 2:
            block, env_indent = stripped.split(":", 1)[0], None
            continue
        if block is None:
            continue
        entry = blocks.setdefault(block, {"command": "", "env": set()})
        if env_indent is not None and indent <= env_indent:
            env_indent = None
        if stripped.startswith("command:"):
            entry["command"] = stripped
        if stripped.startswith("environment:"):
            rest = stripped[len("environment:"):].strip()
            if not rest.startswith("{"):
                env_indent = indent
                continue
            entry["env"] |= set(PASS_THROUGH.findall(rest))
        elif env_indent is not None:
            entry["env"] |= set(PASS_THROUGH.findall(stripped))
    return blocks


def _reader(command: str) -> str | None:
    if "celery -A app worker" in command:
        return "workers"
    if "producer" in command:
        return "producer"
    return None


def compose_problems(text: str) -> list[str]:
    """Where a Compose file's pass-through and the spec's reader "compose" disagree."""
    blocks = compose_environments(text)
    problems = []
    for name, entry in blocks.items():
        for key, var in sorted(entry["env"]):
            reader = _reader(entry["command"])
            if key != var:
                problems.append(f"{name}: {key} is set from ${{{var}}}, not passed through")
            elif var not in SETTINGS or "compose" not in SETTINGS[var].readers:
                problems.append(f"{name}: passes {var}, which app/kernel/settings.py does not mark as read through Compose")
            elif reader not in SETTINGS[var].readers:
                problems.append(f"{name}: passes {var} to a {reader or 'service nobody'} the spec does not say reads it")
    for template, reader in (("x-worker", "workers"), ("producer", "producer")):
        want = {n for n in settings.names("compose") if reader in SETTINGS[n].readers}
        have = {var for _, var in blocks.get(template, {"env": set()})["env"]}
        problems += [f"{template}: does not pass {n} through (the spec: Compose passes it to the {reader})"
                     for n in sorted(want - have)]
    return problems


def test_compose_passes_through_exactly_what_the_spec_says():
    """docker-compose.yml passes each variable the spec marks "compose" into the services that read it, and nothing else."""
    text = (labtest.REPO / "docker-compose.yml").read_text()
    assert compose_problems(text) == []
    # the check sees a missing and an undeclared pass-through
    drifted = text.replace("    DUCKDB_THREADS: ${DUCKDB_THREADS:-}\n", "    FOO: ${FOO:-}\n", 1)
    assert drifted != text
    found = compose_problems(drifted)
    assert any("FOO" in p for p in found) and any("does not pass DUCKDB_THREADS" in p for p in found), found


# --- the CPython version and its SHA-256 ----------------------------------------------------------------

# Files that build CPython or stage its tarball and repeat the version (and some the SHA-256).
BUILD_FILES = ("Dockerfile.gil", "Dockerfile.nogil", "docker-compose.yml", "scripts/docker-bootstrap", ".ci/run")


def version_problems(texts: dict[str, str]) -> list[str]:
    """Where a file states another CPython version or SHA-256 than app/kernel/settings.py's."""
    version, sha = settings.CPYTHON_VERSION, settings.CPYTHON_SHA256
    problems = []
    for name, text in texts.items():
        if name.startswith("README"):  # the project structure's line on the Dockerfiles
            text = "\n".join(line for line in text.splitlines() if line.startswith("Dockerfile.gil "))
        found = set(re.findall(r"(?<![\d.])3\.\d+\.\d+(?!\.?\d)", text))
        if found != {version}:
            problems.append(f"{name}: CPython {', '.join(sorted(found)) or 'not named'}, expected {version}")
        problems += [f"{name}: SHA-256 {h}, expected {sha}" for h in set(re.findall(r"\b[0-9a-f]{64}\b", text)) - {sha}]
        problems += [f"{name}: _SHA_{d} is not {version}'s" for d in set(re.findall(r"_SHA_(\d+)", text))
                     if d != version.replace(".", "")]
    return problems


def test_the_cpython_version_and_its_sha256_are_declared_once():
    """Every file that repeats the CPython version or its SHA-256 states app/kernel/settings.py's, and build.py pins that SHA-256 for it."""
    texts = {name: (labtest.REPO / name).read_text() for name in (*BUILD_FILES, "README.md", "README.ja.md")}
    assert version_problems(texts) == []
    assert all(settings.CPYTHON_SHA256 in texts[n] for n in ("Dockerfile.gil", "Dockerfile.nogil", "docker-compose.yml",
                                                             "scripts/docker-bootstrap"))
    assert build.DEFAULT_PYTHON_VERSION == settings.CPYTHON_VERSION
    assert build.PYTHON_SHA256[settings.CPYTHON_VERSION] == settings.CPYTHON_SHA256
    # the check sees a file left behind
    stale = {**texts, "Dockerfile.gil": texts["Dockerfile.gil"].replace(settings.CPYTHON_VERSION, "3.14.6", 1)}
    assert [p for p in version_problems(stale) if p.startswith("Dockerfile.gil:")], "a stale version went unseen"


def test_the_scripts_the_spec_names_as_readers_name_their_variables():
    """Each variable the spec says `scripts/lab setup`, `scripts/docker-bootstrap` or the image builds read appears where they read it."""
    repo = labtest.REPO
    setup = (repo / "scripts/labctl/build.py").read_text() + (repo / "scripts/labctl/paths.py").read_text()
    bootstrap = (repo / "scripts/docker-bootstrap").read_text()
    compose = (repo / "docker-compose.yml").read_text()
    build_args = compose.split("x-build-args:", 1)[1].split("\n\n", 1)[0]
    dockerfiles = [(repo / name).read_text() for name in ("Dockerfile.gil", "Dockerfile.nogil")]
    assert settings.names("setup") and settings.names("docker-bootstrap") and settings.names("images")
    for name in settings.names("setup"):
        assert f'"{name}"' in setup, f"scripts/lab setup does not read {name}"
    for name in settings.names("docker-bootstrap"):
        assert re.search(rf"\${{?{name}\b", bootstrap), f"scripts/docker-bootstrap does not read {name}"
    for name in settings.names("images"):
        assert f"{name}: ${{{name}:-" in build_args, f"Compose's build args do not pass {name}"
        assert all(f"ARG {name}=" in text for text in dockerfiles), f"a Dockerfile has no ARG {name}"


def test_the_spec_imports_only_the_standard_library():
    """app/kernel/settings.py loads nothing outside the standard library and the app's own modules, in a fresh interpreter."""
    code = ("import json, sys\nimport app.kernel.settings\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] not in sys.stdlib_module_names"
            " and m.split('.')[0] not in ('app', '__main__'))))")
    done = subprocess.run([sys.executable, "-S", "-c", code], cwd=labtest.REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_read_takes_a_reader_s_default():
    """`read(env, default=...)` gives a reader's own default when unset and still checks a given value against the entry."""
    s = SETTINGS["TIMEOUT_STRATEGY"]
    assert s.read({}, default="deadline") == "deadline"
    assert s.read({"TIMEOUT_STRATEGY": " interrupt "}, default="deadline") == "interrupt"
    with pytest.raises(ConfigError, match=re.escape(envparse.choice_expected(axes.STRATEGY_NAMES))):
        s.read({"TIMEOUT_STRATEGY": "magic"}, default="deadline")
