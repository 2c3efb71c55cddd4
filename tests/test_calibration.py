"""Temperature scaling against a brute-force search; prior re-weighting against hand computation;
EM recovering a known class prior from exact posteriors."""

import math

import pytest
import torch

from lt_imbalance.calibration import fit_temperature, negative_log_likelihood
from lt_imbalance.label_shift import adapt_to_prior, estimate_prior


@pytest.mark.parametrize("sharpness", [0.3, 1.0, 4.0])
def test_the_temperature_is_the_brute_force_minimum_of_the_nll(sharpness):
    g = torch.Generator().manual_seed(0)
    targets = torch.randint(0, 5, (400,), generator=g)
    logits = sharpness * (torch.randn(400, 5, generator=g) + 2.0 * torch.nn.functional.one_hot(targets, 5))
    found = fit_temperature(logits, targets)
    grid = [math.exp(x / 1000) for x in range(-3000, 3001)]  # T in [0.05, 20], steps of 0.1%
    best = min(grid, key=lambda t: negative_log_likelihood(logits, targets, t))
    assert found == pytest.approx(best, rel=2e-3)
    assert negative_log_likelihood(logits, targets, found) <= negative_log_likelihood(logits, targets, best) + 1e-12


def test_the_temperature_at_the_bounds_and_bad_shapes():
    separated = torch.tensor([[3.0, -3.0], [-3.0, 3.0]])
    assert fit_temperature(separated, torch.tensor([0, 1])) == pytest.approx(1e-3)  # always right: as sharp as allowed
    assert fit_temperature(torch.zeros(4, 3), torch.tensor([0, 1, 2, 0])) == pytest.approx(1e3)  # no signal: flattest
    with pytest.raises(ValueError, match="logits \\[N, C\\] and N targets"):
        fit_temperature(torch.zeros(4, 3), torch.tensor([0, 1]))


def test_re_weighting_to_a_prior_by_hand():
    p = torch.tensor([[0.6, 0.3, 0.1]])
    model, target = torch.tensor([0.5, 0.3, 0.2]), torch.tensor([0.2, 0.3, 0.5])
    # p * q / p_model = [0.24, 0.3, 0.25], sum 0.79
    expected = torch.tensor([[0.24 / 0.79, 0.3 / 0.79, 0.25 / 0.79]], dtype=torch.float64)
    assert torch.allclose(adapt_to_prior(p, model, target), expected)
    assert torch.allclose(adapt_to_prior(p, model, model), p.double())  # the same prior: unchanged
    uniform_model = adapt_to_prior(p, torch.ones(3), target)  # a balanced-softmax model (uniform p_model): p * q
    assert torch.allclose(uniform_model, (p * target / (p * target).sum()).double())
    with pytest.raises(ValueError, match="must be positive"):
        adapt_to_prior(p, torch.tensor([0.5, 0.5, 0.0]), target)


def test_em_recovers_a_known_prior_from_exact_posteriors():
    """Three 1-D Gaussian classes, unit variance, means -2, 0, 2; the model's posteriors are exact
    for a uniform training prior; 20,000 inputs drawn from the prior (0.7, 0.2, 0.1)."""
    g = torch.Generator().manual_seed(0)
    true_prior = torch.tensor([0.7, 0.2, 0.1], dtype=torch.float64)
    means = torch.tensor([-2.0, 0.0, 2.0], dtype=torch.float64)
    labels = torch.multinomial(true_prior, 20_000, replacement=True, generator=g)
    x = means[labels] + torch.randn(20_000, generator=g, dtype=torch.float64)
    likelihood = torch.exp(-0.5 * (x[:, None] - means[None]) ** 2)
    posteriors = likelihood / likelihood.sum(1, keepdim=True)  # under the uniform training prior
    estimate, iterations = estimate_prior(posteriors, torch.full((3,), 1 / 3))
    empirical = torch.bincount(labels, minlength=3).double() / 20_000
    assert (estimate - empirical).abs().sum() < 0.02 and iterations < 1000
    assert (posteriors.mean(0) - empirical).abs().sum() > 0.1  # the plain mean of the posteriors is far off


