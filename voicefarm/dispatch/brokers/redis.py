"""Celery's Redis transport, as kombu lays it out: one list per queue and priority level, and a
hash of delivered, unacknowledged messages."""

from __future__ import annotations

import json
from typing import Any

from redis import Redis

from voicefarm.dispatch.brokers.base import Broker
from voicefarm.dispatch.names import engine_queue
from voicefarm.dispatch.priorities import LEVELS
from voicefarm.settings import Settings
from voicefarm.store.redis import connect


class RedisBroker(Broker):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.prefix = f"{settings.redis_prefix}:"

    @property
    def client(self) -> Redis:
        return connect(self.settings.broker_url)

    def transport_options(self) -> dict[str, Any]:
        # Redis redelivers an unacked message after the visibility timeout: it must outlast the
        # longest task, or a slow job would run twice.
        # Its priority steps are the farm's fairness levels, each a list Redis serves in turn.
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

        return {engine: depth(engine_queue(engine)) for engine in engines}

    def emptied(self) -> bool:
        # A mark that only a Redis that lost its data lacks: SET NX says whether it was missing.
        return bool(self.client.set(f"{self.prefix}broker-mark", 1, nx=True))

    def message_ids(self) -> set[str]:
        raw: list[bytes | str] = []
        for key in self.client.scan_iter(f"{self.prefix}{engine_queue('*')}", _type="list"):
            raw += self.client.lrange(key, 0, -1)
        return {json.loads(m)["headers"]["id"] for m in raw} | self.delivered_ids()

    def delivered_ids(self) -> set[str]:
        # kombu keeps delivered, unacked messages in a hash: [message, exchange, routing key].
        return {json.loads(v)[0]["headers"]["id"] for v in self.client.hvals(f"{self.prefix}unacked")}
