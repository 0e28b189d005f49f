"""The interface every broker kind gives the farm."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any


class Broker(ABC):
    @abstractmethod
    def transport_options(self) -> dict[str, Any]:
        """Celery's `broker_transport_options`."""

    @abstractmethod
    def worker_flags(self) -> list[str]:
        """Extra `celery worker` flags this broker needs."""

    @abstractmethod
    def queue_depths(self, engines: list[str]) -> dict[str, int]:
        """Messages waiting on each engine's queue."""

    @abstractmethod
    def emptied(self) -> bool:
        """Whether the broker may have lost every message it held (a restart without persistence)
        since it was last asked; True the first time it is asked."""

    @abstractmethod
    def message_ids(self) -> set[str]:
        """Task ids (= job ids) of every job message held: waiting, or delivered but unacked."""

    @abstractmethod
    def delivered_ids(self) -> set[str]:
        """Task ids of the messages delivered to a worker and not acked: should that worker die,
        each goes back to its queue only after the visibility timeout."""
