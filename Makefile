# One virtualenv holds the core, the Piper engine and the test tools; heavy engines have their
# own environments under workers/.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Tests and benchmarks run the venv's commands (voicefarm, rclone) without it being activated.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: demo test bench up flower clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[piper,google,ops,test]'
	touch $@

demo: $(STAMP)  ## the whole farm on the embedded default: no servers needed
	$(VENV)/bin/voicefarm demo

test: $(STAMP)  ## real Redis, PostgreSQL, S3 (rclone) and worker processes
	bash tests/services.sh
	bash workers/xtts/setup.sh
	bash workers/styletts2/setup.sh
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	bash tests/services.sh
	$(PY) -m bench
	bash workers/xtts/setup.sh
	workers/xtts/.venv/bin/python -m bench.xtts

up: $(STAMP)
	$(VENV)/bin/voicefarm up

flower: $(STAMP)  ## Celery's dashboard; needs VOICEFARM_FLOWER_BASIC_AUTH=user:password
	$(VENV)/bin/voicefarm flower

clean:
	rm -rf $(VENV) .voicefarm demo-output .pytest_cache
