"""kombu's filesystem transport, the embedded farm's broker: one file per message."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

from voicefarm.dispatch.brokers.base import Broker
from voicefarm.dispatch.names import engine_queue
from voicefarm.settings import Settings


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

    def emptied(self) -> bool:
        return False  # its messages are files: a restart keeps them

    def worker_flags(self) -> list[str]:
        # No broadcast exchange on this transport: gossip, mingle and event heartbeats need one.
        return ["--without-gossip", "--without-mingle", "--without-heartbeat"]

    def _messages(self) -> list[Path]:
        return list(self._folder("queue").glob("*.msg"))

    def queue_depths(self, engines: list[str]) -> dict[str, int]:
        # Message files are named "<time>_<uuid>.<queue>.msg", and queue names hold dots.
        queues = [path.name.removesuffix(".msg").split(".", 1)[-1] for path in self._messages()]
        return {engine: queues.count(engine_queue(engine)) for engine in engines}

    def message_ids(self) -> set[str]:
        found = set()
        for path in self._messages():
            with contextlib.suppress(OSError, ValueError, KeyError):  # taken by a worker while we looked
                found.add(json.loads(path.read_text())["headers"]["id"])
        return found

    def delivered_ids(self) -> set[str]:
        return set()  # kombu's filesystem transport removes a message as it delivers it
