"""What a worker process does besides the bookkeeping: load its engine once, and run one
attempt (synthesize, gate, encode, store) of a job the lifecycle handed it."""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from dataclasses import replace
from functools import lru_cache

from celery import signals

from voicefarm import db, engines, quality, reference, renditions
from voicefarm.audio import MASTER, content_type, encode
from voicefarm.cache import CachedAudio
from voicefarm.engines.base import Engine
from voicefarm.jobs.lifecycle import Run
from voicefarm.settings import get_settings
from voicefarm.storage import get_store
from voicefarm.voices import latents_key

log = logging.getLogger(__name__)

ENGINE_ENV = "VOICEFARM_WORKER_ENGINE"
_engine: Engine | None = None


@signals.worker_process_init.connect
def load_engine(**_: object) -> None:
    """Load the model in the process that will use it, before it takes a job."""
    global _engine
    # The parent's heartbeat opened database connections before this child was forked: sharing
    # their sockets would corrupt both sides, so the child starts with a pool of its own.
    db.engine().dispose(close=False)
    name = os.environ.get(ENGINE_ENV)
    if not name:
        return
    started = time.perf_counter()
    _engine = engines.create(name, get_settings())
    _engine.load()
    log.info("engine %s ready in %.1f s (pid %d)", name, time.perf_counter() - started, os.getpid())


def engine() -> Engine:
    if _engine is None:
        raise RuntimeError("this worker has no engine; start it with `voicefarm worker --engine NAME`")
    return _engine


@lru_cache
def engine_version() -> str:
    return engine().capabilities().model_version


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def attempt(run: Run) -> tuple[CachedAudio, float]:
    """Synthesize, gate, encode and store; returns what to record and the synthesis time."""
    store = get_store()
    request = run.request
    if run.sample is not None:
        sample_key, voice = run.sample
        request = replace(
            request,
            reference=reference.load(store.get(sample_key)),
            reference_key=latents_key(voice, engine().name, engine_version()),
        )
    started = time.perf_counter()
    audio = engine().synthesize(request)
    seconds = time.perf_counter() - started
    quality.check(audio, request.text, request.speed, get_settings().quality_max_wer, request.language)
    object_key = f"audio/{run.key}.{run.format}"
    data, rate = encode(audio, run.format, run.rate)
    store.put(object_key, data, content_type(run.format))
    master = data if (run.format, rate) == (MASTER, audio.sample_rate) else encode(audio, MASTER)[0]
    store.put(renditions.master_key(run.source), master, content_type(MASTER))
    log.info(
        "%s: %.2f s of audio in %.2f s (RTF %.3f)",
        object_key,
        audio.duration,
        seconds,
        seconds / audio.duration if audio.duration else math.nan,
    )
    cached = CachedAudio(run.key, object_key, store.url(object_key), engine().name, run.format, audio.duration, rate)
    return cached, seconds
