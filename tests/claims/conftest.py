"""One `scripts/lab claims --quick` run per test session, shared by the test_claim_* files.

The fixture runs only the claims whose test files were collected (test_claim_<n>_*.py), on the
session's private RabbitMQ node when rabbitmq-server is installed (else the embedded broker).
"""

from __future__ import annotations

import re

import pytest

from claims_helpers import run_claims
from labctl import rabbit


@pytest.fixture(scope="session")
def claims_run(request, tmp_path_factory):
    wanted = sorted({int(m.group(1)) for item in request.session.items
                     if (m := re.match(r"test_claim_(\d)_", item.path.name))})
    broker = {}
    if rabbit.available():
        broker["BROKER_URL"] = request.getfixturevalue("rabbitmq").url
    else:
        broker["LAB_BROKER"] = "filesystem"
    return run_claims(tmp_path_factory.mktemp("claims"), wanted or list(range(1, 9)), **broker)
