"""Engine slots across real processes: one synthesis per slot, and a killed holder frees its slot."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from pathlib import Path

import pytest

from voicefarm.worker import slots
from voicefarm.worker.slots import SLOTS_ENV

FORK = multiprocessing.get_context("fork")  # as Celery's pool processes are made


def holder(taken: multiprocessing.synchronize.Event) -> None:
    slots.acquire()
    taken.set()
    signal.pause()  # until killed, holding the slot


def start_holders(count: int) -> list[multiprocessing.process.BaseProcess]:
    procs = []
    for _ in range(count):
        taken = FORK.Event()
        proc = FORK.Process(target=holder, args=(taken,))
        proc.start()
        assert taken.wait(10), "the holder never took a slot"
        procs.append(proc)
    return procs


def acquire_in_thread() -> tuple[threading.Thread, list[slots.Slot]]:
    got: list[slots.Slot] = []
    thread = threading.Thread(target=lambda: got.append(slots.acquire()), daemon=True)
    thread.start()
    return thread, got


@pytest.fixture
def one_slot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SLOTS_ENV, f"{tmp_path}:1")


def test_a_held_slot_waits_until_its_holder_is_killed(one_slot: None) -> None:
    # This process opens the slot files before the fork, as a worker's main process never does
    # but a test might: the holder must still lock a file of its own, not share this one's lock.
    slots.acquire().release()
    (proc,) = start_holders(1)
    thread, got = acquire_in_thread()
    thread.join(0.5)
    assert not got, "a second process synthesized while the slot was held"
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    thread.join(10)
    assert got, "the killed holder's slot was never freed"
    got[0].release()


def test_a_released_slot_is_taken_at_once(one_slot: None) -> None:
    with slots.acquire() as slot:
        slot.release()
        slot.release()  # releasing twice (the run, then its `with`) is harmless
    (proc,) = start_holders(1)  # it would wait forever had the slot stayed held
    proc.kill()
    proc.join(10)


def test_slots_are_as_many_as_the_worker_has(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SLOTS_ENV, f"{tmp_path}:2")
    procs = start_holders(2)  # both at once
    thread, got = acquire_in_thread()
    thread.join(0.5)
    assert not got, "a third synthesis ran beside two"
    procs[1].kill()
    thread.join(10)
    assert got
    got[0].release()
    procs[0].kill()
    for proc in procs:
        proc.join(10)


def test_outside_a_pipelined_worker_a_slot_holds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SLOTS_ENV, raising=False)
    held = slots.acquire()
    thread, got = acquire_in_thread()
    thread.join(2)
    assert got, "a process that is no pipelined worker's waited for a slot"
    held.release()
