"""What the farm must know about its broker's insides, behind one interface per broker kind.

Celery hides most of the broker, but ops need queue depths, the reconciler needs the ids of the
messages the broker holds, and workers need transport options and command-line flags. Those
are the only places that know kombu's storage layout: Redis lists and hashes, or the
filesystem transport's message files (the embedded farm).
"""

from __future__ import annotations

import contextlib
import json
from abc import ABC, abstractmethod
from functools import cache
from pathlib import Path
from typing import Any

from redis import Redis

from voicefarm.cache import connect
from voicefarm.settings import Settings


def queue_name(engine: str) -> str:
    return f"tts.{engine}"


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
    def message_ids(self) -> set[str]:
        """Task ids (= job ids) of every job message held: waiting, or delivered but unacked."""


class RedisBroker(Broker):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.prefix = f"{settings.redis_prefix}:"

    @property
    def client(self) -> Redis:
        return _client(self.settings.broker_url)

    def transport_options(self) -> dict[str, Any]:
        # Redis redelivers an unacked message after the visibility timeout: it must outlast the
        # longest task, or a slow job would run twice.
        # Its priority steps are the farm's fairness levels, each a list Redis serves in turn.
        from voicefarm.jobs.fairness import LEVELS

        return {
            "visibility_timeout": self.settings.longest_task * 2 + 60,
            "global_keyprefix": self.prefix,
            "priority_steps": LEVELS,
        }

    def worker_flags(self) -> list[str]:
        return []

    def queue_depths(self, engines: list[str]) -> dict[str, int]:
        # kombu keeps one list per priority level: "<queue>" and "<queue>\x06\x16<priority>".
        def depth(queue: str) -> int:
            keys = self.client.scan_iter(f"{self.prefix}{queue}*", _type="list")
            return sum(self.client.llen(k) for k in keys if k.decode().split("\x06\x16")[0] == self.prefix + queue)

        return {engine: depth(queue_name(engine)) for engine in engines}

    def message_ids(self) -> set[str]:
        raw: list[bytes | str] = []
        for key in self.client.scan_iter(f"{self.prefix}{queue_name('*')}", _type="list"):
            raw += self.client.lrange(key, 0, -1)
        found = {json.loads(m)["headers"]["id"] for m in raw}
        # kombu keeps delivered, unacked messages in a hash: [message, exchange, routing key].
        found |= {json.loads(v)[0]["headers"]["id"] for v in self.client.hvals(f"{self.prefix}unacked")}
        return found


class FilesystemBroker(Broker):
    """kombu's filesystem transport: one file per message in a shared folder (the embedded farm)."""

    def __init__(self, settings: Settings) -> None:
        self.root = settings.data_dir / "broker"
        self.polling_interval = settings.filesystem_polling_interval

    def _folder(self, name: str) -> Path:
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def transport_options(self) -> dict[str, Any]:
        queue = str(self._folder("queue"))
        return {
            "data_folder_in": queue,
            "data_folder_out": queue,
            "control_folder": str(self._folder("control")),
            "processed_folder": str(self._folder("processed")),
            "polling_interval": self.polling_interval,
        }

    def worker_flags(self) -> list[str]:
        # No broadcast exchange on this transport: gossip, mingle and event heartbeats need one.
        return ["--without-gossip", "--without-mingle", "--without-heartbeat"]

    def _messages(self) -> list[Path]:
        return list(self._folder("queue").glob("*.msg"))

    def queue_depths(self, engines: list[str]) -> dict[str, int]:
        # Message files are named "<time>_<uuid>.<queue>.msg", and queue names hold dots.
        queues = [path.name.removesuffix(".msg").split(".", 1)[-1] for path in self._messages()]
        return {engine: queues.count(queue_name(engine)) for engine in engines}

    def message_ids(self) -> set[str]:
        found = set()
        for path in self._messages():
            with contextlib.suppress(OSError, ValueError, KeyError):  # taken by a worker while we looked
                found.add(json.loads(path.read_text())["headers"]["id"])
        return found


@cache
def _client(url: str) -> Redis:
    """One pooled client per broker URL, for reading its lists."""
    return connect(url)


def for_settings(settings: Settings) -> Broker:
    return FilesystemBroker(settings) if settings.broker_url.startswith("filesystem://") else RedisBroker(settings)
