"""The embedded farm's feed, without Redis: an append-only file per job under
`<data_dir>/streams`, one JSON line an entry, that the API polls every
`filesystem_polling_interval`. The embedded farm's API and workers share one machine's disk, and
its broker (kombu's filesystem transport) offers nothing a reader could wait on. Files older
than `stream_ttl_seconds` are swept when a new one is made.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import cast

from voicefarm.jobs.feeds.base import Entry, Feed
from voicefarm.settings import Settings


class FileFeed(Feed):
    def __init__(self, settings: Settings) -> None:
        self.root = settings.data_dir / "streams"
        self.ttl = settings.stream_ttl_seconds
        self.poll = settings.filesystem_polling_interval

    def path(self, job_id: str) -> Path:
        return self.root / f"{job_id}.jsonl"

    def append(self, job_id: str, entry: Entry) -> None:
        path = self.path(job_id)
        if not path.exists():
            self._sweep()
        fields = entry.fields()
        if "pcm" in fields:
            fields["pcm"] = base64.b64encode(cast(bytes, fields["pcm"])).decode()
        # One write of one whole line: a reader never takes half an entry for a whole one.
        with path.open("a") as f:
            f.write(json.dumps(fields) + "\n")

    def _sweep(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        old = time.time() - self.ttl
        for path in self.root.glob("*.jsonl"):
            try:
                if path.stat().st_mtime < old:
                    path.unlink()
            except FileNotFoundError:  # swept by another worker meanwhile
                pass

    def _read(self, job_id: str, offset: int) -> tuple[list[Entry], int]:
        try:
            with self.path(job_id).open("rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:  # no entry yet: the job waits for a worker
            return [], offset
        whole = data[: data.rfind(b"\n") + 1]  # a line still being written waits for the next read
        entries = []
        for line in whole.splitlines():
            fields = json.loads(line)
            if "pcm" in fields:
                fields["pcm"] = base64.b64decode(fields["pcm"])
            entries.append(Entry.from_fields(fields))
        return entries, offset + len(whole)

    async def read(self, job_id: str, cursor: str, wait: float) -> tuple[list[Entry], str]:
        deadline = time.monotonic() + wait
        offset = int(cursor)
        while True:
            entries, offset = await asyncio.to_thread(self._read, job_id, offset)
            if entries or time.monotonic() >= deadline:
                return entries, str(offset)
            await asyncio.sleep(self.poll)
