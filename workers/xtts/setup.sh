#!/usr/bin/env bash
# Create (or bring up to date) the XTTS worker's own virtual environment, workers/xtts/.venv:
# torch, coqui-tts and the voicefarm core (editable). Idempotent, and a no-op when nothing
# changed since the last successful run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
stamp="$venv/.installed-stamp"

if [ "$stamp" -nt "$here/requirements.txt" ] && [ "$stamp" -nt "$root/pyproject.toml" ]; then
    exit 0
fi

# torchcodec (torchaudio 2.9's audio decoder) loads FFmpeg's shared libraries.
if ! command -v ffmpeg >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq ffmpeg >/dev/null
fi

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -r "$here/requirements.txt"
# The core package, editable, so the worker runs the repo's code as it is.
"$venv/bin/python" -m pip install -q -e "$root"
touch "$stamp"
