"""The embedded default end to end: `voicefarm demo` with no servers and no configuration."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
import soundfile as sf

from tests.farm.conftest import embedded_up


def test_demo_runs_the_farm_with_no_servers(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOICEFARM_")}
    done = subprocess.run(["voicefarm", "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "local API key: vf_" in out and "farm stopped" in out
    jobs = re.findall(r"job (\w{32})  engine piper  audio ([\d.]+) s  synthesis ([\d.]+) s  url (\S+)", out)
    assert len(jobs) == 3, out
    for _, duration, _, url in jobs:
        assert float(duration) > 0.5 and "/v1/audio/" in url
    assert "cache hit, status succeeded" in out
    files = sorted((tmp_path / "demo-output").glob("phrase-*.wav"))
    assert len(files) == 3
    info = sf.info(io.BytesIO(files[0].read_bytes()))
    assert info.samplerate == 22050 and info.duration > 0.5
    data = tmp_path / ".voicefarm"
    assert (data / "voicefarm.db").is_file() and any((data / "objects" / "audio").iterdir())
    # Everything it started is gone: no process still has the data directory open.
    assert subprocess.run(["pgrep", "-f", f"{tmp_path}"], capture_output=True).returncode == 1


def processes_using(directory: Path) -> list[int]:
    """Processes whose environment names this data directory: what one `voicefarm up` started."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"VOICEFARM_DATA_DIR={directory}".encode() in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:  # gone while we looked, or not ours to read
            pass
    return found


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_up_stops_everything_it_started(tmp_path: Path, stop: signal.Signals) -> None:
    # The API, a Piper worker, the webhook worker and the reconciler.
    up, lines = embedded_up(tmp_path, until="farm up at")
    try:
        assert lines and lines[-1].startswith("farm up at"), "".join(lines)
        children = [pid for pid in processes_using(tmp_path) if pid != up.pid]
        assert len(children) >= 4, children
        up.send_signal(stop)
        rest, _ = up.communicate(timeout=60)
        assert up.returncode == 0, "".join(lines) + rest
        assert f"stopped ({stop.name})" in rest, rest
        assert processes_using(tmp_path) == [], "children outlived voicefarm up"
    finally:
        if up.poll() is None:
            up.kill()
