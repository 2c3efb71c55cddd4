#!/usr/bin/env bash
# Prepare .gpu-wheels/: the wheels that `make gpu-check` installs on a GPU machine that has torch,
# Lightning, torchvision, torchmetrics, tensorboard, numpy, scikit-learn and matplotlib but not the
# rest of this project's needs, and no network (the lent H100 / H200 machines: Python 3.12, x86-64).
# Run it here, where the package index is reachable:
#   bash scripts/gpu_wheels.sh      (or: make gpu-wheels)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
rm -rf .gpu-wheels
# pure-Python wheels: the CLI and Joint-SSL (lightly, jsonargparse), the tuner (optuna and its needs)
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation py -d .gpu-wheels \
  "lightly==1.6.0" "jsonargparse==4.53.0" "docstring-parser==0.18.0" "typeshed-client==2.15.0" \
  "optuna==5.0.0" "alembic==1.20.1" "mako==1.4.3" "colorlog==6.12.0"
# SQLAlchemy for the tuner's storage, built for CPython 3.12 on x86-64
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpu-wheels "sqlalchemy==2.1.9"
ls -l .gpu-wheels