# ---- the prior a recipe's outputs assume (lt_imbalance.model_prior) -------------------------------------
COUNTS = [100, 25, 4]


def _loss(name: str, **kwargs):
    from lt_imbalance.losses import build_loss

    if kwargs:
        from lt_imbalance.losses import LOSSES

        return LOSSES[name](COUNTS, **kwargs)
    return build_loss(name, COUNTS)


@pytest.mark.parametrize(
    "sampler, loss, kwargs, posthoc, by_hand",
    [
        ("random", "ce", {}, 0.0, [100 / 129, 25 / 129, 4 / 129]),  # plain ERM: the training prior
        ("square_root", "ce", {}, 0.0, [10 / 17, 5 / 17, 2 / 17]),  # sqrt(n) = 10, 5, 2
        ("class_balanced", "ce", {}, 0.0, [1 / 3, 1 / 3, 1 / 3]),
        ("random", "balanced_softmax", {}, 0.0, [1 / 3, 1 / 3, 1 / 3]),
        ("random", "logit_adjusted", {"tau": 0.5}, 0.0, [10 / 17, 5 / 17, 2 / 17]),
        ("random", "ce", {}, 1.0, [1 / 3, 1 / 3, 1 / 3]),  # post-hoc tau 1
        ("class_balanced", "balanced_softmax", {}, 0.0, [1 / 30, 4 / 30, 25 / 30]),  # n^-1: 1/100, 1/25, 1/4 = (1, 4, 25) / 100
    ],
)
def test_the_recipe_prior_of_each_family_by_hand(sampler, loss, kwargs, posthoc, by_hand):
    from lt_imbalance.model_prior import power_prior, prior_exponent

    exponent, recipe = prior_exponent(sampler, _loss(loss, **kwargs), posthoc, "none")
    assert exponent is not None and sampler in recipe
    assert power_prior(COUNTS, exponent).tolist() == pytest.approx(by_hand)


@pytest.mark.parametrize(
    "loss, kwargs, reweighting, why",
    [
        ("ce", {"label_smoothing": 0.1}, "none", "label smoothing"),
        ("ce", {}, "inverse", "re-weighting"),
        ("focal", {}, "none", "FocalLoss"),
        ("ldam", {}, "none", "LDAMLoss"),
    ],
)
def test_recipes_without_a_closed_form_say_why(loss, kwargs, reweighting, why):
    from lt_imbalance.model_prior import prior_exponent

    exponent, reason = prior_exponent("random", _loss(loss, **kwargs), 0.0, reweighting)
    assert exponent is None and why in reason


def test_a_re_weighted_recipe_assumes_its_class_weights_in_the_nearest_prior():
    """LDAM-DRW: inverse-like weights make the nearest prior close to balanced, not the training mix
    (assuming the training mix, a uniform target prior pushed every breast-cancer row to one class)."""
    from lt_imbalance.losses.reweighting import class_weights
    from lt_imbalance.model_prior import recipe_priors

    inverse = recipe_priors(COUNTS, "random", _loss("ldam"), 0.0, "inverse", class_weights(COUNTS, "inverse"))
    assert inverse.exact is None and inverse.nearest.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3])  # n * (1 / n)
    assert "inverse class weights" in inverse.source
    # square-root sampler with inverse weights: n^(1/2) / n = (1/10, 1/5, 1/2) -> (1, 2, 5) / 8
    root = recipe_priors(COUNTS, "square_root", _loss("ce"), 0.0, "inverse", class_weights(COUNTS, "inverse"))
    assert root.nearest.tolist() == pytest.approx([1 / 8, 2 / 8, 5 / 8])
    # effective number, beta 0.99: E_c = (1 - 0.99^n) / 0.01, prior ∝ n / E_c
    effective = recipe_priors(COUNTS, "random", _loss("ldam"), 0.0, "effective", class_weights(COUNTS, "effective", 0.99))
    by_hand = torch.tensor([n / ((1 - 0.99**n) / 0.01) for n in COUNTS], dtype=torch.float64)
    assert effective.nearest.tolist() == pytest.approx((by_hand / by_hand.sum()).tolist())


