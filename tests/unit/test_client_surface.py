"""The SDK's public surface, and that it needs nothing of the server (httpx's test_exported_members)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import voicefarm.client

ROOT = Path(__file__).resolve().parents[2]
# Changing the SDK's surface is a decision: this list changes with it.
PUBLIC = {
    "AsyncClient",
    "Client",
    "FarmError",
    "Invalid",
    "JobCanceled",
    "JobFailed",
    "NotFound",
    "NotReady",
    "StreamBroken",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "verify_signature",
}
SERVER_ONLY = ["fastapi", "starlette", "sqlalchemy", "celery", "kombu", "redis", "boto3", "numpy", "soundfile", "av"]


def test_exported_members() -> None:
    assert set(voicefarm.client.__all__) == PUBLIC
    for name in voicefarm.client.__all__:
        member = getattr(voicefarm.client, name)
        assert member.__module__.startswith("voicefarm."), name
        assert member.__doc__, f"{name} has no docstring"


def test_the_sdk_imports_with_every_server_library_missing() -> None:
    """A finder that refuses the server's libraries stands in for an environment without them."""
    script = f"""
import importlib.abc, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {SERVER_ONLY!r}:
            raise ModuleNotFoundError(f"no module named {{name!r}} (refused)")
sys.meta_path.insert(0, Refuse())
from voicefarm.client import AsyncClient, Client, verify_signature
Client("http://127.0.0.1:1", api_key="k").close()
print(sorted(m for m in sys.modules if m.split(".")[0] == "voicefarm"))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert set(eval(done.stdout)) == {
        "voicefarm",
        "voicefarm.client",
        "voicefarm.errors",
        "voicefarm.schemas",
        "voicefarm.signing",
    }


def test_a_bare_install_is_the_sdk_and_the_server_is_an_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    bare = {dep.split(">")[0].split("[")[0] for dep in project["dependencies"]}
    server = {dep.split(">")[0].split("[")[0] for dep in project["optional-dependencies"]["server"]}
    assert bare == {"httpx", "pydantic"}
    assert {"fastapi", "celery", "sqlalchemy", "redis", "boto3"} <= server
