"""Engine slots: how many syntheses a worker runs at once, whatever the size of its pool.

A pipelined worker (`voicefarm worker --pipeline`) has two pool processes per slot. While one
synthesizes job N+1, the other gates, encodes, stores and records job N, and only then acks its
message: late acks, exactly once and a kill at any moment stay what they were with one process,
since each job is still one ordinary task in one process. The slot keeps the two from
synthesizing at once, which on a CPU would only split the cores between them.

It pays where the engine leaves the CPU idle while it waits on the store and the database. On a
machine whose cores the engine already fills (Piper on two cores), the second process's work
competes with the synthesis instead: `make bench` measures both ways.

A slot is a file locked with flock(2). The kernel drops the lock when its holder dies, so a
pool process killed mid-synthesis (SIGKILL, the hard time limit) never leaves the engine locked.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType
from typing import IO

SLOTS_ENV = "VOICEFARM_WORKER_SLOTS"  # "<folder>:<count>", set by the worker's main process
POLL_SECONDS = 0.002  # how often a process waiting for one of several slots looks again


class Slot:
    """One held slot, released by `release` or at the end of its `with` block, whichever is first."""

    def __init__(self, lock: IO[bytes] | None) -> None:
        self._lock = lock

    def release(self) -> None:
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock = None

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.release()


_opened: tuple[tuple[int, str], list[IO[bytes]]] | None = None


def _locks() -> list[IO[bytes]]:
    """This process's own handles on the slot files. A lock belongs to an open file, which a
    fork shares: each pool process must open the files itself, or they would share one lock."""
    global _opened
    setting = os.environ.get(SLOTS_ENV)
    if not setting:
        return []
    if _opened is None or _opened[0] != (os.getpid(), setting):
        folder, count = setting.rsplit(":", 1)
        _opened = ((os.getpid(), setting), [open(Path(folder) / f"slot-{n}", "ab") for n in range(int(count))])  # noqa: SIM115
    return _opened[1]


def acquire() -> Slot:
    """A free slot, waiting for one if all are held; a slot that holds nothing when this process
    is not a pipelined worker's (in-process use, tests of the engine alone)."""
    locks = _locks()
    if not locks:
        return Slot(None)
    if len(locks) == 1:  # the kernel hands it over the moment it is free
        fcntl.flock(locks[0], fcntl.LOCK_EX)
        return Slot(locks[0])
    while True:  # whichever slot frees first: waiting on one could miss another that is free
        for lock in locks:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return Slot(lock)
            except BlockingIOError:
                continue
        time.sleep(POLL_SECONDS)
