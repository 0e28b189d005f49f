#!/usr/bin/env bash
# Create (or update) the XTTS worker's own virtual environment: workers/xtts/.venv.
# Idempotent: re-running reuses the venv and pip skips what is already installed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"

# torchaudio 2.9 decodes audio through torchcodec, which needs FFmpeg's shared libraries.
if ! command -v ffmpeg >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq ffmpeg
fi

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
# torch first and alone, so the resolver never swaps it for another release.
"$venv/bin/python" -m pip install -q torch==2.9.1
"$venv/bin/python" -m pip install -q -r "$here/requirements.txt"
# The core package, editable, so the worker runs the repo's code as it is.
"$venv/bin/python" -m pip install -q -e "$root"
