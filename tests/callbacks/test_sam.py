"""SAM / SAM-A against hand computations of the four steps (lt_imbalance.training.sam_perturbation),
and its Lightning integration."""

import copy
import math
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.strategies import FSDPStrategy
from torch.func import functional_call
from torch.utils.data import DataLoader, TensorDataset

from helpers import COUNTS, TinyNet, sgd, tensors, tiny_batch
from helpers import fit_tiny as _fit
from helpers import tiny_model as _model
from lt_imbalance import ImbalancedClassifier
from lt_imbalance.callbacks import SAM
from lt_imbalance.callbacks.sam import check_trainer_settings
from lt_imbalance.losses import JointSSL
from lt_imbalance.training.batch_mixing import Mixing, mix_batch
from lt_imbalance.training.optimization import LRSchedule, lr_factor
from lt_imbalance.training.sam_perturbation import ascent_class_weights

_batch = tiny_batch


def _hand_sam_step(model, x, y, rho, lr, weights, adaptive=False, eta=0.01, clip=None, mix=None):
    """The four steps with torch.func, outside Lightning. ``mix = (perm, lam)``: the batch is MixUp-mixed,
    each sample's loss is lam l(y) + (1 - lam) l(y[perm]) and its ascent weight lam a_y + (1 - lam) a_y[perm]."""
    ref = copy.deepcopy(model)
    names = [n for n, _ in ref.named_parameters()]
    w = {n: p.detach().clone() for n, p in ref.named_parameters()}
    if mix is not None:
        perm, lam = mix
        x = lam * x + (1 - lam) * x[perm]

    def loss(params, weighted):
        logits = functional_call(ref, params, (x,))
        per_sample = F.cross_entropy(logits, y, reduction="none")
        a = weights[y] if weights is not None else None
        if mix is not None:
            per_sample = lam * per_sample + (1 - lam) * F.cross_entropy(logits, y[perm], reduction="none")
            a = lam * weights[y] + (1 - lam) * weights[y[perm]] if weights is not None else None
            if not (weighted and a is not None):
                return lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm])
        if weighted and a is not None:
            return (a * per_sample).sum() / a.sum()
        return per_sample.mean()

    wp = {n: v.clone().requires_grad_(True) for n, v in w.items()}
    g_a = dict(zip(names, torch.autograd.grad(loss(wp, True), [wp[n] for n in names])))
    if adaptive:
        t = {n: w[n].abs() + eta for n in names}
        norm = math.sqrt(sum(((t[n] * g_a[n]) ** 2).sum().item() for n in names))
        e = {n: rho * t[n] ** 2 * g_a[n] / norm for n in names}
    else:
        norm = math.sqrt(sum((g_a[n] ** 2).sum().item() for n in names))
        e = {n: rho * g_a[n] / norm for n in names}
    w_e = {n: (w[n] + e[n]).requires_grad_(True) for n in names}
    g = dict(zip(names, torch.autograd.grad(loss(w_e, False), [w_e[n] for n in names])))
    if clip is not None:
        total = math.sqrt(sum((g[n] ** 2).sum().item() for n in names))
        g = {n: g[n] * min(1.0, clip / (total + 1e-6)) for n in names}
    return {n: w[n] - lr * g[n] for n in names}


@pytest.mark.parametrize(
    ("sam_kwargs", "weights"),
    [
        ({"gamma": 1.0}, torch.tensor([1.0, 2.0, 8.0])),  # SAM-A: a_c = n_max / n_c
        ({"gamma": 0.5}, torch.tensor([1.0, 2.0, 8.0]).sqrt()),
        ({"gamma": 0.0}, None),  # plain SAM
        ({"gamma": 1.0, "adaptive": True}, torch.tensor([1.0, 2.0, 8.0])),
        ({"weighting": "tail_only", "tail_below": 2}, torch.tensor([0.0, 0.0, 1.0])),  # ImbSAM
        ({"gamma": 1.0, "max_weight": 3.0}, torch.tensor([1.0, 2.0, 3.0])),
    ],
)
def test_one_step_equals_the_hand_computation(sam_kwargs, weights):
    model = _model()
    x, y = _batch()
    expected = _hand_sam_step(model, x, y, rho=0.5, lr=0.1, weights=weights, adaptive=sam_kwargs.get("adaptive", False))
    trainer = _fit(model, [SAM(rho=0.5, **sam_kwargs)])
    assert trainer.global_step == 1
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), expected[name], rtol=1e-5, atol=1e-6)


