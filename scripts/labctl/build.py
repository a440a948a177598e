"""Build the lab's two CPython interpreters (gil and free-threaded "nogil") and a venv on each.

Entry points: `scripts/build-python` (command line: `python -m labctl.build`, scripts/labctl/launch.py)
and `scripts/lab setup`, both through `main(argv, env)`. Standard library only; runs on any CPython >= 3.10.

Layout (see labctl.paths):
  <cache>/python/<version>-<flavour>/            installed interpreter (+ .lab-build.json, lab-verify.json)
  <cache>/venv/<version>-<flavour>-<reqhash>/    lab venv (+ .lab-venv.json, lab-verify.json)
  <cache>/wheels/<version>-nogil/                duckdb wheel built here when no WHEELHOUSE has one
  <cache>/downloads/Python-<version>.tar.xz      verified python.org download, reused later
  <cache>/logs/                                  build logs (tail printed on failure)
  <cache>/tmp/                                   build trees; removed after each build

Exit codes: 0 ok, 1 a build step failed (log tail on stderr), 2 bad option or bad input
(one line on stderr, nothing in the cache touched).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from . import optional, paths
from .paths import DEFAULT_PYTHON_VERSION, FLAVOURS, REQUIREMENTS, VENV_REQUIREMENTS

PROG = "build-python"
TAG = f"[{PROG}]"

# SHA-256 of python.org's release tarballs (Python-<version>.tar.xz) this lab knows.
PYTHON_SHA256 = {
    "3.14.7": "3b48dac8fb59f62eaa67ac83c1eb12bda1b7a08406dd286e252c11a66be27f81",
}
PYTHON_URL = "https://www.python.org/ftp/python/{v}/Python-{v}.tar.xz"

VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
TARBALL_RE = re.compile(r"Python-(\d+\.\d+\.\d+)\.(?:tar\.xz|tar\.gz|tgz|tar\.bz2|tar)$")

BUILD_MARKER = ".lab-build.json"
VENV_MARKER = ".lab-venv.json"
VERIFY_FILE = "lab-verify.json"
# Variables that would make a child interpreter look at the wrong stdlib or GIL setting.
SCRUB_ENV = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHON_GIL", "VIRTUAL_ENV",
             "PYTHONNOUSERSITE", "PYTHONUSERBASE", "__PYVENV_LAUNCHER__")


class InputError(Exception):
    """A problem with an option or input: reported as one line, exit 2, before any work."""


class StepError(Exception):
    """A build step failed: its log's tail is printed, exit 1."""

    def __init__(self, message: str, log: Path | None = None) -> None:
        super().__init__(message)
        self.log = log


# ---------------------------------------------------------------------------------------------
# Paths of one flavour


def exe_name(version: str, flavour: str) -> str:
    """The versioned interpreter binary `make install` always creates (python3.14 / python3.14t)."""
    major, minor, _ = version.split(".")
    return f"python{major}.{minor}{'t' if flavour == 'nogil' else ''}"


def flavour_paths(version: str, flavour: str, env: Mapping[str, str] | None = None) -> dict:
    """Where one flavour's interpreter, venv and verification files live (built or not)."""
    prefix = paths.python_prefix(version, flavour, env)
    venv = paths.venv_dir(version, flavour, env)
    return {
        "version": version,
        "flavour": flavour,
        "prefix": str(prefix),
        "python": str(prefix / "bin" / exe_name(version, flavour)),
        "venv": str(venv),
        "venv_python": str(venv / "bin" / "python"),
        "verify": str(prefix / VERIFY_FILE),
        "venv_verify": str(venv / VERIFY_FILE),
        "build_log": str(log_dir(env) / f"python-{version}-{flavour}.log"),
        "venv_log": str(log_dir(env) / f"venv-{version}-{flavour}.log"),
    }


def log_dir(env: Mapping[str, str] | None = None) -> Path:
    return paths.cache_root(env) / "logs"


def wheels_dir(version: str, env: Mapping[str, str] | None = None) -> Path:
    """Where a duckdb wheel built for the nogil interpreter is kept (built once per machine)."""
    return paths.cache_root(env) / "wheels" / f"{version}-nogil"


def interpreter_ready(version: str, flavour: str, env: Mapping[str, str] | None = None) -> bool:
    prefix = paths.python_prefix(version, flavour, env)
    return (prefix / BUILD_MARKER).is_file() and (prefix / "bin" / exe_name(version, flavour)).is_file()


def venv_ready(version: str, flavour: str, env: Mapping[str, str] | None = None) -> bool:
    venv = paths.venv_dir(version, flavour, env)
    return (venv / VENV_MARKER).is_file() and (venv / VERIFY_FILE).is_file() and (venv / "bin" / "python").exists()


