"""Every long-running process that serves metrics has a default port of its own: a farm started
process by process on one host, as the README's command table shows, loses none of them."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from voicefarm.cli.serve import METRICS_PORTS
from voicefarm.settings import Settings

# One command's metrics served as the command serves them, until its stdin closes.
SERVE = textwrap.dedent(
    """
    import sys
    from voicefarm.cli.serve import serve_metrics
    from voicefarm.settings import get_settings

    serve_metrics(get_settings(), None, sys.argv[1])
    sys.stdin.read()
    """
)


def test_each_command_that_serves_metrics_has_a_default_port_of_its_own() -> None:
    settings = Settings()
    defaults = [getattr(settings, setting) for setting in METRICS_PORTS.values()]
    assert {"worker", "reconcile"} <= set(METRICS_PORTS)
    assert len(set(defaults)) == len(defaults) and 0 not in defaults


@pytest.fixture
def host() -> str:
    """A loopback address of this test's own (all of 127/8 is the loopback on Linux): the
    default ports there are free, whatever else this machine runs."""
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    """The processes a test starts, stopped after it."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        process.communicate(timeout=30)  # closes its stdin: it stops


def test_a_worker_and_the_reconciler_serve_side_by_side_on_their_defaults(
    host: str, started: list[subprocess.Popen[str]]
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEFARM_")} | {"VOICEFARM_API_HOST": host}
    served = []
    for command in ("reconcile", "worker"):
        process = subprocess.Popen(
            [sys.executable, "-c", SERVE, command],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        started.append(process)
        assert process.stdout is not None
        served.append(process.stdout.readline().strip())
    ports = (Settings().reconciler_metrics_port, Settings().metrics_port)
    assert served == [f"metrics at http://{host}:{port}/metrics" for port in ports]
