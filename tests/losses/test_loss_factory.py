"""``model.init_args.loss``: short names, and a user's own loss by class_path with no change to the module."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from lt_imbalance.commands.lightning_cli import build_cli
from lt_imbalance.losses import LOSSES, BalancedSoftmaxLoss, CrossEntropy, FocalLoss, LDAMLoss, build_loss

ROOT = Path(__file__).resolve().parents[2]

USER_LOSS = '''
import torch.nn.functional as F
from torch import nn


class SquaredHingeLoss(nn.Module):
    """A loss of the user's own: per sample, the squared multi-class hinge on the logits."""

    def __init__(self, class_counts, margin: float = 1.0):
        super().__init__()
        self.margin, self.calls = margin, 0

    def forward(self, logits, targets):
        self.calls += 1
        true = logits.gather(1, targets[:, None])
        return F.relu(self.margin + logits - true).pow(2).sum(1) - self.margin**2
'''


def test_short_names_build_the_loss_modules():
    counts = [50, 5, 1]
    assert type(build_loss("ce", counts)) is CrossEntropy and type(build_loss("focal", counts)) is FocalLoss
    assert type(build_loss("ldam", counts)) is LDAMLoss and type(build_loss("balanced_softmax", counts)) is BalancedSoftmaxLoss
    assert set(LOSSES) == {"ce", "focal", "ldam", "logit_adjusted", "balanced_softmax"}
    with pytest.raises(ValueError, match="unknown loss 'cb'; choose one of ce, focal, .*class_path"):
        build_loss("cb", counts)


def test_a_users_loss_is_one_file_and_one_line_of_yaml(tmp_path, monkeypatch):
    (tmp_path / "my_losses.py").write_text(USER_LOSS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(ROOT)
    cfg = yaml.safe_load((ROOT / "configs" / "digits_lt_erm.yaml").read_text())
    cfg["model"]["init_args"]["loss"] = {"class_path": "my_losses.SquaredHingeLoss", "init_args": {"margin": 0.5}}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    cli = build_cli(
        ["fit", "--config", str(tmp_path / "cfg.yaml"), "--trainer.fast_dev_run", "true", "--trainer.default_root_dir", str(tmp_path)]
    )
    loss = cli.model.criterion
    assert type(loss).__name__ == "SquaredHingeLoss" and loss.margin == 0.5 and loss.calls >= 1
    logits, y = torch.randn(3, 10), torch.tensor([0, 4, 9])
    expected = F.relu(0.5 + logits - logits.gather(1, y[:, None])).pow(2).sum(1) - 0.25
    torch.testing.assert_close(cli.model.compute_loss(logits, y), expected.mean())


def test_a_loss_that_reduces_is_refused_with_the_fix():
    from lt_imbalance import ImbalancedClassifier

    model = ImbalancedClassifier("digits_cnn", class_counts=[5, 3], input_shape=(1, 8, 8), loss=lambda counts: torch.nn.CrossEntropyLoss())
    with pytest.raises(ValueError, match=r"must return one loss per sample \(shape \(2,\)\), e.g. reduction='none'"):
        model.compute_loss(torch.randn(2, 2), torch.tensor([0, 1]))
