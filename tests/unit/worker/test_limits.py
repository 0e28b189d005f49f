"""Time limits that a threaded worker's runs keep themselves (voicefarm.worker.limits)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from voicefarm.worker import limits as limits_module
from voicefarm.worker.limits import Limits, Watchdog, within


def test_a_run_stops_at_the_first_piece_past_its_soft_limit_and_closes_the_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [100.0]
    monkeypatch.setattr(limits_module.time, "monotonic", lambda: now[0])
    closed = threading.Event()

    def pieces() -> Iterator[int]:
        try:
            for n in range(10):
                now[0] += 1.0  # each piece takes the engine a second
                yield n
        finally:
            closed.set()

    out = []
    with pytest.raises(SoftTimeLimitExceeded):
        for piece in within(pieces(), Limits.from_now(soft=3.5, hard=None)):
            out.append(piece)
    assert out == [0, 1, 2]  # the fourth piece came 4 s in: past the limit, so not passed on
    assert closed.is_set()  # the engine's stream was closed: a batching engine's sequence leaves


def test_no_limits_pass_every_piece() -> None:
    assert list(within(iter("abc"), Limits())) == ["a", "b", "c"]


def test_the_watchdog_ends_the_process_only_for_a_run_past_its_hard_limit() -> None:
    expired: list[str] = []
    gone = threading.Event()

    def expire(why: str) -> None:
        expired.append(why)
        gone.set()

    dog = Watchdog(expire)
    dog.watch("task in time", Limits.from_now(None, 60))
    dog.done()
    dog.watch("task on time", Limits.from_now(None, 60))

    def stuck() -> None:
        dog.watch("task stuck", Limits.from_now(None, 0.1))
        gone.wait(10)

    thread = threading.Thread(target=stuck)
    thread.start()
    assert gone.wait(10)
    thread.join()
    assert expired == ["task stuck passed the hard time limit"]
