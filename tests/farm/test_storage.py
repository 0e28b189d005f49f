"""Both object stores against the real thing: a local directory and an S3 server (rclone)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.farm.conftest import ENV
from voicefarm.errors import ObjectMissing
from voicefarm.settings import Settings
from voicefarm.store.objects import LocalStore, S3Store, open_store


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path: Path):
    if request.param == "local":
        return open_store(Settings(storage_url=(tmp_path / "objects").as_uri()))
    return open_store(Settings())  # the test farm's S3 settings


def test_put_get_exists_delete(store) -> None:
    key = "audio/test-object.wav"
    assert not store.exists(key)
    store.put(key, b"RIFF....WAVE", "audio/wav")
    assert store.exists(key) and store.get(key) == b"RIFF....WAVE"
    store.put(key, b"replaced", "audio/wav")
    assert store.get(key) == b"replaced"
    store.delete(key)
    assert not store.exists(key)
    with pytest.raises(ObjectMissing, match="was deleted; ask again"):  # a 409, not a 500
        store.get(key)
    store.check()


def test_s3_presigned_url_serves_the_object() -> None:
    store = open_store(Settings())
    assert isinstance(store, S3Store)
    store.put("audio/presigned.flac", b"fLaC-bytes", "audio/flac")
    url = store.presigned_url("audio/presigned.flac")
    assert url.startswith(ENV["VOICEFARM_S3_ENDPOINT_URL"])
    r = httpx.get(url)
    assert r.status_code == 200 and r.content == b"fLaC-bytes"
    assert httpx.get(url.split("?")[0]).status_code in (400, 403)  # not public without the signature


def test_s3_check_fails_for_a_missing_bucket() -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):
        open_store(Settings(storage_url="s3://no-such-bucket")).check()


def test_local_store_refuses_keys_outside_its_root(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    with pytest.raises(ValueError, match="escapes"):
        store.put("../outside", b"x", "text/plain")
    assert store.presigned_url("anything") is None
