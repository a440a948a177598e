"""`scripts/lab run`: the article's three workers on the CPython 3.14 builds."""

from __future__ import annotations

import pytest

import labtest

pytestmark = [pytest.mark.built, pytest.mark.slow]


@pytest.fixture(autouse=True)
def interpreters():
    return labtest.built_python("gil"), labtest.built_python("nogil")


def test_full_run_on_a_private_rabbitmq(tmp_path):
    """gil leaves task processes, gil-clean cleans up, nogil runs with the GIL off, on RabbitMQ."""
    env = labtest.base_env(tmp_path, LAB_BROKER="rabbitmq")

    done = labtest.lab("run", env=env)

    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = labtest.only_run(tmp_path / "results")
    by_queue = labtest.assert_article_behaviour(run_dir, ["gil", "gil-clean", "nogil"], iterations=2)
    assert {r["python"] for rs in by_queue.values() for r in rs} == {"3.14.7"}
    assert {r["start_method"] for rs in by_queue.values() for r in rs} == {"forkserver"}
    assert [(r["build"], r["gil_enabled"]) for r in by_queue["nogil"]] == [("nogil", False)] * 2
    assert [(r["build"], r["gil_enabled"]) for r in by_queue["gil"]] == [("gil", True)] * 2
    assert "gil_enabled=False" in labtest.worker_log(run_dir, "nogil")
    assert {r["broker"] for rs in by_queue.values() for r in rs} == {"rabbitmq"}
    assert "broker: private RabbitMQ node" in (run_dir / "summary.txt").read_text()


def test_full_run_on_a_given_broker_leaves_no_messages(tmp_path, rabbitmq):
    """With BROKER_URL the lab uses that broker and leaves no message in its queues."""
    env = labtest.base_env(tmp_path, BROKER_URL=rabbitmq.url, ITERATIONS="1", TARGET_QUEUES="nogil,gil-clean")

    done = labtest.lab("run", env=env)

    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = labtest.only_run(tmp_path / "results")
    labtest.assert_article_behaviour(run_dir, ["nogil", "gil-clean"], iterations=1)
    assert "broker: given by BROKER_URL" in (run_dir / "summary.txt").read_text()
    depths = rabbitmq.queue_depths()
    # the run's durable task queues must be listed, else "no message left" would read nothing
    assert {"nogil", "gil-clean"} <= set(depths), depths
    assert all(n == 0 for n in depths.values()), depths