def test_sam_a_differs_from_plain_sam_on_this_batch():
    x, y = _batch()
    a = _hand_sam_step(_model(), x, y, 0.5, 0.1, torch.tensor([1.0, 2.0, 8.0]))
    b = _hand_sam_step(_model(), x, y, 0.5, 0.1, None)
    assert any(not torch.allclose(a[n], b[n]) for n in a)


def test_gradient_clipping_applies_to_the_descent_gradient():
    model = _model()
    x, y = _batch()
    expected = _hand_sam_step(model, x, y, rho=0.5, lr=0.1, weights=torch.tensor([1.0, 2.0, 8.0]), clip=0.01)
    _fit(model, [SAM(rho=0.5)], gradient_clip_val=0.01, gradient_clip_algorithm="norm")
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), expected[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_rho_zero_equals_a_plain_optimizer_step(precision):
    with_sam, plain = _model(batchnorm=True, momentum=0.9), _model(batchnorm=True, momentum=0.9)
    _fit(with_sam, [SAM(rho=0.0)], steps=3, n=18, precision=precision)
    _fit(plain, [], steps=3, n=18, precision=precision)
    for (name, p), q in zip(tensors(with_sam).items(), tensors(plain).values()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=name)


def test_batchnorm_statistics_equal_those_of_one_forward_pass():
    model = _model(batchnorm=True)
    reference = copy.deepcopy(model.net.backbone).train()
    x, _ = _batch()
    with torch.no_grad():
        reference(x)
    _fit(model, [SAM(rho=0.5)])
    bn, ref_bn = model.net.backbone.bn, reference.bn
    torch.testing.assert_close(bn.running_mean, ref_bn.running_mean)
    torch.testing.assert_close(bn.running_var, ref_bn.running_var)
    assert bn.num_batches_tracked.item() == 1


class _RecordLR(pl.Callback):
    def __init__(self):
        self.lrs = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])


def test_lr_schedule_and_global_step_under_sam():
    model = _model(lr_schedule=LRSchedule(warmup_epochs=1))
    record = _RecordLR()
    sam = SAM(rho=0.1)
    trainer = _fit(model, [sam, record], steps=-1, n=18, batch_size=6, max_epochs=3)
    assert trainer.global_step == 9 and sam.descent_passes == 9
    assert record.lrs == pytest.approx([0.1 * lr_factor(s, 3, 9) for s in range(9)])
    assert record.lrs[0] < record.lrs[2] and record.lrs[-1] < record.lrs[4] < record.lrs[3]


def _train_from(tmp_path, ckpt=None):
    torch.manual_seed(1)
    model = _model(momentum=0.9, lr_schedule=LRSchedule(warmup_epochs=1))
    x, y = _batch(18)
    loader = DataLoader(TensorDataset(x, y), batch_size=6, shuffle=False)
    every_epoch = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, every_n_epochs=1, save_top_k=-1)
    trainer = pl.Trainer(
        max_epochs=4,
        callbacks=[SAM(rho=0.1), every_epoch],
        logger=False,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    trainer.fit(model, train_dataloaders=loader, ckpt_path=ckpt)
    return model, trainer


def test_checkpoint_saves_and_resume_gives_the_uninterrupted_weights(tmp_path):
    uninterrupted, _ = _train_from(tmp_path / "a")
    ckpt = tmp_path / "a" / "epoch=1-step=6.ckpt"  # written mid-training, after 2 of 4 epochs
    state = torch.load(ckpt, weights_only=False)
    assert state["global_step"] == 6 and state["optimizer_states"][0]["state"]  # momentum buffers saved
    resumed, trainer = _train_from(tmp_path / "b", ckpt=str(ckpt))
    assert trainer.global_step == 12
    for (name, p), q in zip(tensors(resumed).items(), tensors(uninterrupted).values()):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6, msg=name)


def test_metrics_and_logs_once_per_step():
    model = _model()
    calls = []
    original = model.stage_metrics.confusion["train_cm"].update
    model.stage_metrics.confusion["train_cm"].update = lambda *a: (calls.append(1), original(*a))
    _fit(model, [SAM(rho=0.5)], steps=2, n=12)
    assert len(calls) == 2


def test_start_epoch_keeps_plain_steps_before_it():
    model, plain = _model(), _model()
    _fit(model, [SAM(rho=0.5, start_epoch=1)])
    _fit(plain, [])
    for p, q in zip(model.parameters(), plain.parameters()):
        torch.testing.assert_close(p, q)


@pytest.mark.parametrize(
    ("trainer_kw", "message"),
    [
        ({"precision": "16-true"}, "SAM does not support trainer.precision='16-true'"),
        ({"precision": "bf16-true"}, "SAM does not support trainer.precision='bf16-true'.*bf16-true.*lose most of the perturbation"),
        ({"accumulate_grad_batches": 2}, "SAM does not support accumulate_grad_batches=2"),
    ],
)
def test_unsupported_combinations_are_refused(trainer_kw, message):
    with pytest.raises(ValueError, match=message):
        _fit(_model(), [SAM()], **trainer_kw)


