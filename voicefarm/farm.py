"""Run a whole farm on one machine: the API and one worker per engine, as child processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from voicefarm.settings import Settings

WORKERS = Path(__file__).resolve().parent.parent / "workers"


class Farm:
    def __init__(
        self,
        settings: Settings,
        *,
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
        workers: list[str] | None = None,
    ) -> None:
        self.settings = settings
        self.workers = settings.engines if workers is None else workers
        self.env = {**os.environ, **(env or {})}
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

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

    def start(self) -> None:
        self._spawn("api", "api")
        for engine in self.workers:
            self._spawn(f"worker-{engine}", "worker", "--engine", engine, python=self.python_for(engine))
        self._spawn("webhooks", "webhooks")
        self._spawn("reconciler", "reconcile", "--every", str(self.settings.reconcile_after_seconds / 2))

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until the API is healthy and every worker beats (its jobs wait for its model to load)."""
        from voicefarm.heartbeat import live_engines

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                healthy = httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                healthy = False
            if healthy and set(self.workers) <= live_engines(self.settings):
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
