# Every target runs in .venv, which `make requirements` builds from the pinned files.
.DEFAULT_GOAL := help
SHELL := /bin/bash

# The newest CPython >= 3.11 on the machine (pyenv), else python3.
PYTHON ?= $(shell ls -d $$HOME/.pyenv/versions/3.1[1-9]* 2>/dev/null | sort -V | tail -1 | sed 's|$$|/bin/python|' | grep . || command -v python3)
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements/dev.txt setup.cfg pyproject.toml | sha1sum | cut -c1-12)
DATABASES ?= sqlite postgres mysql
PYTEST_ARGS ?=

.PHONY: help requirements requirements-django42 stack-up stack-status stack-down quality format validate test test-unit demo chaos bench docs upgrade clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

requirements: $(STAMP) ## build .venv with the package (editable) and the pinned test tools

$(STAMP): requirements/dev.txt setup.cfg pyproject.toml
	bash requirements/system-packages.sh
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -r requirements/dev.txt
	$(VPY) -m pip install -q --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

stack-up: requirements ## start Kafka, the schema registry, PostgreSQL, MariaDB and Redis on 127.0.0.1
	PYTHON=$(abspath $(VPY)) bash stack/stack.sh up

stack-status: ## say which stack services run
	bash stack/stack.sh status

stack-down: ## stop every process stack-up started
	bash stack/stack.sh down

quality: requirements ## lint and check formatting with ruff (configured in pyproject.toml); no service needed
	$(VPY) -m ruff check .
	$(VPY) -m ruff format --check .

format: requirements ## apply ruff's formatting and safe fixes (import order among them)
	$(VPY) -m ruff check --fix .
	$(VPY) -m ruff format .

validate: quality test ## quality, then the whole suite: what CI runs

test: requirements requirements-django42 docs stack-up ## docs (warnings as errors), then the suite on SQLite, PostgreSQL and MariaDB (Django 5.2), on SQLite with Django 4.2, and the packaging tests once
	@failed=""; started=$${CI_STARTED_AT:-$$(date +%s)}; for db in $(DATABASES); do \
	    echo "==================== tests on $$db, Django 5.2 (at $$(( $$(date +%s) - started ))s) ===================="; \
	    OUTBOX_TEST_DB=$$db $(VPY) -m pytest -m "not packaging" $(PYTEST_ARGS) || failed="$$failed $$db"; \
	done; \
	echo "==================== tests on sqlite, Django 4.2 (at $$(( $$(date +%s) - started ))s) ===================="; \
	OUTBOX_TEST_DB=sqlite $(VENV42)/bin/python -m pytest -m "not packaging" $(PYTEST_ARGS) || failed="$$failed sqlite/django4.2"; \
	echo "==================== packaging: sdist, wheel, fresh virtualenv (at $$(( $$(date +%s) - started ))s) ===================="; \
	OUTBOX_TEST_DB=sqlite $(VPY) -m pytest -m packaging $(PYTEST_ARGS) || failed="$$failed packaging"; \
	if [ -n "$$failed" ]; then echo "FAILED on:$$failed"; exit 1; fi; echo "all databases passed"

# OUTBOX_TEST_UNIT=1 (tests/conftest.py, tests/settings.py): SQLite, every test marked kafka or redis
# left out, every service URL a closed port.
test-unit: requirements ## the tests that need no service, on SQLite, in about a minute; never touches the stack
	OUTBOX_TEST_DB=sqlite OUTBOX_TEST_UNIT=1 $(VPY) -m pytest $(PYTEST_ARGS)

# Django 4.2 LTS, the oldest supported, in a venv of its own.
VENV42 := .venv-django42
STAMP42 := $(VENV42)/.installed-$(shell cat requirements/django42.txt setup.cfg pyproject.toml | sha1sum | cut -c1-12)
requirements-django42: $(STAMP42)
$(STAMP42): requirements/django42.txt setup.cfg pyproject.toml
	bash requirements/system-packages.sh
	test -x $(VENV42)/bin/python || $(PYTHON) -m venv $(VENV42)
	$(VENV42)/bin/python -m pip install -q --upgrade pip
	$(VENV42)/bin/python -m pip install -q -r requirements/django42.txt
	$(VENV42)/bin/python -m pip install -q --no-deps -e .
	rm -f $(VENV42)/.installed-* && touch $@

DEMO_ARGS ?=
demo: requirements stack-up ## the end-to-end demo on SQLite against the local stack, with a summary (DEMO_ARGS="--sink redis": through Redis Streams)
	$(VPY) demo/manage.py run_demo $(DEMO_ARGS)

BENCH_ARGS ?=
# The write path's floor (issue 15) is measured on every database; the other benchmarks need PostgreSQL.
BENCH_FLOOR_DATABASES ?= mysql sqlite
bench: requirements stack-up ## benchmarks side by side (edx-event-bus-kafka, django-jaiminho): bench-report/report.txt and bench.png, then the write path on MariaDB and SQLite (bench-report/<database>/)
	$(VPY) -m pip install -q -r requirements/bench.txt
	$(VPY) -m bench.run $(BENCH_ARGS)
	for db in $(BENCH_FLOOR_DATABASES); do \
	    $(VPY) -m bench.run --only write_path --database $$db --out bench-report/$$db $(filter --quick,$(BENCH_ARGS)) || exit 1; \
	done

CHAOS_SEEDS ?= 1 2 3
CHAOS_SINKS ?= kafka redis
CHAOS_ARGS ?= --transactions 1500 --duration 45 --faults 8 --kills 20
chaos: requirements stack-up ## seeded kill/restart runs on PostgreSQL and MariaDB, to Kafka and to Redis Streams; fails on any loss, phantom or reorder, and on any duplicate to Kafka (exactly-once)
	@mkdir -p bench-report; failed=""; for sink in $(CHAOS_SINKS); do for db in postgres mysql; do for seed in $(CHAOS_SEEDS); do \
	    $(VPY) -m chaos.run --db $$db --seed $$seed --sink $$sink $(CHAOS_ARGS) --report bench-report/chaos.jsonl \
	        2> >(grep -v '^%' >&2) || failed="$$failed $$sink/$$db/$$seed"; \
	done; done; done; \
	if [ -n "$$failed" ]; then echo "chaos FAILED:$$failed"; exit 1; fi; echo "chaos passed: lost 0, phantom 0, reorders 0; duplicates 0 to Kafka"

docs: requirements ## build the Sphinx docs, warnings as errors
	$(VPY) -m sphinx -W --keep-going -q -b html docs docs/_build/html

upgrade: ## re-pin requirements/dev.txt and requirements/django42.txt from their .in files
	for lock in dev django42; do \
	    rm -rf /tmp/outbox-upgrade && $(PYTHON) -m venv /tmp/outbox-upgrade && \
	    /tmp/outbox-upgrade/bin/pip install -q -r requirements/$$lock.in && \
	    { echo "# Pinned by 'make upgrade' from requirements/$$lock.in; installed exactly, so every install repeats."; \
	      /tmp/outbox-upgrade/bin/pip freeze --exclude-editable; } > requirements/$$lock.txt || exit 1; \
	done

clean: ## remove build and test leftovers (not .venv, not the stack)
	rm -rf build dist *.egg-info docs/_build .pytest_cache
