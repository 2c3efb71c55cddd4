"""Every shell block of the README runs as written, so the README cannot drift from the product.

Blocks are the README's ```bash fences (also those indented inside lists). A block that needs what
a developer machine lacks carries a marker on the line before it, ``<!-- readme: not run: <why> -->``
(a GPU, a dataset download, a cluster, a database server); every other block runs, in order, with
``bash -e`` in one scratch folder that holds the repository's ``configs/`` and ``scripts/`` and the
inputs the README asks the reader to bring (``my_images/``, ``my.yaml``, ``my_prior.csv``), as a user following the
README would. Training is shortened by an ``lt-imbalance`` on the PATH that adds overrides to the
real command (``fit``: one epoch of two batches; ``tune``: two trials of two epochs and one seed;
``sweep``: one seed, one epoch); nothing else is changed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a whole-product scenario: `make test-slow`

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"<!-- readme: not run: (.+?) -->")
FENCE = re.compile(r"^( *)```bash\n(.*?)^\1```", re.M | re.S)

SHIM = """#!{python}
import os, sys
args = sys.argv[1:]
extra = {{
    "fit": ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2"],
    "tune": ["--n_trials", "2", "--seeds", "0", "--trainer.max_epochs", "2"],
    "sweep": ["--seeds", "0", "--extra=--trainer.max_epochs 1 --trainer.limit_train_batches 2"],
}}.get(args[0] if args else "", [])
os.execv({python!r}, [{python!r}, "-m", "lt_imbalance", *args, *extra])
"""


def readme_blocks() -> list[tuple[int, str, str | None]]:
    """``(line, commands, reason not run or None)`` for every bash block of the README."""
    text = (ROOT / "README.md").read_text()
    blocks = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip().splitlines()
        marker = MARKER.search(before[-1]) if before else None
        line = text[: match.start()].count("\n") + 1
        blocks.append((line, textwrap.dedent(match.group(2)), marker.group(1) if marker else None))
    return blocks


def _scratch(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    work = tmp_path / "work"
    work.mkdir()
    for name in ("configs", "scripts", "cluster"):
        (work / name).symlink_to(ROOT / name)
    shutil.copy(ROOT / "configs" / "digits_lt_erm.yaml", work / "my.yaml")  # the README's "my.yaml": a config of one's own
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    (work / "my_images").mkdir()
    for i in range(6):  # the README's "my_images/": a few images to predict
        Image.fromarray((digits.images[i] * 16).clip(0, 255).astype("uint8"), mode="L").save(work / "my_images" / f"{i}.png")
    shares = [0.3, 0.2, 0.15, 0.1, 0.08, 0.06, 0.05, 0.03, 0.01, 0.02]  # the README's "my_prior.csv": a mix of one's own
    (work / "my_prior.csv").write_text("".join(f"{digit},{share}\n" for digit, share in enumerate(shares)))
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "lt-imbalance").write_text(SHIM.format(python=sys.executable))
    (shim / "lt-imbalance").chmod(0o755)
    env = {**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true"}
    return work, env


def test_every_block_is_run_or_says_why_not():
    blocks = readme_blocks()
    assert len(blocks) >= 8
    for line, commands, reason in blocks:
        assert reason is None or len(reason) > 10, f"README line {line}: say what the block needs"
        assert commands.strip(), f"README line {line}: an empty block"


@pytest.mark.long_running
def test_the_readme_blocks_run_as_written(tmp_path):
    work, env = _scratch(tmp_path)
    # the README's first block trains the default experiment with `make train`; its command, shortened:
    subprocess.run(["lt-imbalance", "fit", "--config", "configs/digits_lt.yaml"], cwd=work, env=env, check=True, capture_output=True)
    ran = 0
    for line, commands, reason in readme_blocks():
        if reason is not None:
            continue
        out = subprocess.run(["bash", "-e", "-c", commands], cwd=work, env=env, capture_output=True, text=True, timeout=1200)
        assert out.returncode == 0, f"README block at line {line} failed:\n{commands}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        ran += 1
    assert ran >= 6
    left_over = sorted(p.name for p in work.iterdir())
    assert set(left_over) <= {
        "configs",
        "scripts",
        "cluster",
        "my.yaml",
        "my_images",
        "runs",
        "predictions.csv",
        "model.onnx",
        "model.onnx.json",
        "my_prior.csv",
        "predictions_here.csv",
        "predictions_est.csv",
        "predictions_est.csv.prior.csv",
        "model_clinic.onnx",
        "model_clinic.onnx.json",
    }, left_over
