# Two commands do everything on a fresh machine:
#   make train   install if needed, then train the default experiment (digits-LT)
#   make test    install if needed, then run the test suite
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
# torch / torchvision pinned together: other pairs break torchvision's C++ ops on this platform
TORCH   = torch==2.14.1 torchvision==0.29.1
CONFIG ?= configs/digits_lt.yaml
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: install train test test-slow bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

train: install
	$(VENV)/bin/lt-imbalance fit --config $(CONFIG)

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

# throughput of the framework vs a hand-written PyTorch loop (GPU if present, else a CPU-sized run)
bench: install
	$(PY) -m lt_imbalance.bench --out runs/bench/results.json $(BENCH_ARGS)

clean:
	rm -rf $(VENV) runs .pytest_cache
