"""`pip install .` into a fresh virtual environment (reusing this environment's installed
dependencies, so no torch download) gives a working command with its configs inside the package."""

import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a whole-product scenario: `make test-slow`

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.long_running
def test_pip_install_then_fit_a_packaged_config(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    # this environment's packages (torch, Lightning, ...) without its editable install of lt_imbalance:
    # a plain path entry, whose own .pth files (the editable finder) are not processed
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(ROOT)], capture_output=True, text=True, timeout=900
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    work = tmp_path / "work"
    work.mkdir()
    command = str(venv / "bin" / "lt-imbalance")
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import lt_imbalance, sys; print(lt_imbalance.__file__)"],
        cwd=work,
        capture_output=True,
        text=True,
    )
    assert str(site) in where.stdout, where.stdout + where.stderr  # the installed copy, not the checkout
    listed = subprocess.run([command, "configs"], cwd=work, capture_output=True, text=True, timeout=300)
    assert "digits_lt.yaml" in listed.stdout and "trainer/ddp_1node.yaml" in listed.stdout
    subprocess.run([command, "configs", "copy", "digits_lt_erm.yaml", "mine.yaml"], cwd=work, check=True, timeout=300)
    again = subprocess.run(
        [command, "configs", "copy", "digits_lt_erm.yaml", "mine.yaml"], cwd=work, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 2 and "exists" in again.stderr  # nothing is overwritten
    fit = subprocess.run(
        [command, "fit", "--config", "mine.yaml", "--trainer.fast_dev_run", "true", "--trainer.default_root_dir", "runs"],
        cwd=work, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stdout[-2000:] + fit.stderr[-2000:]
