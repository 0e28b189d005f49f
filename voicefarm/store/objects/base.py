"""The interface every object store gives the farm."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified: datetime  # aware, UTC


class Store(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...
    def get(self, key: str) -> bytes:
        """The object's bytes; ObjectMissing when it is not there."""
        ...

    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def stat(self, key: str) -> StoredObject | None:
        """The object's size and modification time as they are now; None when it is gone."""

    def objects(self, prefix: str) -> Iterator[StoredObject]:
        """Every object under `prefix`, as a listing sees it (a server may list from a cache)."""

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix`; returns how many."""

    def url(self, key: str) -> str:
        """The object's permanent address in this store."""

    def presigned_url(self, key: str) -> str | None:
        """A URL a client can fetch directly, or None when the API must serve the bytes."""

    def check(self) -> None:
        """Raise if the store cannot be reached."""
