"""Object storage for finished audio: a local directory, or any S3-compatible service."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse
from urllib.request import url2pathname

from voicefarm.errors import ObjectMissing
from voicefarm.settings import Settings, get_settings


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


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"object key escapes the store: {key!r}")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a reader never sees half an object, even if the worker dies.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectMissing(f"object {key!r} was deleted; ask again") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def stat(self, key: str) -> StoredObject | None:
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            return None
        return StoredObject(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def objects(self, prefix: str) -> Iterator[StoredObject]:
        root = self.root.resolve()
        for path in sorted(self._path(prefix).rglob("*")):
            found = self.stat(path.relative_to(root).as_posix()) if path.is_file() else None
            if found is not None:  # gone since the listing: nothing to report
                yield found

    def delete_prefix(self, prefix: str) -> int:
        root = self._path(prefix)
        if not root.exists():
            return 0
        files = [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else [root]
        for path in files:
            path.unlink()
        if root.is_dir():
            shutil.rmtree(root)
        return len(files)

    def url(self, key: str) -> str:
        return self._path(key).as_uri()

    def presigned_url(self, key: str) -> str | None:
        return None

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise PermissionError(f"object store directory {self.root} is not writable")


class S3Store:
    def __init__(self, bucket: str, prefix: str, settings: Settings) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.presign_seconds = settings.s3_presign_seconds
        self.client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=settings.s3_access_key_id,
            aws_secret_access_key=settings.s3_secret_access_key,
            config=Config(
                s3={"addressing_style": "path"},
                signature_version="s3v4",
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        try:
            data: bytes = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise ObjectMissing(f"object {key!r} was deleted; ask again") from None
        return data

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def stat(self, key: str) -> StoredObject | None:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return StoredObject(key, head["ContentLength"], head["LastModified"].astimezone(UTC))

    def objects(self, prefix: str) -> Iterator[StoredObject]:
        strip = len(self._key(""))
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            for o in page.get("Contents", []):
                yield StoredObject(o["Key"][strip:], o["Size"], o["LastModified"].astimezone(UTC))

    def delete_prefix(self, prefix: str) -> int:
        deleted = 0
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
        return deleted

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def presigned_url(self, key: str) -> str | None:
        url: str = self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)}, ExpiresIn=self.presign_seconds
        )
        return url

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)


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
