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


def test_the_output_adjustment_deploys_the_re_weighted_calibrated_probabilities():
    from lt_imbalance.inputs import OutputAdjustment

    g = torch.Generator().manual_seed(1)
    logits, counts = torch.randn(6, 3, generator=g) * 3, [100, 25, 4]
    adjustment = OutputAdjustment.from_counts(counts, tau=0.5)
    adjustment.temperature = 1.7
    model, target = torch.tensor([0.2, 0.5, 0.3]), torch.tensor([0.1, 0.1, 0.8])
    adjustment.set_target_prior(model, target)
    calibrated = ((logits - 0.5 * torch.log(torch.tensor(counts) / 129.0)) / 1.7).softmax(1)
    expected = adapt_to_prior(calibrated, model, target)
    assert torch.allclose(adjustment.deployed(logits).softmax(1).double(), expected, atol=1e-6)
    assert torch.allclose(adjustment(logits).softmax(1), calibrated, atol=1e-6)  # evaluation: calibrated, not re-weighted


def test_the_target_prior_named_or_read_from_a_file(tmp_path):
    from lt_imbalance.label_shift import read_target_prior

    names, counts = ["cat", "dog", "rare bird"], [60, 30, 10]
    assert read_target_prior("train", names, counts).tolist() == pytest.approx([0.6, 0.3, 0.1])
    assert read_target_prior("uniform", names, counts).tolist() == pytest.approx([1 / 3] * 3)
    good = tmp_path / "mix.csv"
    good.write_text("class,share\ncat, 2\n# a comment\ndog,1\nrare bird,1\n")
    assert read_target_prior(str(good), names, counts).tolist() == pytest.approx([0.5, 0.25, 0.25])
    for text, message in [
        ("cat,1\ndog,1\n", "missing \\['rare bird'\\]"),
        ("cat,1\ndog,1\nrare bird,1\nfish,1\n", "unknown \\['fish'\\]"),
        ("cat,1\ndog,x\n", "line 2: write 'class name,share'"),
        ("cat,0\ndog,0\nrare bird,0\n", "sum to 0"),
        ("cat,-1\ndog,1\nrare bird,1\n", "0 or more"),
    ]:
        good.write_text(text)
        with pytest.raises(ValueError, match=message):
            read_target_prior(str(good), names, counts)
    with pytest.raises(ValueError, match="give train, uniform, or a file"):
        read_target_prior("forward", names, counts)


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
    from lt_imbalance.calibration import fit_calibration

    model_prior, val_mix = [0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3]  # a long-tailed model, a balanced validation split
    logits, labels = _scaled_posterior_logits(model_prior, val_mix, temperature=2.0)
    temperature, prior = fit_calibration(logits, labels, torch.tensor(model_prior))
    assert temperature == pytest.approx(2.0, rel=0.03) and prior.tolist() == pytest.approx(model_prior)
    offset = torch.log(torch.bincount(labels).double() / len(labels)) - torch.log(torch.tensor(model_prior, dtype=torch.float64))
    grid = [math.exp(x / 1000) for x in range(0, 1400)]  # T in [1, 4]
    assert temperature == pytest.approx(min(grid, key=lambda t: negative_log_likelihood(logits, labels, t, offset)), rel=2e-3)
    assert fit_temperature(logits, labels) > 2.2  # without the offset the prior mismatch inflates T


def test_the_temperature_and_an_unknown_prior_are_fitted_together():
    from lt_imbalance.calibration import fit_calibration

    logits, labels = _scaled_posterior_logits([0.6, 0.3, 0.1], [0.2, 0.3, 0.5], temperature=0.5, seed=1)
    temperature, prior = fit_calibration(logits, labels, None)  # 40,000 labels outweigh the guess (uniform)
    assert temperature == pytest.approx(0.5, rel=0.03)
    assert (prior - torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)).abs().sum() < 0.04
    temperature, prior = fit_calibration(logits, labels.clamp(max=1), None)  # class 2 without validation samples
    assert prior is None and temperature == pytest.approx(fit_temperature(logits, labels.clamp(max=1)))


def test_a_small_validation_split_keeps_the_guess_and_a_finite_temperature():
    """Twelve samples, one wrong: free offsets would separate them (T -> 0); shrunk to the guess they cannot."""
    from lt_imbalance.calibration import at_the_sharpest, fit_calibration

    logits = 3.0 * torch.eye(3).repeat(4, 1)
    labels = torch.tensor([0, 1, 2] * 4)
    labels[0] = 1  # one error
    guess = torch.tensor([0.5, 0.3, 0.2])
    temperature, prior = fit_calibration(logits, labels, None, guess)
    assert 0.1 < temperature < 10 and (prior - guess.double()).abs().sum() < 0.5
    separated = fit_calibration(3.0 * torch.eye(3), torch.tensor([0, 1, 2]), None)[0]
    assert at_the_sharpest(separated) and not at_the_sharpest(temperature)  # every sample right: T at its bound
