#!/usr/bin/env bash
# Create (or bring up to date) the StyleTTS2 worker's own virtual environment,
# workers/styletts2/.venv, exactly as locks/styletts2.txt says (torch, styletts2, the core's
# dependencies, resolved together: styletts2's langchain holds packaging below 24), plus the
# core itself, workers/torchkit and this engine's package (voicefarm_styletts2), editable. A
# no-op when nothing changed since the last successful run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
stamp="$venv/.installed-stamp"

if [ "$stamp" -nt "$root/locks/styletts2.txt" ] && [ "$stamp" -nt "$root/locks/sync.sh" ] \
    && [ "$stamp" -nt "$root/pyproject.toml" ] \
    && [ "$stamp" -nt "${BASH_SOURCE[0]}" ] && [ "$stamp" -nt "$here/pyproject.toml" ] \
    && [ "$stamp" -nt "$root/workers/torchkit/pyproject.toml" ]; then
    exit 0
fi

# The engine's own package and the torch helpers it shares with the other torch engine.
bash "$root/locks/sync.sh" "$venv" "$root/locks/styletts2.txt" "$root/workers/torchkit" "$here"
touch "$stamp"
