"""A worker proves its engine before it takes a job.

After loading the model, the worker synthesizes a short probe sentence in one of the engine's
own voices and, for an engine that clones, the same sentence in a voice cloned from a synthetic
reference. Each must pass the quality gate. A worker whose engine fails never consumes its
queue and never beats as live: `voicefarm worker` records the reason (shown by /v1/engines)
and exits non-zero, so an orchestrator shows a crash loop rather than a healthy worker that
fails every job.

The probe runs in a freshly spawned process, not in the worker's own: the worker's pool
children are forked from it, and a parent that had initialised CUDA or an ONNX session would
hand them a broken copy.
"""

from __future__ import annotations

import logging
import socket
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from typing import Any

import numpy as np
from sqlalchemy import delete

from voicefarm import engines
from voicefarm.audio import quality
from voicefarm.engines.base import Engine, SynthesisRequest
from voicefarm.settings import Settings, get_settings
from voicefarm.store import db
from voicefarm.store.models import Worker, utcnow

log = logging.getLogger(__name__)


def voiced_signal(seconds: float = 4.0, sample_rate: int = 22_050, f0: float = 140.0, seed: int = 0) -> np.ndarray:
    """A voice-like signal: a vibrato'd harmonic series with a syllable envelope, plus noise.
    Deterministic, so a probe never depends on a file or a download; the engine suites and
    bench/xtts.py use it as their reference sample too."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.03 * np.sin(2 * np.pi * 5 * t))) / sample_rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    signal = 0.2 * envelope * harmonics + 0.01 * rng.standard_normal(len(t))
    return signal.astype(np.float32)


def probes(engine: Engine, settings: Settings) -> list[SynthesisRequest]:
    """What the engine must say: in a voice of its own, and in a cloned voice if it clones."""
    caps = engine.capabilities()
    language = "en" if "en" in caps.languages else min(caps.languages)
    text = settings.self_test_text
    requests = [
        SynthesisRequest(text, v.id, v.language) for v in caps.voices[:1] if v.language.split("-")[0] == language
    ]
    if caps.cloning:
        # No reference_key: the probe's conditioning is computed afresh, never cached or stored,
        # so a broken model cannot leave it behind for the next start.
        requests.append(SynthesisRequest(text, "self-test", language, reference=(voiced_signal(), 22_050)))
    return requests


def check(engine: Engine, settings: Settings) -> None:
    """Load the engine and put each probe through the quality gate; raises on any failure."""
    engine.load()
    requests = probes(engine, settings)
    if not requests:
        raise RuntimeError(f"{engine.name} has no voice in its own languages and cannot clone: nothing to probe")
    for request in requests:
        audio = engine.synthesize(request)
        quality.check(audio, request.text, request.speed, settings.quality_max_wer, request.language)


def _probe(name: str) -> str | None:
    try:
        settings = get_settings()
        check(engines.create(name, settings), settings)
    except Exception as e:
        log.exception("engine %s failed its self-test", name)
        return f"{type(e).__name__}: {e}"
    return None


def run(name: str) -> str | None:
    """The engine's self-test in a spawned process: None if it passed, else why not."""
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        try:
            return pool.submit(_probe, name).result()
        except BrokenProcessPool:
            return "the self-test process died (killed, crashed or out of memory)"


def record(engine: str, problem: str | None, capabilities: dict[str, Any] | None = None) -> None:
    """Leave why this host's worker cannot serve the engine ("failed self-test: …",
    "unavailable: …") where /v1/engines shows it, with what the engine advertised: one row per
    engine and host. None, a pass, clears it."""
    name = f"{engine}@{socket.gethostname()}:self-test"
    with db.session() as s:
        s.execute(delete(Worker).where(Worker.name == name))
        if problem is not None:
            now = utcnow()
            s.add(
                Worker(
                    name=name,
                    engine=engine,
                    started_at=now,
                    last_seen=now,
                    self_test=problem,
                    capabilities={**(capabilities or {}), "self_test": problem},
                )
            )