def test_the_module_of_ldam_drw_assumes_its_weighted_prior():
    from lt_imbalance.losses.reweighting import Reweighting
    from lt_imbalance.module import ImbalancedClassifier

    module = ImbalancedClassifier(
        backbone="mlp", backbone_kwargs={"hidden": [4]}, input_shape=(3,), class_counts=COUNTS, head="cosine",
        loss="ldam", reweighting=Reweighting("inverse", start_epoch=2),
    )  # fmt: skip
    assert module.outputs.model_prior.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3])


def test_re_weighting_with_each_familys_prior_by_hand():
    from lt_imbalance.model_prior import power_prior

    p, uniform = torch.tensor([[0.5, 0.3, 0.2]]), torch.full((3,), 1 / 3)
    # square-root sampling: p_model = (10, 5, 2) / 17, so p / p_model ∝ (0.05, 0.06, 0.1)
    assert adapt_to_prior(p, power_prior(COUNTS, 0.5), uniform)[0].tolist() == pytest.approx([0.05 / 0.21, 0.06 / 0.21, 0.1 / 0.21])
    # plain ERM: p_model = (100, 25, 4) / 129, so p / p_model ∝ (0.005, 0.012, 0.05)
    assert adapt_to_prior(p, power_prior(COUNTS, 1.0), uniform)[0].tolist() == pytest.approx([0.005 / 0.067, 0.012 / 0.067, 0.05 / 0.067])
    # Balanced Softmax (uniform p_model) deployed to the training mix: p * pi ∝ (50, 7.5, 0.8)
    assert adapt_to_prior(p, power_prior(COUNTS, 0.0), torch.tensor(COUNTS, dtype=torch.float64))[0].tolist() == pytest.approx(
        [50 / 58.3, 7.5 / 58.3, 0.8 / 58.3]
    )


def test_the_outputs_owner_deploys_the_re_weighted_calibrated_probabilities():
    from lt_imbalance.label_shift import TargetPrior
    from lt_imbalance.post_processor import PostProcessor

    g = torch.Generator().manual_seed(1)
    logits, counts = torch.randn(6, 3, generator=g) * 3, [100, 25, 4]
    outputs = PostProcessor(3, torch.log(torch.tensor(counts) / 129.0), tau=0.5)
    model, target, bias = torch.tensor([0.2, 0.5, 0.3]), torch.tensor([0.1, 0.1, 0.8]), torch.tensor([0.3, -0.2, 0.1])
    outputs.assume_prior(model, "by hand")
    outputs.set_calibration(1.7, bias, outputs.record)
    calibrated = ((logits - 0.5 * torch.log(torch.tensor(counts) / 129.0)) / 1.7 + bias).softmax(1)
    assert torch.allclose(outputs.evaluated(logits).softmax(1), calibrated, atol=1e-6)
    assert torch.allclose(outputs(logits), calibrated, atol=1e-6)  # no target: the calibrated probabilities
    outputs.set_target(TargetPrior("mine", target.double()))
    expected = adapt_to_prior(calibrated, model, target)
    assert torch.allclose(outputs(logits).double(), expected, atol=1e-6)
    assert torch.allclose(outputs.evaluated(logits).softmax(1), calibrated, atol=1e-6)  # evaluation: calibrated, not re-weighted


