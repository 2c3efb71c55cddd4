"""Layering: the pure pieces import without Lightning; nothing switches matplotlib's backend."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PURE = (
    "lt_imbalance",
    "lt_imbalance.losses",
    "lt_imbalance.models",
    "lt_imbalance.metrics",
    "lt_imbalance.plotting",
    "lt_imbalance.training.sam_perturbation",
    "lt_imbalance.training.batch_mixing",
    "lt_imbalance.training.optimization",
    "lt_imbalance.training.buffers",
    "lt_imbalance.data.splits",
    "lt_imbalance.data.parts",
    "lt_imbalance.data.augment",
    "lt_imbalance.data.device_augment",
    "lt_imbalance.data.samplers",
    "lt_imbalance.data.datasets",
    "lt_imbalance.data.loading_mode",
    "lt_imbalance.errors",
    "lt_imbalance.output_files",
    "lt_imbalance.inputs",
    "lt_imbalance.calibration",
    "lt_imbalance.label_shift",
    "lt_imbalance.model_prior",
    "lt_imbalance.post_processor",
    "lt_imbalance.stage_metrics",
    "lt_imbalance.training.nonfinite",
    "lt_imbalance.cli",
    "lt_imbalance.commands",
)


@pytest.fixture(scope="module")
def facts(tmp_path_factory) -> dict:
    """One fresh interpreter: import the pure pieces, draw and save a figure, then import the command."""
    figure = tmp_path_factory.mktemp("figure") / "fig.png"
    code = (
        "import json, sys, matplotlib, torch\n"
        "calls = []\n"
        "matplotlib.use = lambda *a, **k: calls.append(repr(a))\n"
        "from lt_imbalance.plotting import per_class_figure, save\n"
        f"save(per_class_figure([0.5, 1.0], [10, 1], torch.eye(2), 't'), {str(figure)!r})\n"
        "pyplot = 'matplotlib.pyplot' in sys.modules\n"  # (torchmetrics and Lightning import it themselves)
        f"for name in {PURE!r}:\n"
        "    __import__(name)\n"
        "lightning = sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning'))\n"
        "import lt_imbalance.commands.lightning_cli, lt_imbalance.demos.margins_2d, lt_imbalance.sweep\n"
        "tabular = sorted(m for m in ('pandas', 'sklearn', 'pyarrow') if m in sys.modules)\n"
        "print(json.dumps({'lightning': lightning, 'pyplot': pyplot, 'use_calls': calls, 'tabular': tabular}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=300).stdout
    return {**json.loads(out.strip().splitlines()[-1]), "figure_bytes": figure.stat().st_size}


def test_pure_pieces_import_without_lightning(facts):
    assert facts["lightning"] == []


def test_plotting_needs_no_pyplot_and_nothing_switches_the_backend(facts):
    assert facts["pyplot"] is False and facts["use_calls"] == [] and facts["figure_bytes"] > 1000


def test_an_image_run_does_not_import_the_tabular_stack(facts):
    assert facts["tabular"] == []
