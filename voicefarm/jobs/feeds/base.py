"""The interface every feed kind gives the farm, and the entries it carries.

Entries name their attempt and engine, so a reader can tell attempts apart: a piece of audio
(float32 samples and their rate), or the end of an attempt: `end` once its audio is stored,
`failed` with its error. A document's pieces are its segments, appended as each is ready, in no
particular order: each names its position and its stored master rather than carrying samples
(a book's audio does not belong in Redis), and, in place of an attempt, its engine's place in
the job's chain, since one engine speaks all of it, over as many attempts and dispatches as it
takes (voicefarm.worker.documents). A `canceled` entry names the job its owner canceled, in the
feed its listeners read (a follower's listeners read its leader's), so they stop at once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from redis.typing import EncodableT, FieldT

from voicefarm.engines.base import Audio

Kind = Literal["audio", "end", "failed", "canceled"]


@dataclass(frozen=True)
class Entry:
    attempt: int
    engine: str
    kind: Kind
    audio: Audio | None = None  # kind "audio"
    error: str | None = None  # kind "failed"
    segment: int | None = None  # a document's piece: the segment it is,
    source: str | None = None  # the source key of its stored master,
    pause: float = 0.0  # and the seconds of silence after it
    job: str | None = None  # kind "canceled": the job canceled

    def fields(self) -> dict[FieldT, EncodableT]:
        out: dict[FieldT, EncodableT] = {"attempt": self.attempt, "engine": self.engine, "kind": self.kind}
        if self.audio is not None:
            out |= {"rate": self.audio.sample_rate, "pcm": self.audio.samples.astype("<f4").tobytes()}
        if self.error is not None:
            out["error"] = self.error
        if self.segment is not None and self.source is not None:
            out |= {"segment": self.segment, "source": self.source, "pause": self.pause}
        if self.job is not None:
            out["job"] = self.job
        return out

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> Entry:
        pcm = fields.get("pcm")
        audio = Audio(np.frombuffer(pcm, dtype="<f4"), int(fields["rate"])) if pcm is not None else None
        segment = int(fields["segment"]) if "segment" in fields else None
        return cls(
            int(fields["attempt"]),
            str(fields["engine"]),
            fields["kind"],
            audio,
            fields.get("error"),
            segment,
            fields.get("source"),
            float(fields.get("pause", 0.0)),
            fields.get("job"),
        )


class Feed(ABC):
    """Workers append (blocking I/O); the API reads (asyncio). A cursor is where a reader is."""

    start = "0"  # the cursor before a job's first entry

    @abstractmethod
    def append(self, job_id: str, entry: Entry) -> None: ...

    @abstractmethod
    async def read(self, job_id: str, cursor: str, wait: float) -> tuple[list[Entry], str]:
        """The entries after `cursor`, waiting up to `wait` seconds for one; and the next cursor."""
