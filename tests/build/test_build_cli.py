"""Bad options and bad inputs: exit 2, one line on stderr, and the cache left exactly as it was.

None of them needs the 3.14 builds: each runs against a fresh empty LAB_CACHE (which must stay
empty) and, when `scripts/lab setup` has built one, against the built cache (which must not
change). The tarball cases need the CPython source tarball, not a build.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess

import pytest

from build_helpers import SCRIPT, VERSION, base_env, run_build


def assert_one_line_exit_2(proc, *needles: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("build-python: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, needle", [
    (["--flavour", "both-ish"], "--flavour"),
    (["--jobs", "0"], "--jobs"),
    (["--jobs", "257"], "--jobs"),
    (["--jobs", "two"], "--jobs"),
    (["--version", "3.14"], "--version"),
    (["--version", "3.14.7rc1"], "--version"),
    (["--bogus"], "--bogus"),
])
def test_bad_option_is_one_line_exit_2(bad_input_cache, args, needle):
    """A bad option prints one line naming it, exits 2 and leaves the cache untouched."""
    proc = run_build(*args, env=bad_input_cache.env(), timeout=30)
    assert_one_line_exit_2(proc, needle)
    assert proc.stdout == ""
    before, after = bad_input_cache.state()
    assert before == after


def test_corrupt_tarball_is_rejected(bad_input_cache, tarball, tmp_path):
    """A corrupted copy of the pinned tarball fails its SHA-256 check with exit 2 before any work."""
    bad = tmp_path / f"Python-{VERSION}.tar.xz"
    shutil.copyfile(tarball, bad)
    with open(bad, "r+b") as fh:
        fh.seek(1_000_000)
        byte = fh.read(1)
        fh.seek(1_000_000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    proc = run_build("--force", env=bad_input_cache.env(PYTHON_SOURCE=str(bad)))
    assert_one_line_exit_2(proc, f"PYTHON_SOURCE={bad}", "SHA-256 mismatch")
    before, after = bad_input_cache.state()
    assert before == after


def test_missing_tarball_is_rejected(bad_input_cache, tmp_path):
    """A PYTHON_SOURCE that does not exist gives one 'no such file' line, exit 2, cache untouched."""
    missing = tmp_path / "nowhere" / f"Python-{VERSION}.tar.xz"
    proc = run_build("--force", env=bad_input_cache.env(PYTHON_SOURCE=str(missing)))
    assert_one_line_exit_2(proc, f"PYTHON_SOURCE={missing}: no such file")
    before, after = bad_input_cache.state()
    assert before == after


def test_directory_as_tarball_is_rejected(bad_input_cache, tmp_path):
    """A PYTHON_SOURCE that is a directory is refused with one line and exit 2."""
    proc = run_build("--force", "--flavour", "gil", env=bad_input_cache.env(PYTHON_SOURCE=str(tmp_path)))
    assert_one_line_exit_2(proc, "PYTHON_SOURCE=", "not a file")
    before, after = bad_input_cache.state()
    assert before == after


def test_wrong_pinned_checksum_is_rejected(bad_input_cache, tarball):
    """The real tarball with a different PYTHON_SHA256 is refused as a mismatch, exit 2."""
    proc = run_build("--force", env=bad_input_cache.env(PYTHON_SOURCE=str(tarball), PYTHON_SHA256="0" * 64))
    assert_one_line_exit_2(proc, "PYTHON_SOURCE=", "SHA-256 mismatch")
    before, after = bad_input_cache.state()
    assert before == after


def test_tarball_of_other_version_is_rejected(bad_input_cache, tmp_path):
    """A tarball named for another version than --version is refused, exit 2."""
    other = tmp_path / "Python-3.14.1.tar.xz"
    other.write_bytes(b"not really")
    proc = run_build("--force", env=bad_input_cache.env(PYTHON_SOURCE=str(other)))
    assert_one_line_exit_2(proc, "PYTHON_SOURCE=", "3.14.1", VERSION)
    before, after = bad_input_cache.state()
    assert before == after


def test_unreachable_url_is_rejected(bad_input_cache):
    """A PYTHON_SOURCE URL nobody answers (a closed loopback port) gives exit 2 and one line."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/Python-{VERSION}.tar.xz"
    proc = run_build("--force", "--flavour", "nogil", env=bad_input_cache.env(PYTHON_SOURCE=url))
    assert_one_line_exit_2(proc, f"PYTHON_SOURCE={url}", "unreachable")
    before, after = bad_input_cache.state()
    assert before == after


def test_unknown_version_needs_a_checksum(bad_input_cache):
    """A version with no pinned SHA-256 and no PYTHON_SHA256 is refused before any download."""
    env = bad_input_cache.env()
    env.pop("PYTHON_SOURCE", None)
    proc = run_build("--version", "3.14.99", "--flavour", "gil", env=env)
    assert_one_line_exit_2(proc, "PYTHON_SHA256", "3.14.99")
    before, after = bad_input_cache.state()
    assert before == after


def test_missing_wheelhouse_is_rejected(bad_input_cache, tmp_path):
    """A WHEELHOUSE that is not a directory is refused with one line naming it, exit 2."""
    proc = run_build(env=bad_input_cache.env(WHEELHOUSE=str(tmp_path / "no-wheels")))
    assert_one_line_exit_2(proc, "WHEELHOUSE=", "no such directory")
    before, after = bad_input_cache.state()
    assert before == after


def test_help_exits_0():
    """--help documents the options and the environment variables and exits 0."""
    proc = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0
    for word in ("--flavour", "--jobs", "--force", "--print-paths", "PYTHON_SOURCE", "WHEELHOUSE"):
        assert word in proc.stdout


@pytest.mark.built
def test_print_paths_is_json_without_building(built, cache_state):
    """--print-paths prints {flavour: {python, venv_python, ...}} and touches nothing."""
    proc = subprocess.run([str(SCRIPT), "--print-paths"], capture_output=True, text=True, timeout=30,
                          env=base_env())
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc) == {"gil", "nogil"}
    for flavour, info in doc.items():
        assert info["python"] == built[flavour]["python"]
        assert info["venv_python"] == built[flavour]["venv_python"]
        assert info["built"] and info["venv_ready"]
        assert info["verified"]["ok"] is True
    one = json.loads(subprocess.run([str(SCRIPT), "--print-paths", "--flavour", "nogil"],
                                    capture_output=True, text=True, timeout=30).stdout)
    assert set(one) == {"nogil"}
    before, after = cache_state()
    assert before == after


def test_unpinned_truncated_tarball_is_rejected(bad_input_cache, tarball, tmp_path):
    """A truncated tarball of a version with no pinned checksum is read through and refused, exit 2."""
    bad = tmp_path / "Python-3.14.99.tar.xz"
    with open(tarball, "rb") as src:
        bad.write_bytes(src.read(3_000_000))
    proc = run_build("--version", "3.14.99", "--flavour", "gil", env=bad_input_cache.env(PYTHON_SOURCE=str(bad)))
    assert_one_line_exit_2(proc, f"PYTHON_SOURCE={bad}", "not a readable tarball")
    before, after = bad_input_cache.state()
    assert before == after
