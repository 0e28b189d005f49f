"""Every environment is exactly its lock: a version that drifted, a package missing or one
installed by hand fails here, before it can fail a job (a fresh resolve once brought in
transformers 5 and silently broke XTTS)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What a venv brings with it or what the environment adds on top of its lock: the core itself,
# installed editable, and the installers `python -m venv` seeds.
UNLOCKED = {"voicefarm", "pip", "setuptools"}
# environment -> (interpreter, lock, the repo's own packages its setup.sh adds, editable)
ENVIRONMENTS = {
    "core": (Path(sys.executable), ROOT / "locks" / "core.txt", set()),
    "xtts": (
        ROOT / "workers" / "xtts" / ".venv" / "bin" / "python",
        ROOT / "locks" / "xtts.txt",
        {"voicefarm-torchkit", "voicefarm-xtts"},
    ),
    "styletts2": (
        ROOT / "workers" / "styletts2" / ".venv" / "bin" / "python",
        ROOT / "locks" / "styletts2.txt",
        {"voicefarm-torchkit", "voicefarm-styletts2"},
    ),
}
INSTALLED = (
    "import importlib.metadata as m, json; "
    "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(lock: Path) -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", lock.read_text(), re.MULTILINE)
    return {canonical(name): version for name, version in pins}


def installed(python: Path) -> dict[str, str]:
    out = subprocess.run([str(python), "-c", INSTALLED], check=True, capture_output=True, text=True).stdout
    return {canonical(name): version for name, version in json.loads(out).items()}


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_environment_is_exactly_its_lock(name: str) -> None:
    python, lock, own = ENVIRONMENTS[name]
    if not python.is_file():
        pytest.fail(f"the {name} environment is missing: run make test (or workers/{name}/setup.sh)", pytrace=False)
    want, have = locked(lock), installed(python)
    assert want, f"{lock} pins nothing"
    drifted = {pkg: (version, have.get(pkg)) for pkg, version in want.items() if have.get(pkg) != version}
    unlocked = sorted(set(have) - set(want) - UNLOCKED - own)
    assert not drifted, f"{name}: installed versions differ from {lock.name} (locked, installed): {drifted}"
    assert not unlocked, f"{name}: installed but not in {lock.name}: {unlocked}"
    assert "voicefarm" in have, f"{name}: the voicefarm core is not installed"
    # The core environment (and so the API's) carries no engine package.
    assert own <= set(have) and not {p for p in have if p.startswith("voicefarm-")} - own, name


def test_xtts_keeps_transformers_below_5() -> None:
    """coqui-tts 0.28's GPT inference breaks on transformers 5 (`get_seq_length` of None)."""
    assert int(locked(ROOT / "locks" / "xtts.txt")["transformers"].split(".")[0]) < 5


def test_runtime_lock_agrees_with_the_core_lock() -> None:
    """The images (locks/runtime.txt) run the versions the tests ran (locks/core.txt)."""
    core, runtime = locked(ROOT / "locks" / "core.txt"), locked(ROOT / "locks" / "runtime.txt")
    assert runtime and {pkg: core.get(pkg) for pkg in runtime} == runtime


def test_every_lock_carries_hashes() -> None:
    for lock in (ROOT / "locks").glob("*.txt"):
        text = lock.read_text()
        pins = len(locked(lock))
        assert pins and text.count("--hash=sha256:") >= pins, f"{lock.name}: a pin without a hash"
