# The two commands of the README: `make demo` (the main job, embedded defaults, real data) and
# `make test` (installs and starts the real services, runs lint and every test).
VENV := .venv/bin
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: demo test install install-services lint bench clean

demo: install
	$(VENV)/aimass demo $(ARGS)

test: install-services
	$(VENV)/ruff check .
	$(VENV)/python -m pytest $(ARGS)

install:
	@bash ops/install.sh

install-services:
	@bash ops/install.sh services

lint: install
	$(VENV)/ruff check .

bench: install-services
	$(VENV)/python -m ops.bench.kafka --json bench-results/kafka.json

clean:
	-$(VENV)/aimass down
	rm -rf .aimass/demo bench-results
