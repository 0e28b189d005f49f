"""What a worker process does besides the bookkeeping: load its engine once, and run one
attempt (synthesize, gate, encode, store) of a job the lifecycle handed it, publishing its
audio to the job's feed piece by piece as the engine makes it."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import lru_cache, partial

from celery import Task, signals
from celery.exceptions import SoftTimeLimitExceeded

from voicefarm import engines
from voicefarm.audio import quality, reference
from voicefarm.audio.codec import MASTER, content_type, encode, output_rate
from voicefarm.dispatch.app import Message, enqueue
from voicefarm.engines.base import Audio, Engine, Word, joined, stream
from voicefarm.fleet.heartbeat import process_name
from voicefarm.jobs.cancel import attempt_canceled
from voicefarm.jobs.feeds import Entry, Kind, get_feed
from voicefarm.jobs.lifecycle import Run
from voicefarm.library import renditions
from voicefarm.library.cache import CachedAudio
from voicefarm.library.voices import latents_key
from voicefarm.settings import get_settings
from voicefarm.store import db
from voicefarm.store.objects import get_store
from voicefarm.store.outages import best_effort, ride_out
from voicefarm.worker import slots
from voicefarm.worker.limits import Limits, Watchdog, within
from voicefarm.worker.slots import Slot

log = logging.getLogger(__name__)

ENGINE_ENV = "VOICEFARM_WORKER_ENGINE"
# Set by a worker whose engine serves several jobs at once (Capabilities.concurrency): its runs
# are threads of one process that share one loaded model, and keep their own time limits.
THREADS_ENV = "VOICEFARM_WORKER_THREADS"
_engine: Engine | None = None
_watchdog = Watchdog()


def threaded() -> bool:
    return bool(os.environ.get(THREADS_ENV))


def load_engine() -> None:
    """Load the model in the process that will use it, before it takes a job."""
    global _engine
    name = os.environ.get(ENGINE_ENV)
    if not name:
        return
    started = time.perf_counter()
    _engine = engines.create(name, get_settings())
    _engine.load()
    log.info("engine %s ready in %.1f s (pid %d)", name, time.perf_counter() - started, os.getpid())


@signals.worker_process_init.connect
def load_in_pool_process(**_: object) -> None:
    # The parent's heartbeat opened database connections before this child was forked: sharing
    # their sockets would corrupt both sides, so the child starts with a pool of its own.
    db.sql_engine().dispose(close=False)
    load_engine()


@signals.celeryd_after_setup.connect
def load_shared_engine(**_: object) -> None:
    """A threaded worker's one model, loaded in its one process before it consumes (and once its
    log is set up, which says how long it took); nothing was forked, so its connections stay."""
    if threaded():
        load_engine()


def engine() -> Engine:
    if _engine is None:
        raise RuntimeError("this worker has no engine; start it with `voicefarm worker --engine NAME`")
    return _engine


@lru_cache
def engine_version() -> str:
    return engine().capabilities().model_version


def worker_name() -> str:
    """Who runs an attempt: the worker (its main process, which beats) and the pool process, or
    in a threaded worker the main process and the thread."""
    if threaded():
        return f"{process_name(engine().name, os.getpid())}/{os.getpid()}.{threading.get_native_id()}"
    return f"{process_name(engine().name, os.getppid())}/{os.getpid()}"


@dataclass(frozen=True)
class Turn:
    """One run's hold on the engine: its slot, and the time limits it keeps itself, which are
    none where the pool keeps them (voicefarm.worker.limits)."""

    slot: Slot
    limits: Limits


@contextmanager
def engine_slot(task: Task) -> Iterator[Turn]:
    """The engine's slot for one run, taken before the job is begun (voicefarm.worker.slots). A run
    whose soft time limit passes while it waits (behind a job that hangs, say) goes back on its
    queue as it came: its job was not begun, and its engine did nothing wrong."""
    try:
        slot = slots.acquire()
    except SoftTimeLimitExceeded:
        raise task.retry(countdown=0, max_retries=None) from None
    limits = Limits()
    if threaded():
        hard, soft = task.request.timelimit or (None, None)
        limits = Limits.from_now(soft or task.app.conf.task_soft_time_limit, hard or task.app.conf.task_time_limit)
        _watchdog.watch(f"task {task.request.id}", limits)
    try:
        with slot:
            yield Turn(slot, limits)
    finally:
        _watchdog.done()


def attempt(run: Run, turn: Turn, live: bool = True) -> tuple[CachedAudio, float, tuple[Word, ...] | None]:
    """Synthesize in the engine's slot, then release it and gate, encode and store (a pipelined
    worker's other pool process synthesizes the next job meanwhile: voicefarm.worker.slots). Returns
    what to record, the synthesis time, and the engine's own word timings if it has them. A
    `live` run appends its pieces to the job's feed; a document's segments do not, since they
    finish in no particular order."""
    store = get_store()
    request = run.request
    if run.sample is not None:
        sample_key, voice = run.sample
        request = replace(
            request,
            reference=reference.load(ride_out(lambda: store.get(sample_key), f"voice {voice.id}'s sample")),
            reference_key=latents_key(voice, engine().name, engine_version()),
        )
    started = time.perf_counter()
    pieces = within(stream(engine(), request), turn.limits, partial(attempt_canceled, run.attempt_id))
    audio = joined(published(run, pieces) if live else pieces)
    seconds = time.perf_counter() - started
    turn.slot.release()
    quality.check(audio, request.text, request.speed, get_settings().quality_max_wer, request.language)
    cached = keep(audio, run.key, run.source, run.format, run.rate)
    log.info(
        "%s: %.2f s of audio in %.2f s (RTF %.3f)",
        cached.object_key,
        audio.duration,
        seconds,
        seconds / audio.duration if audio.duration else math.nan,
    )
    return cached, seconds, audio.words


_beside = ThreadPoolExecutor(max_workers=1, thread_name_prefix="master")
MASTER_TYPE = content_type(MASTER)


def keep(audio: Audio, key: str, source: str, fmt: str, rate: int | None) -> CachedAudio:
    """Encode and store audio as the rendition `key`, and its lossless master; what to record."""
    store = get_store()
    object_key = f"audio/{key}.{fmt}"
    master_key = renditions.master_key(source)
    is_master = fmt == MASTER and output_rate(fmt, audio.sample_rate, rate) == audio.sample_rate
    # The master is encoded and stored beside the rendition, not after it: both wait on C code
    # (libsndfile, which lets go of the GIL) or on the store, not on each other.
    beside = None if is_master else _beside.submit(lambda: put(master_key, encode(audio, MASTER)[0], MASTER_TYPE))
    data, actual = encode(audio, fmt, rate)
    put(object_key, data, content_type(fmt))
    if beside is None:
        put(master_key, data, MASTER_TYPE)
    else:
        beside.result()
    return CachedAudio(key, object_key, store.url(object_key), engine().name, fmt, audio.duration, actual)


def send(message: Message) -> None:
    """Send a job on (to its next engine, or again), riding out an outage of the broker."""
    ride_out(lambda: enqueue(message, get_settings()), f"job {message.job_id}: send to {message.engine}")


def put(key: str, data: bytes, content_type: str) -> None:
    """Store an object, riding out an outage of the store."""
    store = get_store()
    ride_out(lambda: store.put(key, data, content_type), f"storing {key}")


def published(run: Run, pieces: Iterator[Audio]) -> Iterator[Audio]:
    """The engine's pieces, each appended to the job's feed as it comes: listeners hear it now.
    The feed is best effort: after an append lost to an outage, listeners hear a cut stream,
    and the job goes on to store and record its audio."""
    feed = get_feed()
    live = True
    for piece in pieces:
        entry = Entry(run.attempt_id, engine().name, "audio", piece)
        live = live and best_effort(partial(feed.append, run.job_id, entry), f"job {run.job_id}'s live feed")
        yield piece


def ended(run: Run, kind: Kind, error: str | None = None) -> None:
    """Mark the attempt's end in the job's feed: `end` once its audio is stored and recorded,
    `failed` before the job moves on, so a listener never hears two engines spliced."""
    best_effort(
        lambda: get_feed().append(run.job_id, Entry(run.attempt_id, engine().name, kind, error=error)),
        f"job {run.job_id}'s live feed",
    )
