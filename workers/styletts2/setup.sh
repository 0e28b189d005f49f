#!/usr/bin/env bash
# Create (or bring up to date) the StyleTTS2 worker's own virtual environment,
# workers/styletts2/.venv, exactly as locks/styletts2.txt says (torch, styletts2, the core's
# dependencies, resolved together: styletts2's langchain holds packaging below 24), plus the
# core itself, editable. A no-op when nothing changed since the last successful run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
stamp="$venv/.installed-stamp"

if [ "$stamp" -nt "$root/locks/styletts2.txt" ] && [ "$stamp" -nt "$root/pyproject.toml" ] \
    && [ "$stamp" -nt "${BASH_SOURCE[0]}" ]; then
    exit 0
fi

bash "$root/locks/sync.sh" "$venv" "$root/locks/styletts2.txt"
touch "$stamp"
