# fraudstream developer entry points. See README.md for what each installs and how long it takes.
#   make bootstrap  venv + python deps, postgresql/java/maven (apt, as root), jars (Maven Central)
#   make up         start Kafka, Postgres and the Flink standalone cluster (idempotent)
#   make down       stop what `make up` started
#   make test       bootstrap, up, ruff + the whole test suite; stops the stack again if it started it
#   make unit       ruff + tests/unit: no stack, about 1-2 min (bootstraps only a missing venv)
#   make pipeline   tests/pipeline: the real job graph on an in-process MiniCluster, no stack, ~20-30 s
#   make demo       bootstrap, then `fraudstream demo`
SHELL := /bin/bash
VENV := .venv
FS := $(VENV)/bin/fraudstream

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

# The fast tiers: no Kafka, Postgres or Flink cluster. Two targets, not one: tests/unit alone
# takes over a minute on this machine kind (`time make unit`, README "Tests").
$(VENV)/bin/pytest:
	bash deploy/local/bootstrap.sh

unit: $(VENV)/bin/pytest lint
	$(VENV)/bin/pytest -q -p no:cacheprovider -n 2 tests/unit

pipeline: $(VENV)/bin/pytest
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/pipeline

demo: bootstrap
	$(FS) demo
