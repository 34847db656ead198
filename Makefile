# fraudstream developer entry points. See README.md for what each installs and how long it takes.
#   make bootstrap  venv + python deps, postgresql/java/maven (apt, as root), jars (Maven Central)
#   make up         start Kafka, Postgres and the Flink standalone cluster (idempotent)
#   make down       stop what `make up` started
#   make test       bootstrap, up, ruff + the whole test suite; stops the stack again if it started it
#   make unit       ruff + tests/unit: no stack, under a minute (bootstraps only a missing venv)
#   make pipeline   tests/pipeline: the real job graph on a MiniCluster and real training runs, no stack, ~55 s
#   make demo       bootstrap, then `fraudstream demo`
SHELL := /bin/bash
VENV := .venv
FS := $(VENV)/bin/fraudstream

# Tests and tools write bytecode even where the environment says not to (some containers set
# PYTHONDONTWRITEBYTECODE=1): without it every pytest process compiled and assertion-rewrote
# the whole tree again, 10 of the 26 s it took to collect tests/unit. __pycache__ is ignored.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: bootstrap up down status test unit pipeline demo lint

bootstrap:
	bash deploy/local/bootstrap.sh

up: bootstrap
	$(FS) up --flink-cluster

down:
	$(FS) down

status:
	$(FS) status

test: bootstrap
	bash deploy/local/run_tests.sh

lint:
	$(VENV)/bin/ruff check .

# The fast tiers: no Kafka, Postgres or Flink cluster. `make unit` is the loop between edits:
# property tests search a fifth of their examples there (tests/property_settings.py); `make
# test` runs them at full strength. `--dist loadscope` keeps a module on one worker, so its
# module fixtures (trained models, generated data) are built once, not once per worker.
$(VENV)/bin/pytest:
	bash deploy/local/bootstrap.sh

unit: $(VENV)/bin/pytest lint
	FRAUDSTREAM_QUICK_PROPERTIES=1 $(VENV)/bin/pytest -q -p no:cacheprovider -n 2 --dist loadscope tests/unit

pipeline: $(VENV)/bin/pytest
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/pipeline

demo: bootstrap
	$(FS) demo
