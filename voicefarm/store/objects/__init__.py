"""Object storage for finished audio, behind one interface (`base`) with one class per kind: a
local directory (`local`), or any S3-compatible service (`s3`), as `VOICEFARM_STORAGE_URL` names.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from voicefarm.settings import Settings, get_settings
from voicefarm.store.objects.base import Store, StoredObject
from voicefarm.store.objects.local import LocalStore
from voicefarm.store.objects.s3 import S3Store

__all__ = ["LatentsStore", "LocalStore", "S3Store", "Store", "StoredObject", "get_store", "open_store"]


def open_store(settings: Settings) -> Store:
    url = urlparse(settings.storage_url)
    if url.scheme == "file":
        return LocalStore(Path(url2pathname(url.path)))
    if url.scheme == "s3":
        return S3Store(url.netloc, url.path, settings)
    raise ValueError(f"VOICEFARM_STORAGE_URL must be file:// or s3://, not {settings.storage_url!r}")


@lru_cache
def get_store() -> Store:
    return open_store(get_settings())


class LatentsStore:
    """Speaker latents in the object store, by object key. Callers key them under the voice's
    prefix, so purging a voice purges its latents."""

    def get(self, key: str) -> bytes | None:
        store = get_store()
        return store.get(key) if store.exists(key) else None

    def put(self, key: str, data: bytes) -> None:
        get_store().put(key, data, "application/octet-stream")
