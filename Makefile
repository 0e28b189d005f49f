# One virtualenv holds the core, the Piper engine and the test tools; heavy engines have their
# own environments under workers/. Every environment is installed from its lock in locks/ and
# from nothing else; `make lock` re-resolves them, on purpose.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Tests and benchmarks run the venv's commands (voicefarm, rclone) without it being activated.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

UV := $(VENV)/bin/uv
# Locks are resolved for the machines the farm runs on: CPython 3.11 on x86-64 Linux (here, CI
# and every Docker image), whatever machine `make lock` runs on.
LOCK := $(UV) pip compile --quiet --generate-hashes --python-version 3.11 --python-platform x86_64-unknown-linux-gnu

.PHONY: demo check test bench gpu-wheels up flower clean lock upgrade

$(STAMP): pyproject.toml locks/core.txt locks/uv.txt locks/sync.sh
	PYTHON=$(PYTHON) bash locks/sync.sh $(VENV) locks/core.txt
	touch $@

demo: $(STAMP)  ## the whole farm on the embedded default: no servers needed
	$(VENV)/bin/voicefarm demo

# Lint, types, the layers of docs/architecture.md (import-linter) and the unit tier on every core:
# no servers, half a minute or so.
check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest tests/unit -n auto $(PYTEST_ARGS)

# Every tier, each in its own run (the API and farm tiers set the process's settings), then each
# engine's own suite in its environment. Every suite runs; the target fails if any failed.
test: check  ## real Redis, PostgreSQL, S3 (rclone), worker processes and both engine suites
	bash tests/services.sh
	bash workers/xtts/setup.sh
	bash workers/styletts2/setup.sh
	status=0; \
	$(PY) -m pytest tests/api $(PYTEST_ARGS) || status=1; \
	$(PY) -m pytest tests/deploy $(PYTEST_ARGS) || status=1; \
	$(PY) -m pytest tests/farm $(PYTEST_ARGS) || status=1; \
	workers/xtts/.venv/bin/python -m pytest workers/xtts/tests || status=1; \
	workers/styletts2/.venv/bin/python -m pytest workers/styletts2/tests || status=1; \
	exit $$status

bench: $(STAMP)
	bash tests/services.sh
	$(PY) -m bench
	$(PY) -m bench.metrics
	bash workers/xtts/setup.sh
	workers/xtts/.venv/bin/python -m bench.xtts
	workers/xtts/.venv/bin/python -m bench.xtts_batching

# What a lent GPU host (no package index there) lacks, as wheels in gpu-wheels/{core,xtts,styletts2}:
# it installs each group with pip --no-index --no-deps --target (bench/gpu_wheels.py says how).
gpu-wheels: $(STAMP)
	$(PY) -m bench.gpu_wheels

up: $(STAMP)
	$(VENV)/bin/voicefarm up

flower: $(STAMP)  ## Celery's dashboard; needs VOICEFARM_FLOWER_BASIC_AUTH=user:password
	$(VENV)/bin/voicefarm flower

# `make lock` after changing a dependency: what is already locked stays where it is.
# `make upgrade` re-resolves everything to the newest releases the inputs allow.
lock: $(STAMP)
	$(LOCK) $(UPGRADE) pyproject.toml --extra server --extra piper --extra google --extra ops --extra align --extra test -o locks/core.txt
	$(LOCK) pyproject.toml --extra server --extra piper --extra google --extra ops --extra align -c locks/core.txt -o locks/runtime.txt
	echo uv | $(LOCK) - -c locks/core.txt -o locks/uv.txt
	$(LOCK) $(UPGRADE) workers/xtts/requirements.in pyproject.toml --extra server -o locks/xtts.txt
	$(LOCK) $(UPGRADE) workers/styletts2/requirements.in pyproject.toml --extra server -o locks/styletts2.txt

upgrade:
	$(MAKE) lock UPGRADE=--upgrade

clean:
	rm -rf $(VENV) .voicefarm demo-output .pytest_cache
