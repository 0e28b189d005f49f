"""The collector on the reconciler's schedule."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from voicefarm.library.retention.collector import collect
from voicefarm.settings import Settings


class Periodic:
    """The collector on its own schedule, for the reconciler's loop: at start and then every
    `gc_interval_seconds`, in a thread of its own, so that a long collection (the first one on a
    farm with years of history) never holds up the re-enqueueing of lost jobs."""

    def __init__(self, settings: Settings, say: Callable[[str], object]) -> None:
        self.settings = settings
        self.say = say
        self.due = 0.0
        self.thread: threading.Thread | None = None

    def poll(self) -> None:
        """Start a collection if one is due and none is running."""
        if time.monotonic() < self.due or (self.thread is not None and self.thread.is_alive()):
            return
        self.due = time.monotonic() + self.settings.gc_interval_seconds
        self.thread = threading.Thread(target=self.run, name="gc", daemon=True)
        self.thread.start()

    def run(self) -> None:
        try:
            self.say(f"gc deleted {collect(self.settings).summary()}")
        except Exception as e:  # a database, Redis or store outage: the next round tries again
            self.say(f"gc failed, next in {self.settings.gc_interval_seconds:g} s: {e}")