def test_the_target_prior_named_or_read_from_a_file(tmp_path):
    from lt_imbalance.label_shift import parse_prior

    names, counts = ["cat", "dog", "rare bird"], [60, 30, 10]

    def read(spec, command="test"):
        return parse_prior(spec, names, counts, command).shares

    assert read("train").tolist() == pytest.approx([0.6, 0.3, 0.1])
    assert read("uniform").tolist() == pytest.approx([1 / 3] * 3)
    assert parse_prior(None, names, counts, "test") is None
    assert parse_prior("estimate", names, counts, "predict").estimate
    good = tmp_path / "mix.csv"
    good.write_text("class,share\ncat, 2\n# a comment\ndog,1\nrare bird,1\n")
    assert read(str(good)).tolist() == pytest.approx([0.5, 0.25, 0.25])
    for text, message in [
        ("cat,1\ndog,1\n", "missing \\['rare bird'\\]"),
        ("cat,1\ndog,1\nrare bird,1\nfish,1\n", "unknown \\['fish'\\]"),
        ("cat,1\ndog,x\n", "line 2: write 'class name,share'"),
        ("cat,0\ndog,0\nrare bird,0\n", "sum to 0"),
        ("cat,-1\ndog,1\nrare bird,1\n", "0 or more"),
        ("cat,inf\ndog,1\nrare bird,1\n", "finite"),
        ("cat,1\ndog,1\nrare bird,1\ncat,3\n", "line 4: class 'cat' is listed twice"),
    ]:
        good.write_text(text)
        with pytest.raises(ValueError, match=message):
            read(str(good))
    with pytest.raises(ValueError, match="give train, uniform, or a file"):
        read("forward")
    for command, message in [("test", "estimate is for `lt-imbalance predict`"), ("export", "no inputs to estimate from")]:
        with pytest.raises(ValueError, match=message):
            read("estimate", command)


def test_prior_is_parsed_in_one_function_and_re_weighted_by_one_formula():
    """No module but label_shift reads a --prior value or writes log q - log p_model."""
    import re
    from pathlib import Path

    package = Path(__file__).resolve().parents[1] / "lt_imbalance"
    for path in package.rglob("*.py"):
        text = path.read_text()
        if path.name == "label_shift.py":
            assert text.count("def parse_prior(") == 1 and text.count("def shift_to_prior(") == 1
            continue
        assert not re.search(r"(prior|spec)\w*(\[.*\])? *(==|in) *\(?[\"'](estimate|uniform|train)[\"']", text), f"{path} reads --prior"
        assert not re.search(r"log\(.*target.*\) *- *(torch\.)?log\(", text), f"{path} re-weights to a prior itself"


def test_the_mean_nll_metric_is_the_cross_entropy():
    from lt_imbalance.metrics import MeanNLL

    g = torch.Generator().manual_seed(2)
    logits, targets = torch.randn(50, 4, generator=g), torch.randint(0, 4, (50,), generator=g)
    metric = MeanNLL()
    metric.update(logits[:20].softmax(1), targets[:20])
    metric.update(logits[20:].softmax(1), targets[20:])
    assert metric.compute().item() == pytest.approx(torch.nn.functional.cross_entropy(logits, targets).item(), rel=1e-5)


def _scaled_posterior_logits(model_prior, val_mix, temperature, n=40_000, seed=0):
    """Logits T_true * log p(y | x) of three unit Gaussians (means -2, 0, 2), exact posteriors under
    ``model_prior``, for a validation split whose labels follow ``val_mix``."""
    g = torch.Generator().manual_seed(seed)
    means = torch.tensor([-2.0, 0.0, 2.0], dtype=torch.float64)
    labels = torch.multinomial(torch.tensor(val_mix, dtype=torch.float64), n, replacement=True, generator=g)
    x = means[labels] + torch.randn(n, generator=g, dtype=torch.float64)
    joint = torch.exp(-0.5 * (x[:, None] - means[None]) ** 2) * torch.tensor(model_prior, dtype=torch.float64)
    return temperature * torch.log(joint / joint.sum(1, keepdim=True)), labels