def print_paths(version: str, flavours: Sequence[str], env: Mapping[str, str] | None = None) -> dict:
    """{flavour: {prefix, python, venv, venv_python, verify, ..., built, venv_ready, verified}}."""
    out = {}
    for flavour in flavours:
        info = flavour_paths(version, flavour, env)
        info["built"] = interpreter_ready(version, flavour, env)
        info["venv_ready"] = venv_ready(version, flavour, env)
        info["verified"] = read_json(Path(info["venv_verify"])) if info["venv_ready"] else None
        out[flavour] = info
    return out


# ---------------------------------------------------------------------------------------------
# Small helpers


def say(msg: str) -> None:
    print(f"{TAG} {msg}", flush=True)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_json(path: Path, data: dict) -> None:
    """Write atomically: a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def child_env(env: Mapping[str, str], **extra: str) -> dict[str, str]:
    out = {k: v for k, v in env.items() if k not in SCRUB_ENV}
    out.update(extra)
    return out


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def pinned(name: str, requirement_file: str = "lab.txt") -> str:
    """The `name==X` pin in requirements/<requirement_file>."""
    for line in (REQUIREMENTS / requirement_file).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        m = re.match(rf"^{re.escape(name)}\s*==\s*([^\s;]+)", line, re.IGNORECASE)
        if m:
            return m.group(1)
    raise InputError(f"requirements/{requirement_file}: no '{name}==' pin")


@contextlib.contextmanager
def progress(label: str) -> Iterator[None]:
    """`[build-python] <label> ... done in Ns`; on a terminal the seconds tick while it runs."""
    start = time.monotonic()
    tty = sys.stdout.isatty()
    stop = threading.Event()
    sys.stdout.write(f"{TAG} {label} ...")
    sys.stdout.flush()

    def tick() -> None:
        while not stop.wait(1.0):
            sys.stdout.write(f"\r{TAG} {label} ... {time.monotonic() - start:.0f}s")
            sys.stdout.flush()

    ticker = threading.Thread(target=tick, daemon=True) if tty else None
    if ticker:
        ticker.start()
    ok = False
    try:
        yield
        ok = True
    finally:
        stop.set()
        if ticker:
            ticker.join()
        elapsed = time.monotonic() - start
        prefix = f"\r{TAG} {label} ..." if tty else ""
        sys.stdout.write(f"{prefix} {'done' if ok else 'FAILED'} in {elapsed:.0f}s\n")
        sys.stdout.flush()


def run_logged(cmd: Sequence[str], log: Path, *, cwd: Path | None = None,
               env: Mapping[str, str] | None = None) -> None:
    with open(log, "a") as fh:
        fh.write(f"\n$ {shlex.join(str(c) for c in cmd)}\n")
        fh.flush()
        # Own process group, so an interrupted build stops make's compilers too, not just make.
        proc = subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=env, stdout=fh,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            returncode = proc.wait()
        except BaseException:
            _stop_group(proc)
            raise
    if returncode != 0:
        raise StepError(f"`{shlex.join(str(c) for c in cmd)}` exited {returncode}", log)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM the step's whole process group; SIGKILL what is still there after 10 s."""
    import signal

    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            proc.poll()  # reap the leader, or the group never looks empty
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
    proc.poll()


def step(label: str, cmd: Sequence[str], log: Path, **kw) -> float:
    start = time.monotonic()
    with progress(label):
        run_logged(cmd, log, **kw)
    return round(time.monotonic() - start, 1)


# ---------------------------------------------------------------------------------------------
# The CPython source


class Source:
    """A verified CPython source tarball: a local file (maybe a verified download)."""

    def __init__(self, path: Path, sha256: str | None, origin: str, downloaded: bool) -> None:
        self.path = path
        self.sha256 = sha256
        self.origin = origin
        self.downloaded = downloaded  # True: path is a temp file to move into the cache


def expected_sha(version: str, env: Mapping[str, str]) -> str | None:
    given = env.get("PYTHON_SHA256", "").strip().lower()
    if given:
        if not re.fullmatch(r"[0-9a-f]{64}", given):
            raise InputError(f"PYTHON_SHA256={given}: not a SHA-256 (64 hex digits)")
        return given
    return PYTHON_SHA256.get(version)


def check_name_version(name: str, version: str, var: str) -> None:
    m = TARBALL_RE.search(name)
    if m and m.group(1) != version:
        raise InputError(f"{var}={name}: is Python {m.group(1)}, but --version is {version}")


