"""The API in this process, on the embedded defaults: SQLite, the local object store and the
filesystem broker under a temporary directory. No server and no worker: what this tier tests is
what the API itself decides (validation, auth, what it stores and enqueues).

The environment is set before voicefarm is imported, since its settings are read once.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

TMP = Path(tempfile.mkdtemp(prefix="voicefarm-api-test-"))
os.environ.update(
    {
        "VOICEFARM_DATA_DIR": str(TMP),
        "VOICEFARM_DATABASE_URL": "",
        "VOICEFARM_BROKER_URL": "",
        "VOICEFARM_STORAGE_URL": "",
        "VOICEFARM_REDIS_URL": "",
        "VOICEFARM_ENGINES": '["piper"]',
        "VOICEFARM_WORKER_DEAD_AFTER_SECONDS": "3600",  # the one heartbeat below stays live all session
    }
)

from fastapi.testclient import TestClient  # noqa: E402

from voicefarm.cli.admin import migrate  # noqa: E402
from voicefarm.fleet import heartbeat  # noqa: E402
from voicefarm.store import db  # noqa: E402
from voicefarm.tenancy.auth import create_key  # noqa: E402


@pytest.fixture(scope="session")
def app() -> Iterator[TestClient]:
    """The API, once a Piper worker has advertised its engine: the API knows engines only
    from their workers' heartbeats, so this tier beats once, in process, as a worker would."""
    migrate()
    heartbeat.beat("piper@api-tests:1", "piper", heartbeat.advertise("piper"))
    from voicefarm.api.app import create_app

    with TestClient(create_app()) as client:
        yield client


@pytest.fixture(scope="session")
def api_key(app: TestClient) -> str:
    with db.session() as s:
        return create_key(s, "tenant-a", name="tests")


@pytest.fixture(scope="session")
def admin_key(app: TestClient) -> str:
    with db.session() as s:
        return create_key(s, "ops", name="tests", admin=True)


@pytest.fixture
def http(app: TestClient, api_key: str) -> Iterator[TestClient]:
    """A client that sends the tenant's key."""
    with TestClient(app.app, headers={"X-API-Key": api_key}) as client:
        yield client
