# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv sandbox-build sandbox-up sandbox-down test unit integration sanity bench judge-bench reliability demo clean

venv: $(STAMP)

$(STAMP): requirements.txt test-requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r test-requirements.txt
	mkdir -p .collections/ansible_collections/canary
	ln -sfn ../../.. .collections/ansible_collections/canary/istio
	touch $(STAMP)

sandbox-build: venv
	$(PY) -m sandbox build

sandbox-up: sandbox-build
	$(PY) -m sandbox up --clusters $(or $(CLUSTERS),2)

sandbox-down:
	$(PY) -m sandbox down

# Everything: unit and integration tests on the real sandbox (started and stopped by the pytest
# session), then ansible-test sanity and ansible-lint. Integration tests never skip here.
test: sandbox-build
	CANARY_ISTIO_REQUIRE_SANDBOX=1 $(PY) -m pytest tests/unit tests/integration
	bash tests/run-sanity.sh

unit: venv
	$(PY) -m pytest tests/unit

integration: sandbox-build
	CANARY_ISTIO_REQUIRE_SANDBOX=1 $(PY) -m pytest tests/integration

sanity: venv
	bash tests/run-sanity.sh

# A canary release of bookinfo's reviews on the sandbox (builds and starts it when needed).
demo: sandbox-build
	$(PY) -m sandbox.demo

# Figures, not pass/fail: each bench writes bench/results/<name>.json; publish gathers them into
# bench/results.json and docs/performance.md.
bench: sandbox-build
	$(PY) -m bench.task_overhead
	$(PY) -m bench.api_requests
	$(PY) -m bench.analysis
	$(PY) -m bench.release_scale
	$(PY) -m bench.rollback
	$(PY) -m bench.publish

# How often the judge rolls back healthy canaries and how fast it catches regressions, with single
# rates and with confidence; figures in bench/results/judgment.json and docs/judgment.md.
judge-bench: venv
	$(PY) -m bench.judgment

# Faults, bad input and security on the sandbox; figures in tests/reliability/results.json and
# docs/reliability.md. Not part of `make test`'s pass/fail.
reliability: sandbox-build
	CANARY_ISTIO_REQUIRE_SANDBOX=1 $(PY) -m pytest tests/reliability

clean:
	-$(PY) -m sandbox down
	rm -rf $(VENV) .collections .pytest_cache
