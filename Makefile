# Two commands do everything on a fresh machine:
#   make train   install if needed, then train the default experiment (digits-LT)
#   make test    install if needed, then lint and run the test suite (make test-slow: the whole-product scenarios)
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
# torch / torchvision pinned together in constraints.txt: other pairs break torchvision's C++ ops here
EXTRAS ?= dev,tabular,tune,export,timm,mlflow,wandb
CONFIG ?= configs/digits_lt.yaml
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: install train test test-slow postgres lint format bench gpu-wheels gpu-check clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt torch torchvision
	$(PY) -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	touch $(STAMP)

train: install
	$(VENV)/bin/lt-imbalance fit --config $(CONFIG)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# two tests at a time on the two cores, one thread each. `make test` is the developer's loop (every
# unit, contract, exactness and command test); `make test-slow` runs the whole-product scenarios
# (fresh-venv install, real-data training, DDP / torchrun / SIGKILL resume, notebooks, tuner studies).
# CI (.ci/run) runs both.
PYTEST = OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --maxschedchunk 1 --durations=15
test: lint
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

test-slow: install postgres
	$(PYTEST) -m slow $(PYTEST_ARGS)

# the PostgreSQL server the shared-study test starts (Debian's package; needs root, else that test is skipped)
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "make: postgresql is not installed and this is not root: the PostgreSQL test will be skipped"; fi

# throughput of the framework vs a hand-written PyTorch loop (GPU if present, else a CPU-sized run)
bench: install
	$(PY) scripts/benchmark.py --out runs/bench/results.json $(BENCH_ARGS)

# the GPU path verified and timed in one call (scripts/gpu_check.py). Runs with the machine's own
# python3 (no .venv: GPU machines have torch and Lightning, no network); the packages they lack come
# from .gpu-wheels/, prepared beforehand by `make gpu-wheels` where the package index is reachable.
GPU_SITE ?= /tmp/lt-imbalance-site
gpu-wheels:
	bash scripts/gpu_wheels.sh

gpu-check:
	@if [ -d .gpu-wheels ]; then $(PYTHON) -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $(GPU_SITE) .gpu-wheels/*.whl; fi
	PYTHONPATH=$(CURDIR):$(GPU_SITE):$$PYTHONPATH $(PYTHON) scripts/gpu_check.py $(GPU_CHECK_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
