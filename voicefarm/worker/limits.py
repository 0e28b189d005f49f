"""Each run's time limits in a worker whose runs share one process, and where every run stops
when its job is canceled.

A prefork pool keeps a run's limits with signals: SoftTimeLimitExceeded raised inside it at the
soft limit, its process killed at the hard one. A worker whose engine serves several jobs at once
from one loaded model (`Capabilities.concurrency`, a threads pool) has neither, since a thread can
be neither interrupted nor killed. There each run keeps its own limits here:

- past its soft limit, a run stops at the next piece of audio its engine hands over, and its job
  moves on alone: the engine's other jobs go on (a batching engine drops the sequence whose reader
  stopped);
- past its hard limit, the run is stuck where nothing can reach it, so the watchdog ends the
  whole process, as the hard limit ends a pool process. Every job the worker held was acked late,
  so none is lost: the reconciler sends each again, and a job that its engine's workers have died
  on more than `max_lost_per_engine` times moves down its chain.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from celery.exceptions import SoftTimeLimitExceeded

from voicefarm.errors import JobCanceled

log = logging.getLogger(__name__)

T = TypeVar("T")
WATCH_SECONDS = 0.5  # how often the watchdog looks: a hard limit is seconds to minutes
# How often a run asks whether its job was canceled: often enough that a canceled job frees its
# worker well within a second, rarely enough that an engine's many small pieces cost few queries.
CANCEL_LOOK_SECONDS = 0.2


@dataclass(frozen=True)
class Limits:
    """When one run must stop (time.monotonic()); None: no limit."""

    soft: float | None = None
    hard: float | None = None

    @classmethod
    def from_now(cls, soft: float | None, hard: float | None) -> Limits:
        now = time.monotonic()
        return cls(None if soft is None else now + soft, None if hard is None else now + hard)


def within(pieces: Iterator[T], limits: Limits, canceled: Callable[[], bool] = lambda: False) -> Iterator[T]:
    """The pieces, up to the first that comes past the soft limit, or after the run's job was
    `canceled` (asked at most every CANCEL_LOOK_SECONDS): the engine's stream is closed there (a
    batching engine's sequence leaves the batch) and SoftTimeLimitExceeded raised, as the signal
    would have raised it, or JobCanceled."""
    look = 0.0
    try:
        for piece in pieces:
            now = time.monotonic()
            if limits.soft is not None and now > limits.soft:
                raise SoftTimeLimitExceeded("the run passed its soft time limit")
            if now >= look:
                if canceled():
                    raise JobCanceled("the run's job was canceled")
                look = now + CANCEL_LOOK_SECONDS
            yield piece
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()


class Watchdog:
    """Ends the process when a run it watches passes its hard limit (`expire`, os._exit by
    default: nothing else stops a stuck thread)."""

    def __init__(self, expire: Callable[[str], None] | None = None) -> None:
        self._expire = expire or _exit
        self._runs: dict[int, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, what: str, limits: Limits) -> None:
        """Watch the calling thread's run, named `what` in the log, until `done`."""
        if limits.hard is None:
            return
        with self._lock:
            self._runs[threading.get_ident()] = (what, limits.hard)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="time-limits", daemon=True)
                self._thread.start()

    def done(self) -> None:
        with self._lock:
            self._runs.pop(threading.get_ident(), None)

    def _loop(self) -> None:
        while True:
            time.sleep(WATCH_SECONDS)
            now = time.monotonic()
            with self._lock:
                late = [what for what, hard in self._runs.values() if now > hard]
            if late:
                self._expire(f"{', '.join(late)} passed the hard time limit")
                return


def _exit(why: str) -> None:
    log.critical("%s: ending this worker, whose jobs the reconciler sends again", why)
    logging.shutdown()
    os._exit(1)