def resolve_source(version: str, env: Mapping[str, str]) -> Source:
    """Find and verify the source tarball without writing anything into the cache."""
    spec = env.get("PYTHON_SOURCE", "").strip()
    want = expected_sha(version, env)
    if spec and not re.match(r"^https?://", spec):
        var = f"PYTHON_SOURCE={spec}"
        path = Path(spec).expanduser()
        check_name_version(path.name, version, "PYTHON_SOURCE")
        if not path.exists():
            raise InputError(f"{var}: no such file")
        if not path.is_file():
            raise InputError(f"{var}: not a file")
        try:
            got = sha256_file(path)
        except OSError as exc:
            raise InputError(f"{var}: unreadable ({exc.strerror or exc})") from None
        if want and got != want:
            raise InputError(f"{var}: SHA-256 mismatch (got {got}, expected {want})")
        if not want:  # nothing to compare with: at least read it all before touching the cache
            problem = tarball_problem(path, version)
            if problem:
                raise InputError(f"{var}: {problem} (and no PYTHON_SHA256 to check it against)")
        return Source(path, got if want else None, str(path), downloaded=False)

    url = spec or PYTHON_URL.format(v=version)
    var = f"PYTHON_SOURCE={url}" if spec else f"PYTHON_SOURCE unset, default {url}"
    hint = "" if spec else f"; set PYTHON_SOURCE to a local Python-{version}.tar.xz to build offline"
    if spec:
        check_name_version(url.rsplit("/", 1)[-1], version, "PYTHON_SOURCE")
    if not want:
        raise InputError(f"{var}: no pinned SHA-256 for Python {version}; set PYTHON_SHA256")
    cached = paths.cache_root(env) / "downloads" / f"Python-{version}.tar.xz"
    if not spec and cached.is_file() and sha256_file(cached) == want:
        return Source(cached, want, f"{cached} (earlier download)", downloaded=False)
    fd, tmpname = tempfile.mkstemp(prefix=f"Python-{version}-", suffix=".download")
    tmp = Path(tmpname)
    digest = hashlib.sha256()
    try:
        with progress(f"download {url}"):
            try:
                with urllib.request.urlopen(url, timeout=60) as resp, os.fdopen(fd, "wb") as out:
                    for chunk in iter(lambda: resp.read(1 << 20), b""):
                        digest.update(chunk)
                        out.write(chunk)
            except urllib.error.HTTPError as exc:
                raise InputError(f"{var}: HTTP {exc.code} {exc.reason}{hint}") from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise InputError(f"{var}: unreachable ({reason}){hint}") from None
        got = digest.hexdigest()
        if got != want:
            raise InputError(f"{var}: SHA-256 mismatch (got {got}, expected {want})")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Source(tmp, want, url, downloaded=True)


def tarball_problem(path: Path, version: str) -> str | None:
    """Why this file is not a readable CPython <version> source tarball, or None."""
    top = f"Python-{version}"
    try:
        with tarfile.open(path) as tar:
            names = tar.getnames()
    except (tarfile.TarError, EOFError, OSError) as exc:
        return f"not a readable tarball ({exc})"
    if f"{top}/configure" not in names:
        return f"not a Python {version} source tarball (no {top}/configure)"
    return None


def extract(source: Source, version: str, dest: Path) -> Path:
    """Unpack into dest; return the source tree (Python-<version>/)."""
    top = f"Python-{version}"
    try:
        with tarfile.open(source.path) as tar:
            members = tar.getmembers()
            bad = [m.name for m in members if m.name.split("/", 1)[0] != top]
            if bad:
                raise StepError(f"{source.origin}: not a Python {version} tarball (has {bad[0]!r})")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:  # pragma: no cover - Python < 3.10.12
                tar.extractall(dest, members=members)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise StepError(f"{source.origin}: cannot unpack ({exc})") from None
    tree = dest / top
    if not (tree / "configure").is_file():
        raise StepError(f"{source.origin}: no configure script in {top}/")
    return tree


# ---------------------------------------------------------------------------------------------
# Building one interpreter


PROBE_INTERPRETER = r"""
import json, sys, sysconfig
print(json.dumps({
    "sys_version": sys.version,
    "executable": sys.executable,
    "py_gil_disabled": sysconfig.get_config_var("Py_GIL_DISABLED"),
    "abiflags": sysconfig.get_config_var("abiflags"),
    "config_args": sysconfig.get_config_var("CONFIG_ARGS"),
    "gil_enabled": sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True,
}))
"""


