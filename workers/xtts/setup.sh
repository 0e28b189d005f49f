#!/usr/bin/env bash
# Create (or bring up to date) the XTTS worker's own virtual environment, workers/xtts/.venv,
# exactly as locks/xtts.txt says (torch, coqui-tts, the core's dependencies), plus the core
# itself, workers/torchkit and this engine's package (voicefarm_xtts), editable, so the worker
# runs the repo's code as it is. A no-op when nothing changed since the last successful run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
stamp="$venv/.installed-stamp"

if [ "$stamp" -nt "$root/locks/xtts.txt" ] && [ "$stamp" -nt "$root/locks/sync.sh" ] \
    && [ "$stamp" -nt "$root/pyproject.toml" ] \
    && [ "$stamp" -nt "${BASH_SOURCE[0]}" ] && [ "$stamp" -nt "$here/pyproject.toml" ] \
    && [ "$stamp" -nt "$root/workers/torchkit/pyproject.toml" ]; then
    exit 0
fi

# torchcodec (torchaudio 2.9's audio decoder) loads FFmpeg's shared libraries.
if ! command -v ffmpeg >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq ffmpeg >/dev/null
fi

# The engine's own package and the torch helpers it shares with the other torch engine.
bash "$root/locks/sync.sh" "$venv" "$root/locks/xtts.txt" "$root/workers/torchkit" "$here"
touch "$stamp"
