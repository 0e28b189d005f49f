#!/usr/bin/env bash
# Make a virtual environment exactly what a lock file says, then add the voicefarm core
# (editable, no dependencies: the lock already holds them). uv verifies every hash and, with
# its cache on the same filesystem, hard-links files, so the two torch environments share one
# download and one copy of torch on disk.
# Local packages named after the lock (engine packages under workers/) go in the same way:
# editable, no dependencies.
# Everything installed is compiled to bytecode once, here: where no process may write bytecode
# (PYTHONDONTWRITEBYTECODE, as on CI), each would otherwise compile every module it imports,
# torch's included, every time it starts.
#   locks/sync.sh VENV LOCK [PACKAGE_DIR...]
set -euo pipefail

venv="$1" lock="$2"
shift 2
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
uv="$root/.venv/bin/uv"
export UV_PYTHON_DOWNLOADS=never  # the interpreter comes from the machine, never from the internet

if [ ! -x "$uv" ]; then
    # The core environment brings uv; uv itself is pinned by hash in locks/uv.txt.
    [ -x "$root/.venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$root/.venv"
    "$root/.venv/bin/python" -m pip install -q --require-hashes --no-deps -r "$root/locks/uv.txt"
fi
[ -x "$venv/bin/python" ] || "$uv" venv -q --python "${PYTHON:-python3}" "$venv"
"$uv" pip sync -q --compile-bytecode --python "$venv/bin/python" --require-hashes "$lock"
editables=(-e "$root")
for package in "$@"; do
    editables+=(-e "$package")
done
"$uv" pip install -q --python "$venv/bin/python" --no-deps "${editables[@]}"
