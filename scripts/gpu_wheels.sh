#!/usr/bin/env bash
# Prepare .gpu-wheels/: the wheels that `make gpu-check` installs on a GPU machine that has torch,
# Lightning, torchvision, torchmetrics, tensorboard, numpy, scikit-learn and matplotlib but not the
# rest of this project's needs, and no network (the lent H100 / H200 machines: Python 3.12).
# All are pure-Python wheels. Run it here, where the package index is reachable:
#   bash scripts/gpu_wheels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
rm -rf .gpu-wheels
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation py -d .gpu-wheels \
  "lightly==1.6.0" "jsonargparse==4.53.0" "docstring-parser==0.18.0" "typeshed-client==2.15.0"
ls -l .gpu-wheels
