"""A job's chain: the engines it may run on, best first, each with what it speaks there."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Link:
    """One engine of a job's chain, stored in the job row as JSON."""

    engine: str
    voice: str  # the voice that engine speaks: a cloned voice's fallback on an engine that cannot clone
    cloned: bool
    key: str  # the content key of the file this engine would make
    source: str  # the source key of its speech, which keys the lossless master

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
