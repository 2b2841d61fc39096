# blipee-monitor: two commands for users, `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= config.toml

.PHONY: run test lint typecheck pytest system-deps bench clean image

# The virtual environment is rebuilt whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(STAMP)
	$(BIN)/blipee-monitor run -c $(CONFIG)

# Debian packages the tests and benchmarks drive as real peers (promtool, Prometheus,
# Alertmanager, blackbox_exporter, nginx, wrk, Node.js and npm). Installed only when missing.
system-deps:
	./scripts/install-system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	./scripts/run-pytest.sh $(BIN)/python

test: system-deps $(STAMP) lint typecheck pytest

bench: system-deps $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# The container image (Dockerfile), with whichever of podman, buildah or docker is installed; without
# a reachable registry, on a local Debian base made by mmdebstrap (see docs/deploy.md).
IMAGE ?= blipee-monitor:0.1.0
image:
	IMAGE=$(IMAGE) ./scripts/build-image.sh
