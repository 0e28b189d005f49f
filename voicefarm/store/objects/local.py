"""Objects as files under one directory (`file://`): the embedded farm's store, by default."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from voicefarm.errors import ObjectMissing
from voicefarm.store.objects.base import StoredObject


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
