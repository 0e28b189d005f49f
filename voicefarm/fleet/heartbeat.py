"""Which engines have live workers, and what they can do: each worker process group beats into
the workers table, and advertises its engine's capabilities when it starts."""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from functools import lru_cache
from typing import Any, Generic, TypeVar, cast

from celery import bootsteps
from celery.worker import state as worker_state
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from voicefarm import engines
from voicefarm.fleet.breaker import Available, tripped
from voicefarm.settings import Settings, get_settings
from voicefarm.store import db
from voicefarm.store.models import EngineCapabilities, Worker, utcnow

log = logging.getLogger(__name__)

T = TypeVar("T")


def process_name(engine: str, pid: int) -> str:
    """A worker's name in the workers table: its engine, host and main process."""
    return f"{engine}@{socket.gethostname()}:{pid}"


def owner(attempt_worker: str) -> str | None:
    """The worker (process_name) whose pool process ran an attempt: attempts record
    "<process_name>/<pool pid>". None for attempts recorded before they did."""
    name, slash, _ = attempt_worker.rpartition("/")
    return name if slash else None


def live_beats(s: Session, settings: Settings) -> dict[str, Worker]:
    """Workers that beat within `worker_dead_after_seconds`, by name: each with its last beat
    (`last_seen`) and the task ids it held then (`jobs`)."""
    cutoff = utcnow() - timedelta(seconds=settings.worker_dead_after_seconds)
    return {w.name: w for w in s.scalars(select(Worker).where(Worker.last_seen >= cutoff, Worker.self_test.is_(None)))}


def live_workers(s: Session, settings: Settings) -> dict[str, int]:
    """Worker processes per engine seen within `worker_dead_after_seconds` (a worker that
    failed its self-test never counts)."""
    cutoff = utcnow() - timedelta(seconds=settings.worker_dead_after_seconds)
    rows = s.execute(
        select(Worker.engine, func.count())
        .where(Worker.last_seen >= cutoff, Worker.self_test.is_(None))
        .group_by(Worker.engine)
    )
    return dict(rows.all())


def live_engines(settings: Settings) -> set[str]:
    """Engines with a live worker."""
    with db.session() as s:
        return set(live_workers(s, settings))


def self_test_failures(s: Session) -> dict[str, dict[str, str]]:
    """engine -> {worker host: why its self-test failed}, newest first."""
    rows = s.execute(
        select(Worker.engine, Worker.name, Worker.self_test)
        .where(Worker.self_test.is_not(None))
        .order_by(Worker.last_seen.desc())
    )
    failures: dict[str, dict[str, str]] = {}
    for engine, name, reason in rows:
        failures.setdefault(engine, {})[name.split("@", 1)[-1].removesuffix(":self-test")] = reason or ""
    return failures


def available(s: Session, settings: Settings) -> Available:
    """Where a job may go now: live workers, and each engine's circuit breaker."""
    return Available(
        settings,
        frozenset(live_workers(s, settings)),
        {engine: b.until for engine, b in tripped(s).items() if b.until is not None},
    )


class Recent(Generic[T]):
    """A database read remembered for `ttl` seconds: the API asks on every submission."""

    def __init__(self, read: Callable[[Session], T], ttl: float = 2.0) -> None:
        self.read, self.ttl = read, ttl
        self._at, self._value = -ttl, cast(T | None, None)

    @property
    def fresh(self) -> T | None:
        """The remembered value while it is fresh, without touching the database."""
        return self._value if time.monotonic() - self._at <= self.ttl else None

    def __call__(self) -> T:
        value = self.fresh
        if value is None:
            with db.session() as s:
                value = self._value = self.read(s)
            self._at = time.monotonic()
        return value


class LiveEngines(Recent[Available]):
    """available(), remembered for a moment."""

    def __init__(self, settings: Settings, ttl: float = 2.0) -> None:
        super().__init__(lambda s: available(s, settings), ttl)


@lru_cache
def get_live() -> LiveEngines:
    return LiveEngines(get_settings())


def advertise(engine: str) -> dict[str, Any]:
    """What this worker's engine can do, as its heartbeat carries it; only workers whose engine
    passed its self-test beat, so it says so."""
    return {**engines.create(engine, get_settings()).capabilities().to_json(), "self_test": "passed"}


def remember(s: Session, engine: str, capabilities: dict[str, Any]) -> None:
    """Make these the engine's last known capabilities."""
    stmt = db.upsert(s, EngineCapabilities).values(engine=engine, capabilities=capabilities, updated_at=utcnow())
    s.execute(
        stmt.on_conflict_do_update(
            index_elements=[EngineCapabilities.engine], set_={"capabilities": capabilities, "updated_at": utcnow()}
        )
    )


def beat(name: str, engine: str, capabilities: dict[str, Any], jobs: Callable[[], list[str]] = list) -> None:
    """Say the worker lives, and which task ids it holds (`jobs`, read at the time the beat
    records as its `last_seen`)."""
    with db.session() as s:
        row = s.get(Worker, name)
        # Read after the row's lock is asked for and before the time is taken: an attempt begun
        # before `last_seen` is one whose task `jobs` already held.
        now, holding = utcnow(), jobs()
        if row is None:
            # A worker's first beat, or one after its row was lost: the newest start wins, so
            # a rolled-out model's version reaches the catalog with its first worker.
            s.add(Worker(name=name, engine=engine, capabilities=capabilities, last_seen=now, jobs=holding))
            remember(s, engine, capabilities)
        else:
            row.last_seen, row.jobs = now, holding


def held() -> list[str]:
    """The task ids this worker holds: received and not yet done, whichever process runs them.
    A task is held from before its pool process begins the job's attempt until it ends."""
    # Celery's main thread adds and removes requests meanwhile: a dict's copy is one step.
    return sorted(worker_state.requests.copy())


class Heartbeat(bootsteps.StartStopStep):  # type: ignore[misc]
    """Celery worker step: beat every `heartbeat_seconds` from a thread of the worker's main
    process. Not from the worker's event-loop timer: that is reset when the consumer reconnects
    after losing the broker, and the engine would look dead for good."""

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.engine = os.environ.get("VOICEFARM_WORKER_ENGINE", "")
        self.name = process_name(self.engine, os.getpid())
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.capabilities: dict[str, Any] = {}

    def _beat(self) -> None:
        try:
            beat(self.name, self.engine, self.capabilities, held)
        except Exception:  # a database blip must not stop the worker; the next beat retries
            log.warning("heartbeat failed", exc_info=True)

    def _run(self) -> None:
        interval = get_settings().heartbeat_seconds
        while not self.stopping.wait(interval):
            self._beat()

    def start(self, worker: Any) -> None:
        if self.engine:
            # The first beat runs here, before the thread exists: it imports the database driver
            # and builds the engine. A pool child forked while a thread held an import lock
            # would wait on that lock for ever.
            self.capabilities = advertise(self.engine)
            self._beat()
            self.thread = threading.Thread(target=self._run, name="voicefarm-heartbeat", daemon=True)
            self.thread.start()
            # Beat until the process exits, not until this step stops: a warm shutdown stops
            # the steps first and then waits for the job in hand, and a worker that stopped
            # beating has its jobs sent again (voicefarm.ops.reconcile).
            atexit.register(self._leave)

    def _leave(self) -> None:
        if self.thread is not None:
            self.stopping.set()
            self.thread.join(5)
            with db.session() as s:
                s.execute(delete(Worker).where(Worker.name == self.name))
