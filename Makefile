# The two commands of the README: `make demo` (the main job, embedded defaults, real data) and
# `make test` (installs and starts the real services, runs lint and every test).
PY := .venv/bin/python

.PHONY: demo test unit install install-services lint bench clean

demo: install
	$(PY) -m streams.cli demo $(ARGS)

test: install-services
	$(PY) -m ruff check .
	$(PY) -m pytest $(ARGS)

# the tests that need no service (no Kafka, ClickHouse or databases): a couple of minutes
unit: install
	$(PY) -m ruff check .
	$(PY) -m pytest -m "not services" $(ARGS)

install:
	@bash ops/install.sh

install-services:
	@bash ops/install.sh services

lint: install
	$(PY) -m ruff check .

bench: install-services
	$(PY) -m ops.bench.kafka --json bench-results/kafka.json

clean:
	-$(PY) -m streams.cli down
	rm -rf .aimass/demo bench-results