def probe_json(cmd: Sequence[str], env: Mapping[str, str], log: Path | None = None) -> dict:
    proc = subprocess.run([str(c) for c in cmd], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=300)
    if log is not None:
        with open(log, "a") as fh:
            fh.write(f"\n$ {shlex.join(str(c) for c in cmd[:2])} <probe>\n{proc.stdout}{proc.stderr}")
    if proc.returncode != 0:
        last = (noise_free(proc.stderr) or ["(no output)"])[-1].strip()
        raise StepError(f"probe `{cmd[0]}` exited {proc.returncode}: {last}", log)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            data = json.loads(line)
            data["stderr"] = noise_free(proc.stderr)
            return data
    raise StepError(f"probe `{cmd[0]}` printed no JSON", log)


def noise_free(stderr: str) -> list[str]:
    """stderr lines without nanobind's "leaked instances" report at interpreter exit."""
    out = []
    for line in stderr.splitlines():
        s = line.strip()
        if not s or "nanobind" in s or s.startswith(("- leaked", "- ... skipped")):
            continue
        out.append(line)
    return out


def flavour_ok(flavour: str, py_gil_disabled) -> bool:
    return py_gil_disabled == 1 if flavour == "nogil" else py_gil_disabled in (0, None)


def build_interpreter(version: str, flavour: str, source: Source, jobs: int,
                      configure_opts: list[str], env: Mapping[str, str], force: bool) -> dict:
    cache = paths.cache_root(env)
    prefix = paths.python_prefix(version, flavour, env)
    fp = flavour_paths(version, flavour, env)
    log = Path(fp["build_log"])
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"# {PROG}: Python {version} {flavour} from {source.origin}\n")
    (cache / "tmp").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{version}-{flavour}-", dir=cache / "tmp"))
    cenv = child_env(env)
    times: dict[str, float] = {}
    total = time.monotonic()
    try:
        with progress(f"{flavour}: unpack {source.path.name}"):
            tree = extract(source, version, work)
        args = ["./configure", f"--prefix={prefix}", "--with-ensurepip=install"]
        if flavour == "nogil":
            args.append("--disable-gil")
        args += configure_opts
        times["configure"] = step(f"{flavour}: configure", args, log, cwd=tree, env=cenv)
        times["make"] = step(f"{flavour}: make -j{jobs}", ["make", f"-j{jobs}"], log, cwd=tree, env=cenv)
        stage = work / "stage"
        times["install"] = step(f"{flavour}: make install", ["make", "install", f"DESTDIR={stage}"],
                                log, cwd=tree, env=cenv)
        staged = stage / prefix.relative_to(prefix.anchor)
        info = probe_json([staged / "bin" / exe_name(version, flavour), "-c", PROBE_INTERPRETER],
                          cenv, log)
        if not flavour_ok(flavour, info["py_gil_disabled"]):
            raise StepError(f"{flavour}: built interpreter has Py_GIL_DISABLED="
                            f"{info['py_gil_disabled']!r}", log)
        times["total"] = round(time.monotonic() - total, 1)
        marker = {
            "version": version,
            "flavour": flavour,
            "configure": args,
            "source": source.origin,
            "source_sha256": source.sha256,
            "jobs": jobs,
            "seconds": times,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "py_gil_disabled": info["py_gil_disabled"],
            "sys_version": info["sys_version"],
        }
        write_json(staged / BUILD_MARKER, marker)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        old = None
        if prefix.exists():  # --force, or a half-made prefix from some other tool
            old = work / "old"
            os.rename(prefix, old)
        os.rename(staged, prefix)
        say(f"{flavour}: installed {prefix} (Py_GIL_DISABLED={info['py_gil_disabled']}) "
            f"in {times['total']:.0f}s")
        return marker
    finally:
        shutil.rmtree(work, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The venv


PROBE_VENV = r"""
import importlib.metadata as md, json, sys, sysconfig, warnings
before = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import duckdb
after = sys._is_gil_enabled() if hasattr(sys, "_is_gil_enabled") else True
try:
    query = duckdb.sql("select 42").fetchall() == [(42,)]
except Exception as exc:
    query = f"{type(exc).__name__}: {exc}"
import celery, timeout_decorator, psutil
print(json.dumps({
    "gil_enabled_before_import": before,
    "gil_enabled_after_import_duckdb": after,
    "duckdb_query_ok": query,
    "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
    "packages": {n: md.version(n) for n in
                 ("duckdb", "celery", "kombu", "billiard", "timeout-decorator", "psutil", "matplotlib")},
    "py_gil_disabled": sysconfig.get_config_var("Py_GIL_DISABLED"),
    "sys_version": sys.version,
}))
"""


def duckdb_wheel_in(dirs: Sequence[Path], version: str) -> Path | None:
    """A duckdb wheel for the free-threaded ABI (cpXYt) with the pinned version, if any."""
    major, minor, _ = version.split(".")
    tag = f"cp{major}{minor}"
    pin = pinned("duckdb")
    for d in dirs:
        for whl in sorted(d.glob(f"duckdb-{pin}-{tag}-{tag}t-*.whl")):
            return whl
    return None


def build_duckdb_wheel(version: str, venv_python: Path, env: Mapping[str, str]) -> Path:
    """Compile the pinned duckdb from its sdist once per machine into <cache>/wheels/."""
    target = wheels_dir(version, env)
    cache = paths.cache_root(env)
    log = log_dir(env) / f"duckdb-wheel-{version}-nogil.log"
    log.write_text(f"# {PROG}: duckdb {pinned('duckdb')} wheel for Python {version} nogil\n")
    (cache / "tmp").mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"duckdb-{version}-", dir=cache / "tmp"))
    try:
        say("nogil: no duckdb wheel for the free-threaded ABI in WHEELHOUSE or the cache; "
            "compiling it from the sdist once (about 46 min on 2 cores; set WHEELHOUSE to skip)")
        step(f"nogil: pip wheel duckdb=={pinned('duckdb')}",
             [venv_python, "-m", "pip", "wheel", "--disable-pip-version-check", "--no-input",
              f"duckdb=={pinned('duckdb')}", "--no-deps", "--no-binary", "duckdb", "-w", work],
             log, env=child_env(env))
        built = duckdb_wheel_in([work], version)
        if built is None:
            raise StepError("pip wheel produced no free-threaded duckdb wheel", log)
        target.mkdir(parents=True, exist_ok=True)
        final = target / built.name
        os.replace(built, final)
        say(f"nogil: kept {final} for later runs")
        return final
    finally:
        shutil.rmtree(work, ignore_errors=True)


