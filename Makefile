# fraudstream developer entry points. See README.md for what each installs and how long it takes.
#   make bootstrap  venv + python deps, postgresql/java/maven (apt, as root), jars (Maven Central)
#   make up         start Kafka, Postgres and the Flink standalone cluster (idempotent)
#   make down       stop what `make up` started
#   make test       bootstrap, up, the whole test suite; stops the stack again if it started it
#   make demo       bootstrap, then `fraudstream demo`
SHELL := /bin/bash
VENV := .venv
FS := $(VENV)/bin/fraudstream

.PHONY: bootstrap up down status test demo lint

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

demo: bootstrap
	$(FS) demo