def test_16_mixed_is_refused_with_the_fix():
    # on CPU Lightning itself swaps 16-mixed for bf16-mixed, so the check is exercised directly
    with pytest.raises(ValueError, match="'16-mixed'.*Use 'bf16-mixed'"):
        check_trainer_settings("16-mixed", 1)
    check_trainer_settings("bf16-mixed", 1)


def test_sam_a_without_class_counts_is_refused():
    torch.manual_seed(0)
    model = ImbalancedClassifier(TinyNet(), num_classes=3, optimizer=sgd())
    with pytest.raises(ValueError, match="SAM-A needs the model's class_counts"):
        _fit(model, [SAM(gamma=1.0)])
    assert ascent_class_weights(None, gamma=0.0) is None


def test_both_sam_passes_see_the_same_mixup_batch():
    # with rho = 0 the descent gradient equals the plain one only if both passes mix alike
    with_sam, plain = _model(mixing=Mixing(mixup_alpha=0.4)), _model(mixing=Mixing(mixup_alpha=0.4))
    _fit(with_sam, [SAM(rho=0.0, gamma=0.0)], steps=3, n=18)
    _fit(plain, [], steps=3, n=18)
    for p, q in zip(with_sam.parameters(), plain.parameters()):
        torch.testing.assert_close(p, q)


def test_sam_a_weights_a_mixed_sample_by_the_lambda_mix_of_its_classes():
    model = _model(mixing=Mixing(mixup_alpha=0.4))
    x, y = _batch()
    _, perm, lam = mix_batch(x, 0.4, 0.0, hash((torch.initial_seed(), 0, 0)) % 2**63)  # the module's draw at step 0
    expected = _hand_sam_step(model, x, y, rho=0.5, lr=0.1, weights=torch.tensor([1.0, 2.0, 8.0]), mix=(perm, lam))
    _fit(model, [SAM(rho=0.5, gamma=1.0)])
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), expected[name], rtol=1e-5, atol=1e-6)


class LogitsWithoutForward(ImbalancedClassifier):
    """Computes its logits through the network directly, so SAM-A's hook on forward never fires."""

    def forward_loss(self, batch):
        logits = self.net(batch[0])
        loss = self.compute_loss(logits, batch[1])
        return {"loss": loss, "loss_sup": loss, "logits": logits}


def test_sam_a_refuses_a_step_where_its_weights_were_not_applied():
    torch.manual_seed(0)
    model = LogitsWithoutForward(TinyNet(), class_counts=COUNTS, optimizer=sgd())
    with pytest.raises(RuntimeError, match="SAM-A's class weights were not applied in this step.*self\\(x\\)"):
        _fit(model, [SAM(rho=0.5, gamma=1.0)])
    _fit(LogitsWithoutForward(TinyNet(), class_counts=COUNTS, optimizer=sgd()), [SAM(rho=0.5, gamma=0.0)])  # plain SAM needs no hook


def test_sharded_strategies_are_refused():
    with pytest.raises(ValueError, match="SAM does not support the FSDPStrategy.*Use strategy: ddp"):
        check_trainer_settings("32-true", 1, FSDPStrategy())


def test_per_replica_ascent_with_joint_ssl_is_refused_under_ddp():
    torch.manual_seed(0)
    model = ImbalancedClassifier("digits_cnn", class_counts=[5, 3], input_shape=(1, 8, 8), ssl=JointSSL(weight=0.1))
    ddp = SimpleNamespace(world_size=2, precision="32-true", accumulate_grad_batches=1, strategy=None)
    with pytest.raises(ValueError, match="ascent='per_replica'.*gathers samples across devices.*Use ascent: global"):
        SAM(ascent="per_replica").setup(ddp, model, "fit")
    SAM(ascent="global").setup(ddp, model, "fit")
    SAM(ascent="per_replica").setup(SimpleNamespace(**{**vars(ddp), "world_size": 1}), model, "fit")  # one device: nothing to refuse


def test_a_module_without_the_contract_is_named():
    class Bare(pl.LightningModule):
        pass

    trainer = SimpleNamespace(world_size=1, precision="32-true", accumulate_grad_batches=1, strategy=None)
    with pytest.raises(TypeError, match="SAM needs Bare to provide .*forward_loss.*SharpnessAwareModule"):
        SAM().setup(trainer, Bare(), "fit")