def test_the_temperature_is_scored_under_the_validation_mix_when_the_prior_is_known():
    model_prior, val_mix = [0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3]  # a long-tailed model, a balanced validation split
    logits, labels = _scaled_posterior_logits(model_prior, val_mix, temperature=2.0)
    offset = torch.log(torch.bincount(labels).double() / len(labels)) - torch.log(torch.tensor(model_prior, dtype=torch.float64))
    temperature = fit_temperature(logits, labels, offset)
    assert temperature == pytest.approx(2.0, rel=0.03)
    grid = [math.exp(x / 1000) for x in range(0, 1400)]  # T in [1, 4]
    assert temperature == pytest.approx(min(grid, key=lambda t: negative_log_likelihood(logits, labels, t, offset)), rel=2e-3)
    assert fit_temperature(logits, labels) > 2.2  # without the offset the prior mismatch inflates T


def test_bias_corrected_temperature_scaling_recovers_a_known_temperature_and_biases():
    """Logits z = T (log p(y | x) - beta): z / T + beta is the exact posterior, so (T, beta) come back
    (beta up to a constant: softmax ignores one; the shrinkage picks mean 0)."""
    from lt_imbalance.calibration import fit_bias_corrected

    model_prior = [0.6, 0.3, 0.1]
    logits, labels = _scaled_posterior_logits(model_prior, [0.2, 0.3, 0.5], temperature=1.0, seed=1)
    beta = torch.tensor([0.4, -0.1, -0.3], dtype=torch.float64)
    offset = torch.log(torch.bincount(labels).double() / len(labels)) - torch.log(torch.tensor(model_prior, dtype=torch.float64))
    temperature, bias = fit_bias_corrected(0.5 * (logits - beta), labels, offset)
    assert temperature == pytest.approx(0.5, rel=0.03)
    assert (bias - bias.mean()).tolist() == pytest.approx((beta - beta.mean()).tolist(), abs=0.05)


def test_held_out_nll_by_hand_and_stratified_folds():
    from lt_imbalance.calibration import calibrated_nll, fold_of, held_out_nll

    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 3, (60,), generator=g)
    logits = 2.5 * torch.nn.functional.one_hot(labels, 3).double() + torch.randn(60, 3, generator=g, dtype=torch.float64)
    fold = fold_of(labels, 5)
    for c in range(3):
        sizes = torch.bincount(fold[labels == c], minlength=5)
        assert sizes.max() - sizes.min() <= 1  # every fold holds the class mix
    by_hand = 0.0
    for k in range(5):
        t = fit_temperature(logits[fold != k], labels[fold != k])
        by_hand += calibrated_nll(logits[fold == k], labels[fold == k], t, torch.zeros(3), None) * int((fold == k).sum())
    assert held_out_nll("temperature", logits, labels, None) == pytest.approx(by_hand / 60, rel=1e-12)


def test_the_calibrator_is_chosen_on_held_out_folds_and_never_at_a_bound():
    from lt_imbalance.calibration import choose_calibrator

    # a biased, over-confident model on plenty of data: the biases pay on held-out folds
    logits, labels = _scaled_posterior_logits([0.6, 0.3, 0.1], [1 / 3] * 3, temperature=1.0, n=3000, seed=4)
    biased = 3.0 * (logits - torch.tensor([0.8, 0.0, -0.8], dtype=torch.float64))
    choice = choose_calibrator(biased, labels, None)
    assert (
        choice.kind == "temperature + class biases"
        and choice.held_out[choice.kind] < choice.held_out["temperature"] < choice.held_out["none"]
    )
    # exact posteriors already: nothing is applied unless it lowers the held-out NLL
    exact, labels = _scaled_posterior_logits([1 / 3] * 3, [1 / 3] * 3, temperature=1.0, n=60, seed=5)
    choice = choose_calibrator(exact, labels, None)
    assert choice.held_out[choice.kind] == min(choice.held_out.values())
    assert choice.kind == "none" or choice.held_out[choice.kind] < choice.held_out["none"]
    # separated (T -> 0) and signal-free (T -> 1000): the bounds are refused, none is kept
    separated = choose_calibrator(3.0 * torch.eye(3).repeat(4, 1), torch.tensor([0, 1, 2] * 4), None)
    assert separated.kind == "none" and "bound" in separated.rejected["temperature"] and separated.temperature == 1.0
    flat = choose_calibrator(torch.zeros(12, 3), torch.tensor([0, 1, 2] * 4), None)
    assert flat.kind == "none" and "1000" in flat.rejected["temperature"]