def verify_venv(version: str, flavour: str, env: Mapping[str, str], log: Path | None) -> dict:
    """Import the lab's packages in the venv and record the GIL state after `import duckdb`."""
    fp = flavour_paths(version, flavour, env)
    venv_python = fp["venv_python"]
    runs = {}
    cenv = child_env(env)
    runs["PYTHON_GIL unset"] = probe_json([venv_python, "-c", PROBE_VENV], cenv, log)
    if flavour == "nogil":
        runs["PYTHON_GIL=0"] = probe_json([venv_python, "-c", PROBE_VENV],
                                          child_env(env, PYTHON_GIL="0"), log)
    interp = probe_json([fp["python"], "-c", PROBE_INTERPRETER], cenv, log)
    expected = {"PYTHON_GIL unset": True, "PYTHON_GIL=0": False}
    checks = {
        "flavour_ok": flavour_ok(flavour, interp["py_gil_disabled"]),
        "imports_ok": all(r["duckdb_query_ok"] is True for r in runs.values()),
        "gil_as_expected": all(r["gil_enabled_after_import_duckdb"] == expected[k]
                               for k, r in runs.items()),
    }
    if flavour == "nogil":
        checks["gil_disabled_at_start"] = all(not r["gil_enabled_before_import"] for r in runs.values())
        checks["runtime_warning_without_PYTHON_GIL"] = any(
            w.startswith("RuntimeWarning") and "GIL" in w for w in runs["PYTHON_GIL unset"]["warnings"])
    for r in runs.values():
        r.pop("sys_version", None)
        r.pop("py_gil_disabled", None)
    return {
        "schema": 1,
        "version": version,
        "flavour": flavour,
        "prefix": fp["prefix"],
        "python": fp["python"],
        "venv": fp["venv"],
        "venv_python": venv_python,
        "sys_version": interp["sys_version"],
        "py_gil_disabled": interp["py_gil_disabled"],
        "config_args": interp["config_args"],
        "gil_after_import_duckdb": runs,
        "packages": runs["PYTHON_GIL unset"]["packages"],
        "checks": checks,
        "ok": all(checks.values()),
        "verified_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def build_venv(version: str, flavour: str, env: Mapping[str, str], wheelhouse: Path | None) -> dict:
    fp = flavour_paths(version, flavour, env)
    venv = Path(fp["venv"])
    log = Path(fp["venv_log"])
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"# {PROG}: venv {venv}\n")
    cenv = child_env(env)
    times: dict[str, float] = {}
    start = time.monotonic()
    if venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    try:
        times["venv"] = step(f"{flavour}: venv {venv.name}", [fp["python"], "-m", "venv", venv],
                             log, env=cenv)
        links = [wheelhouse] if wheelhouse else []
        pip_extra: list[str] = []
        if flavour == "nogil":
            cached = wheels_dir(version, env)
            if cached.is_dir():
                links.append(cached)
            wheel = duckdb_wheel_in(links, version)
            if wheel is None:
                t0 = time.monotonic()
                wheel = build_duckdb_wheel(version, Path(fp["venv_python"]), env)
                times["duckdb_wheel"] = round(time.monotonic() - t0, 1)
                links.append(wheel.parent)
            # Never let pip fall back to a silent 46-minute sdist build.
            pip_extra += ["--only-binary", "duckdb"]
        for d in links:
            pip_extra += ["--find-links", str(d)]
        reqs: list[str] = []
        for name in VENV_REQUIREMENTS:
            reqs += ["-r", str(REQUIREMENTS / name)]
        times["pip_install"] = step(
            f"{flavour}: pip install -r {' -r '.join(VENV_REQUIREMENTS)}",
            [fp["venv_python"], "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
             *pip_extra, *reqs], log, env=cenv)
        t0 = time.monotonic()
        with progress(f"{flavour}: optional packages ({paths.OPTIONAL_REQUIREMENTS}, wheels only)"):
            optional_record = optional.install(fp["venv_python"], REQUIREMENTS / paths.OPTIONAL_REQUIREMENTS, log,
                                               extra=[x for d in links for x in ("--find-links", str(d))])
        times["optional"] = round(time.monotonic() - t0, 1)
        for pin, why in optional_record["missing"].items():
            say(f"{flavour}: optional {pin} not installed: {why} (what needs it is skipped with a note)")
        with progress(f"{flavour}: verify venv"):
            result = verify_venv(version, flavour, env, log)
        result["optional"] = optional_record
        times["total"] = round(time.monotonic() - start, 1)
        result["seconds"] = times
        result["find_links"] = [str(d) for d in links]
        write_json(venv / VERIFY_FILE, result)
        write_json(Path(fp["prefix"]) / VERIFY_FILE, result)
        write_json(venv / VENV_MARKER, {
            "version": version, "flavour": flavour,
            "requirements": list(VENV_REQUIREMENTS),
            "requirements_key": paths.requirements_key(*VENV_REQUIREMENTS),
            "find_links": [str(d) for d in links], "seconds": times,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        })
        return result
    except BaseException:
        shutil.rmtree(venv, ignore_errors=True)
        raise


