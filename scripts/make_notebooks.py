"""Write notebooks/01_quickstart.ipynb, 02_subclass_module.ipynb and 03_margins_2d.ipynb (unexecuted).

python scripts/make_notebooks.py            # rewrites notebooks/
python scripts/make_notebooks.py OUT_DIR    # writes them to OUT_DIR instead (the drift test does)
"""

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]

QUICKSTART = [
    new_markdown_cell(
        "# Quickstart: long-tailed digits in a few lines\n\n"
        "Train the tuned routine of Shwartz-Ziv et al. (2023) on the embedded digits-LT data (scikit-learn's "
        "8x8 digits, imbalance ratio 10), then look at the per-class results. Everything runs on a CPU in "
        "well under a minute; no download. (`EPOCHS` is kept small here; the default experiment uses 30.)"
    ),
    new_code_cell(
        "from functools import partial\n\n"
        "import lightning.pytorch as pl\n"
        "import torch\n"
        "from lt_imbalance import ImbalancedClassifier\n"
        "from lt_imbalance.callbacks import SAM\n"
        "from lt_imbalance.data import DigitsLT\n"
        "from lt_imbalance.losses import CrossEntropy, JointSSL\n"
        "from lt_imbalance.training.optimization import LRSchedule\n\n"
        "EPOCHS = 5\n"
        "pl.seed_everything(0)\n"
        "data = DigitsLT(batch_size=32, imbalance_ratio=10, ssl_views=True)  # ssl_views: two SimCLR views per image\n"
        "print('training images per class:', data.class_counts)"
    ),
    new_markdown_cell(
        "The class counts are known before any training (the data module computes them on first use); the model takes them to derive its per-class label smoothing and the many / medium / few-shot groups."
    ),
    new_code_cell(
        "model = ImbalancedClassifier(\n"
        "    'digits_cnn', class_counts=data.class_counts, input_shape=data.input_shape,\n"
        "    loss=partial(CrossEntropy, label_smoothing=0.0, label_smoothing_tail=0.1),  # class-conditional label smoothing\n"
        "    ssl=JointSSL(weight=0.1),                                                    # Joint-SSL\n"
        "    optimizer=partial(torch.optim.SGD, lr=0.05, momentum=0.9, weight_decay=5e-4),\n"
        "    lr_schedule=LRSchedule('cosine', warmup_epochs=1),\n"
        ")\n"
        "# the module brings the run's results table, per-class figures, run metadata and a resumable last.ckpt itself\n"
        "trainer = pl.Trainer(max_epochs=EPOCHS, callbacks=[SAM(rho=0.05, gamma=1.0)],\n"
        "                     default_root_dir='runs/notebook_quickstart', enable_progress_bar=False, enable_model_summary=False)\n"
        "trainer.fit(model, data)\n"
        "trainer.test(model, data, verbose=False);"
    ),
    new_markdown_cell(
        "## Results table and per-class figure\n\nThe same table is saved as `results_test.md` in the run directory; the figure shows accuracy against training-class count (log scale) and the confusion matrix."
    ),
    new_code_cell(
        "from pathlib import Path\n"
        "from IPython.display import Image, Markdown, display\n\n"
        "run = Path(trainer.log_dir)\n"
        "display(Markdown((run / 'results_test.md').read_text()))\n"
        "display(Image(filename=str(run / 'figures' / 'test_per_class.png')))\n"
        "metrics = model.evaluations['test'].metrics\n"
        "print({k: round(v, 3) for k, v in metrics.items()})"
    ),
    new_markdown_cell(
        "## Next\n\n"
        "- `lt-imbalance fit --config configs/digits_lt.yaml` runs the same from the command line;\n"
        "- `lt-imbalance sweep configs/experiments/digits_lt/*.yaml --seeds 0 1 2` compares ERM, the tuned routine and the specialised baselines;\n"
        "- `02_subclass_module.ipynb` adds a loss term of your own."
    ),
]

