#!/usr/bin/env bash
# Create (or bring up to date) the StyleTTS2 worker's own virtual environment,
# workers/styletts2/.venv: torch, styletts2 and the voicefarm core (editable). Idempotent,
# and a no-op when nothing changed since the last successful run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
stamp="$venv/.installed-stamp"

if [ "$stamp" -nt "$here/requirements.txt" ] && [ "$stamp" -nt "$root/pyproject.toml" ] \
    && [ "$stamp" -nt "${BASH_SOURCE[0]}" ]; then
    exit 0
fi

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
# One resolver run over both, with the core editable (the worker runs the repo's code as it
# is): installed one after the other, the core's celery[redis] would pull kombu's
# packaging==26.3 over langchain-core's packaging<24.
"$venv/bin/python" -m pip install -q -r "$here/requirements.txt" -e "$root"
touch "$stamp"
