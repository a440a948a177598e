"""A private RabbitMQ node for one native run: own port, own data folder, stopped by pid.

It never touches a system RabbitMQ: node name, AMQP, distribution and epmd ports, cookie (via
HOME) and data all live in the run's temp folder.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Mapping

from . import procs

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # Debian's real script (/usr/sbin/ one su's to rabbitmq)


def available() -> bool:
    return os.access(SERVER, os.X_OK) and shutil.which("erl") is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(folder: Path, env: Mapping[str, str], run_id: str, timeout: float = 90.0) -> tuple[procs.Started, str]:
    """Start the node in `folder`; return it and its AMQP URL once it says startup is complete."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "enabled_plugins").write_text("[].\n")
    port, dist, epmd = free_port(), free_port(), free_port()
    node_env = dict(env)
    node_env.update(
        {
            procs.MARKER: run_id,
            "HOME": str(folder),  # the Erlang cookie lands here, not in root's home
            "RABBITMQ_NODENAME": f"lab-{run_id}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(port),
            "RABBITMQ_DIST_PORT": str(dist),
            "ERL_EPMD_PORT": str(epmd),  # a private epmd; found and stopped via the marker
            "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(folder / "log"),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(folder / "advanced.config"),
            "RABBITMQ_PID_FILE": str(folder / "rabbitmq.pid"),
        }
    )
    # rabbitmqctl needs the same node name, cookie (HOME) and epmd port to reach the node.
    (folder / "node.env").write_text(
        "".join(f"{k}={node_env[k]}\n" for k in ("HOME", "RABBITMQ_NODENAME", "ERL_EPMD_PORT"))
    )
    started = procs.spawn("rabbitmq", [SERVER], node_env, folder / "rabbitmq.log", cwd=folder)
    procs.wait_for_line(started, ["Server startup complete"], timeout=timeout)
    return started, f"amqp://guest:guest@127.0.0.1:{port}//"