SUBCLASS = [
    new_markdown_cell(
        "# Subclassing the module: a loss of your own\n\n"
        "The module builds its parts in `configure_*` hooks (`configure_backbone`, `configure_head`, `configure_loss`, "
        "`configure_metrics`). Override one and everything else keeps working: SAM-A evaluates the module's "
        "`forward_loss` at the perturbed weights, so it sees the new loss; the label-smoothing schedule scales the "
        "loss's smoothing, which a `CrossEntropy` subclass inherits. (The same loss also works without subclassing: "
        "`model.init_args.loss: {class_path: my_losses.LogitPenaltyLoss}` in a config.)"
    ),
    new_code_cell(
        "from functools import partial\n\n"
        "import lightning.pytorch as pl\n"
        "import torch\n"
        "from lt_imbalance import ImbalancedClassifier\n"
        "from lt_imbalance.callbacks import SAM, LabelSmoothingSchedule\n"
        "from lt_imbalance.data import DigitsLT\n"
        "from lt_imbalance.losses import CrossEntropy\n\n\n"
        "class LogitPenaltyLoss(CrossEntropy):\n"
        '    """Per sample: the (class-conditionally smoothed) cross-entropy + beta * |z|^2, a logit regulariser."""\n\n'
        "    def __init__(self, class_counts, beta: float = 1e-3, **smoothing):\n"
        "        super().__init__(class_counts, **smoothing)\n"
        "        self.beta, self.evaluations = beta, 0\n\n"
        "    def forward(self, logits, targets):\n"
        "        self.evaluations += 1\n"
        "        return super().forward(logits, targets) + self.beta * logits.pow(2).sum(1)\n\n\n"
        "class LogitPenaltyClassifier(ImbalancedClassifier):\n"
        "    def configure_loss(self):\n"
        "        return LogitPenaltyLoss(self.class_counts, beta=1e-3, label_smoothing=0.0, label_smoothing_tail=0.1)"
    ),
    new_code_cell(
        "pl.seed_everything(0)\n"
        "data = DigitsLT(batch_size=32)\n"
        "model = LogitPenaltyClassifier('digits_cnn', class_counts=data.class_counts, input_shape=data.input_shape,\n"
        "                               optimizer=partial(torch.optim.SGD, lr=0.05, momentum=0.9))\n"
        "schedule = LabelSmoothingSchedule('linear', ramp_epochs=4)\n"
        "trainer = pl.Trainer(max_epochs=4, callbacks=[SAM(rho=0.05, gamma=1.0), schedule], logger=False, default_root_dir='runs/notebook_subclass',\n"
        "                     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)\n"
        "trainer.fit(model, data)"
    ),
    new_markdown_cell(
        "SAM-A ran: every optimisation step evaluated the loss twice (the ascent pass and the descent pass at the perturbed weights), and both passes went through the new loss. The schedule set the smoothing scale each epoch (0, 0.25, 0.5, 0.75 for a 4-epoch linear ramp)."
    ),
    new_code_cell(
        "steps = trainer.global_step\n"
        "print('optimisation steps:', steps, '| loss evaluations:', model.criterion.evaluations)\n"
        "print('smoothing scale in the last epoch:', model.criterion.smoothing_scale)\n"
        "assert model.criterion.evaluations == 2 * steps\n"
        "assert model.criterion.smoothing_scale == 0.75"
    ),
]


MARGINS = [
    new_markdown_cell(
        "# Decision boundaries on an imbalanced 2-D problem\n\n"
        "Three Gaussian blobs, the third 100x rarer (300 / 300 / 3 training points). The same MLP is trained with "
        "ERM, SAM-A at two radii and class-conditional label smoothing, through `ImbalancedClassifier` and the `SAM` "
        "callback, and each model's decision regions are drawn. The paper (section 5.3) says SAM-A pulls the boundary "
        "away from minority samples; look at the size of the red (rare) region. `EPOCHS` is small here to stay fast; "
        "the README figure uses 60."
    ),
    new_code_cell(
        "from pathlib import Path\n\n"
        "from IPython.display import Image, display\n"
        "from lt_imbalance.demos.margins_2d import margin_demo\n\n"
        "EPOCHS = 4\n"
        "figure = Path('runs/notebook_margins/margins_2d.png')  # under the run folder, like the other notebooks' outputs\n"
        "scores = margin_demo(figure, epochs=EPOCHS)\n"
        "print({name: round(100 * acc, 1) for name, acc in scores.items()})\n"
        "display(Image(filename=str(figure)))"
    ),
    new_markdown_cell(
        "## On your own data\n\n"
        "Add `OverfittingMonitor` and `MarginStatistics` to `trainer.callbacks`: TensorBoard then shows, per class, the "
        "gap between accuracy on (un-augmented) training images and on validation images, and the distribution of logit "
        "margins. A large gap and small or negative margins on the few-shot classes is the overfitting the paper describes."
    ),
]


def main(out: Path = ROOT / "notebooks") -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, cells in (("01_quickstart.ipynb", QUICKSTART), ("02_subclass_module.ipynb", SUBCLASS), ("03_margins_2d.ipynb", MARGINS)):
        nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
        for i, cell in enumerate(nb.cells):  # stable ids, so that regenerating gives identical files
            cell["id"] = f"cell-{i}"
        nbformat.write(nb, out / name)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "notebooks")