def reverify_venv(version: str, flavour: str, env: Mapping[str, str]) -> dict:
    """Check an existing venv again (its last check failed), keeping its build record."""
    fp = flavour_paths(version, flavour, env)
    log = Path(fp["venv_log"])
    log.parent.mkdir(parents=True, exist_ok=True)
    with progress(f"{flavour}: verify venv again (its last check failed)"):
        result = verify_venv(version, flavour, env, log)
    old = read_json(Path(fp["venv_verify"])) or {}
    result["seconds"] = old.get("seconds", {})
    result["find_links"] = old.get("find_links", [])
    write_json(Path(fp["venv_verify"]), result)
    write_json(Path(fp["prefix"]) / VERIFY_FILE, result)
    return result


# ---------------------------------------------------------------------------------------------
# The command


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line naming the option and what is accepted, exit 2
        line = message.strip().splitlines()[0] if message.strip() else "bad option"
        accepted = ", ".join("/".join(a.option_strings) + (f" {a.metavar}" if a.metavar else "")
                             for a in self._actions if a.option_strings)
        unknown = re.match(r"unrecognized arguments: (.*)", line)
        bare = re.match(r"argument (\S+): expected one argument", line)
        if unknown:
            words = unknown.group(1).split()
            word = next((w for w in words if w.startswith("-")), words[0] if words else "?")
            line = (f"unknown option {word.partition('=')[0]}" if word.startswith("-")
                    else f"unexpected argument {word!r}") + f": expected {accepted}"
        elif bare:
            action = next((a for a in self._actions if bare.group(1) in a.option_strings), None)
            line = f"{bare.group(1)} needs a value" + (f": {action.metavar}" if action and action.metavar else "")
        self.exit(2, f"{self.prog.removeprefix('scripts/')}: {line} (see {self.prog} --help)\n")


def _version(text: str) -> str:
    if not VERSION_RE.match(text):
        raise argparse.ArgumentTypeError(f"invalid version {text!r}: expected X.Y.Z, e.g. 3.14.7")
    major, minor, _ = (int(p) for p in text.split("."))
    if (major, minor) < (3, 13):
        raise argparse.ArgumentTypeError(f"invalid version {text!r}: the free-threaded build needs >= 3.13")
    return text