def test_the_outputs_owner_reports_before_and_after_under_the_objective_it_minimised():
    from lt_imbalance.post_processor import PostProcessor

    model_prior = [0.7, 0.2, 0.1]
    logits, labels = _scaled_posterior_logits(model_prior, [1 / 3] * 3, temperature=2.0, n=600, seed=6)
    outputs = PostProcessor(3)
    outputs.assume_prior(torch.tensor(model_prior), "by hand")
    record = outputs.fit(logits, labels, "validation split")
    assert record.calibrator != "none" and outputs.calibrated and record.fitted_on == "validation split, 600 samples"
    mix = torch.bincount(labels).double() / 600
    objective = torch.log(mix) - torch.log(torch.tensor(model_prior, dtype=torch.float64))
    after = torch.nn.functional.cross_entropy(outputs.evaluated(logits) + objective, labels).item()
    before = torch.nn.functional.cross_entropy(logits + objective, labels).item()
    assert record.after["nll"] == pytest.approx(after, rel=1e-5) and record.before["nll"] == pytest.approx(before, rel=1e-6)
    assert record.after["nll"] < record.before["nll"] and record.note is None  # 200 per class: no caution
    small = outputs.fit(logits[:20], labels[:20], "validation split")
    assert "smallest class has" in small.note and "fewer than 10" in small.note
    missing = outputs.fit(logits[labels < 2], labels[labels < 2], "validation split")
    assert missing.note.startswith("a class has no validation samples")


def test_the_outputs_state_travels_in_the_state_dict_and_old_checkpoints_upgrade():
    from lt_imbalance.calibration import LEGACY_CALIBRATION_KEY
    from lt_imbalance.label_shift import TargetPrior
    from lt_imbalance.post_processor import PostProcessor, upgrade_state_dict

    logits, labels = _scaled_posterior_logits([0.5, 0.3, 0.2], [1 / 3] * 3, temperature=2.0, n=300, seed=7)
    outputs = PostProcessor(3)
    outputs.assume_prior(torch.tensor([0.5, 0.3, 0.2]), "by hand")
    outputs.fit(logits, labels, "validation split")
    outputs.set_target(TargetPrior("uniform", torch.full((3,), 1 / 3, dtype=torch.float64)))
    restored = PostProcessor(3)
    restored.load_state_dict(outputs.state_dict())
    assert torch.equal(restored(logits.float()), outputs(logits.float())) and restored.record == outputs.record
    assert restored.target_spec == "uniform" and restored.describe()["temperature"] == float(outputs.temperature)

    legacy = {"state_dict": {}, LEGACY_CALIBRATION_KEY: {"temperature": 1.5, "model_prior": [0.5, 0.3, 0.2], "fitted_on": "x, 9 samples"}}
    upgrade_state_dict(legacy, "", 3)
    old = PostProcessor(3)
    old.load_state_dict(legacy["state_dict"])
    assert float(old.temperature) == 1.5 and old.prior().tolist() == pytest.approx([0.5, 0.3, 0.2]) and old.calibrated
    bare = {"state_dict": {}}  # written before any calibration record: loads, but has no prior to re-weight from
    upgrade_state_dict(bare, "", 3)
    older = PostProcessor(3)
    older.load_state_dict(bare["state_dict"])
    with pytest.raises(ValueError, match="records no class prior"):
        older.prior()
