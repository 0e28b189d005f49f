"""The local supervisor finds each heavy engine's own environment (workers/<engine>/.venv)."""

from __future__ import annotations

import sys
from pathlib import Path

from voicefarm.ops.supervisor import WORKERS, Farm

ROOT = Path(__file__).resolve().parents[3]


def test_the_engine_packages_are_where_the_supervisor_looks() -> None:
    assert WORKERS == ROOT / "workers"
    assert {"xtts", "styletts2"} <= {p.parent.name for p in WORKERS.glob("*/setup.sh")}


def test_an_engine_without_an_environment_of_its_own_runs_in_this_one() -> None:
    assert Farm.python_for("piper") == sys.executable
