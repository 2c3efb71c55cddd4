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