def _jobs(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 256:
        raise argparse.ArgumentTypeError(f"invalid --jobs {text!r}: expected an integer 1..256")
    return n


def make_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The options of scripts/build-python (`prog`: how the usage names it, e.g. `scripts/lab setup`)."""
    p = _Parser(
        prog=prog,
        description="Build CPython twice (gil and free-threaded nogil) into the lab cache and "
                    "create a venv with the lab requirements on each. Cached results are reused.",
        epilog="Environment: PYTHON_SOURCE (tarball path or http(s) URL; default python.org), "
               "PYTHON_SHA256 (expected SHA-256, needed for versions not pinned here), "
               "WHEELHOUSE (extra --find-links dir, e.g. with a cp314t duckdb wheel), "
               "CONFIGURE_OPTS (extra ./configure flags), LAB_CACHE (cache dir).",
    )
    p.add_argument("--version", type=_version, default=DEFAULT_PYTHON_VERSION, metavar="X.Y.Z",
                   help=f"CPython version X.Y.Z (default {DEFAULT_PYTHON_VERSION})")
    p.add_argument("--flavour", choices=(*FLAVOURS, "both", "all"), default="both", metavar="|".join((*FLAVOURS, "both")),
                   help="which interpreter(s): gil, nogil, or both (also: all); default both")
    p.add_argument("--jobs", type=_jobs, default=None, metavar="N", help="make -j N, 1..256 (default: nproc)")
    p.add_argument("--force", action="store_true", help="rebuild interpreter(s) and venv(s)")
    p.add_argument("--print-paths", action="store_true",
                   help="print a JSON object {flavour: {python, venv_python, ...}} and exit")
    return p


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None, prog: str = PROG) -> int:
    env = dict(os.environ if env is None else env)
    try:
        args = make_parser(prog).parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    flavours = list(FLAVOURS) if args.flavour in ("both", "all") else [args.flavour]
    version = args.version
    if args.print_paths:
        print(json.dumps(print_paths(version, flavours, env), indent=2, sort_keys=True))
        return 0
    with _sigterm_as_interrupt():
        return _main(version, flavours, args, env)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: child processes stopped, build trees removed."""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _main(version: str, flavours: list[str], args: argparse.Namespace, env: dict[str, str]) -> int:
    try:
        return _run(version, flavours, args.jobs or default_jobs(), args.force, env)
    except InputError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr, flush=True)
        return 2
    except StepError as exc:
        sys.stdout.flush()
        if exc.log is not None:
            print(f"{PROG}: --- last lines of {exc.log} ---\n{tail(exc.log)}", file=sys.stderr)
        print(f"{PROG}: FAILED: {exc}" + (f" (full log: {exc.log})" if exc.log else ""),
              file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt as exc:
        sys.stdout.flush()
        print(f"{PROG}: {'terminated' if isinstance(exc, Terminated) else 'interrupted'}; "
              "unfinished builds removed", file=sys.stderr, flush=True)
        return 143 if isinstance(exc, Terminated) else 130


def _inputs(env: Mapping[str, str]) -> tuple[Path | None, list[str]]:
    wheelhouse = None
    if env.get("WHEELHOUSE", "").strip():
        wheelhouse = Path(env["WHEELHOUSE"].strip()).expanduser()
        if not wheelhouse.is_dir():
            raise InputError(f"WHEELHOUSE={env['WHEELHOUSE']}: no such directory")
        wheelhouse = wheelhouse.resolve()
    try:
        configure_opts = shlex.split(env.get("CONFIGURE_OPTS", ""))
    except ValueError as exc:
        raise InputError(f"CONFIGURE_OPTS={env.get('CONFIGURE_OPTS')}: {exc}") from None
    for name in VENV_REQUIREMENTS:
        if not (REQUIREMENTS / name).is_file():
            raise InputError(f"{REQUIREMENTS / name}: no such file")
    return wheelhouse, configure_opts


@contextlib.contextmanager
def _lock(env: Mapping[str, str]) -> Iterator[None]:
    """One build at a time per cache (another `scripts/lab setup` waits)."""
    import fcntl

    cache = paths.cache_root(env)
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".build.lock", "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            say(f"waiting for another {PROG} using {cache} ...")
            fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _starts(python: str, env: Mapping[str, str]) -> bool:
    """Does this interpreter still start? (A moved or damaged prefix is rebuilt, not trusted.)"""
    try:
        return subprocess.run([python, "-c", ""], env=child_env(env), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _plan(version: str, flavours: Sequence[str], force: bool, env: Mapping[str, str]) -> dict:
    plan = {}
    for f in flavours:
        fp = flavour_paths(version, f, env)
        interp = force or not interpreter_ready(version, f, env) or not _starts(fp["python"], env)
        venv = interp or not venv_ready(version, f, env) or not _starts(fp["venv_python"], env)
        # A venv whose last check failed is checked again (cheap), not rebuilt.
        verify = not venv and not (read_json(Path(fp["venv_verify"])) or {}).get("ok")
        plan[f] = {"interpreter": interp, "venv": venv, "verify": verify}
    return plan


def _clean_stale_tmp(env: Mapping[str, str]) -> None:
    """Remove build trees left by an interrupted run (we hold the lock: nobody else is building)."""
    tmp = paths.cache_root(env) / "tmp"
    if tmp.is_dir():
        for child in tmp.iterdir():
            say(f"removing leftover {child}")
            shutil.rmtree(child, ignore_errors=True)


def _report_found(version: str, flavour: str, env: Mapping[str, str],
                  configure_opts: Sequence[str] = ()) -> None:
    fp = flavour_paths(version, flavour, env)
    marker = read_json(Path(fp["prefix"]) / BUILD_MARKER) or {}
    built_with = marker.get("configure", [])
    missing = [o for o in configure_opts if o not in built_with]
    if missing:
        say(f"{flavour}: note: built without CONFIGURE_OPTS {shlex.join(missing)}; use --force to rebuild")
    v = read_json(Path(fp["venv_verify"])) or {}
    gil = v.get("gil_after_import_duckdb", {})
    gil_txt = ", ".join(f"{k}: GIL {'on' if r.get('gil_enabled_after_import_duckdb') else 'off'}"
                        for k, r in sorted(gil.items()))
    for stale in sorted(Path(fp["venv"]).parent.glob(f"{version}-{flavour}-*")):
        if stale.name != Path(fp["venv"]).name and (stale / VENV_MARKER).is_file():
            say(f"{flavour}: note: {stale} is for older requirements; remove it when nothing uses it")
    say(f"{flavour}: found {fp['python']} (Py_GIL_DISABLED={v.get('py_gil_disabled')}), "
        f"venv {fp['venv']}; after import duckdb: {gil_txt}; checks {'ok' if v.get('ok') else 'NOT ok'}")


def _run(version: str, flavours: Sequence[str], jobs: int, force: bool, env: Mapping[str, str]) -> int:
    start = time.monotonic()
    wheelhouse, configure_opts = _inputs(env)
    plan = _plan(version, flavours, force, env)
    if not any(any(s.values()) for s in plan.values()):
        for f in flavours:
            _report_found(version, f, env, configure_opts)
        say(f"nothing to do ({time.monotonic() - start:.1f}s); cache {paths.cache_root(env)}")
        return 0
    # Validate the source before touching the cache.
    source = resolve_source(version, env) if any(s["interpreter"] for s in plan.values()) else None
    try:
        with _lock(env):
            plan = _plan(version, flavours, force, env) if not force else plan
            if source is None and any(s["interpreter"] for s in plan.values()):
                source = resolve_source(version, env)  # someone removed a build while we waited
            _clean_stale_tmp(env)
            if source is not None:
                say(f"source: {source.origin}" + (f" (sha256 {source.sha256[:12]}… ok)" if source.sha256
                                                  else " (no pinned SHA-256 for this version: unchecked)"))
                if source.downloaded:
                    dl = paths.cache_root(env) / "downloads" / f"Python-{version}.tar.xz"
                    dl.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(str(source.path), dl)
                    source.path, source.downloaded = dl, False
            failures = 0
            for f in flavours:
                if plan[f]["interpreter"]:
                    build_interpreter(version, f, source, jobs, configure_opts, env, force)
                    plan[f]["venv"] = True
                result = None
                if plan[f]["venv"]:
                    result = build_venv(version, f, env, wheelhouse)
                elif plan[f]["verify"]:
                    result = reverify_venv(version, f, env)
                if result is not None and not result["ok"]:
                        failures += 1
                        bad = [k for k, ok in result["checks"].items() if not ok]
                        print(f"{PROG}: {f}: verification failed: {', '.join(bad)} "
                              f"(see {flavour_paths(version, f, env)['venv_verify']})", file=sys.stderr)
                _report_found(version, f, env)
    finally:
        if source is not None and source.downloaded:
            source.path.unlink(missing_ok=True)
    say(f"all done in {time.monotonic() - start:.0f}s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
