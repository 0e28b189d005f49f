"""The reconciler's loop cannot die of one failure: a pass that raises (Redis or PostgreSQL down)
is logged, the next comes after a backoff, and only a pass that succeeded moves the gauge of
the last success, which an alert watches. The loop's waits are the test's, not real sleeps."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import redis
from sqlalchemy.exc import OperationalError

from voicefarm.ops.reconcile import keep_reconciling
from voicefarm.telemetry import counters


class Passes(threading.Event):
    """A stop event that does not wait: it notes each wait asked for, and the gauge of the last
    success as it was then, and stops the loop after `passes` of them."""

    def __init__(self, passes: int) -> None:
        super().__init__()
        self.passes = passes
        self.waits: list[float | None] = []
        self.gauge: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        self.gauge.append(counters.reconciled_at.collect()[0].samples[0].value)
        if len(self.waits) >= self.passes:
            self.set()
        return self.is_set()


def test_a_pass_that_raises_is_logged_and_the_loop_goes_on_with_backoff(caplog: pytest.LogCaptureFixture) -> None:
    outcomes: list[Exception | None] = [
        None,
        redis.ConnectionError("Error 111 connecting to redis:6379. Connection refused."),
        OperationalError("SELECT 1", {}, ConnectionRefusedError("postgres:5432")),
        redis.ConnectionError("Error 111 connecting to redis:6379. Connection refused."),
        None,
        None,
    ]
    ran = []

    def one_pass() -> None:
        outcome = outcomes[len(ran)]
        ran.append(outcome)
        if outcome is not None:
            raise outcome

    counters.reconciled_at.set(0)
    stop = Passes(len(outcomes))
    keep_reconciling(one_pass, 15.0, stop)
    assert ran == outcomes  # every pass ran: none ended the loop
    assert stop.waits == [15.0, 15.0, 30.0, 60.0, 15.0, 15.0]  # backing off while they fail, in step again after
    first, *_, last = stop.gauge
    assert first > 0 and stop.gauge[1:4] == [first] * 3 and last >= first  # moved by the successes only
    failed = [r.getMessage() for r in caplog.records if "reconcile pass failed" in r.getMessage()]
    assert len(failed) == 3 and "redis:6379" in failed[0] and "postgres:5432" in failed[1]


def test_backoff_never_makes_a_hot_loop_nor_a_long_silence() -> None:
    def broken() -> None:
        raise redis.ConnectionError("down")

    stop = Passes(12)
    keep_reconciling(broken, 0.0, stop)
    assert stop.waits[0] == 1.0 and stop.waits == sorted(stop.waits) and stop.waits[-1] == 60.0
    stop = Passes(3)
    keep_reconciling(broken, 600.0, stop)
    assert stop.waits == [600.0] * 3  # never more often than asked for


def test_a_reconciler_whose_database_is_missing_keeps_running(tmp_path: Path) -> None:
    """`voicefarm reconcile --every` on a database with no schema: each pass fails, the process
    lives on, and its /metrics says when it last succeeded: never."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEFARM_")}
    env |= {"VOICEFARM_DATA_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "voicefarm", "reconcile", "--every", "0.05", "--metrics-port", "0"]
    reconciler = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert reconciler.stdout is not None and reconciler.stderr is not None
        url = reconciler.stdout.readline().strip().removeprefix("metrics at ")
        failures = 0
        deadline = time.monotonic() + 60
        while failures < 2 and time.monotonic() < deadline:
            failures += "reconcile pass failed" in reconciler.stderr.readline()
        assert failures == 2 and reconciler.poll() is None
        scraped = urllib.request.urlopen(url).read().decode()
        assert "voicefarm_reconcile_last_success_timestamp_seconds 0.0" in scraped
    finally:
        reconciler.terminate()
        reconciler.wait(timeout=30)
