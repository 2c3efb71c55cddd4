"""Class-prior adaptation under label shift: the class mix changes, p(x | y) does not.

A classifier's posterior p(y | x) reflects the class prior p_model(y) its training implies. For a
target prior q (Saerens, Latinne and Decaestecker 2002, eq. 2.4):

    p_q(y | x) = p(y | x) q(y) / p_model(y)  /  sum_k p(k | x) q(k) / p_model(k)

When q is unknown, it is estimated from unlabelled inputs by EM (their section 2.3): starting
from q_0 = p_model, alternate

    E: w_i(y) = p_{q_t}(y | x_i)            (the re-weighting above with q_t)
    M: q_{t+1}(y) = (1 / N) sum_i w_i(y)

which increases the likelihood of the inputs under the mixture sum_y q(y) p(x | y) at each step
and stops when the L1 change of q falls below ``tol``.

The re-weighting is written once, in logit space (:func:`shift_to_prior`): softmax(z + log q - log
p_model) = p(y | x) q(y) / p_model(y), normalised; :func:`adapt_to_prior` applies it to
probabilities and the outputs owner (:class:`lt_imbalance.post_processor.PostProcessor`) to logits.
A ``--prior`` value of any command is read by one function, :func:`parse_prior`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from lt_imbalance.errors import BadValue

#: what ``--prior`` accepts besides a file
NAMED_PRIORS = ("train", "uniform")
#: ``--prior estimate``: the class mix of the inputs themselves, by EM (``predict`` only)
ESTIMATE = "estimate"


def _checked(probabilities: torch.Tensor, model_prior: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    p, prior = probabilities.double(), torch.as_tensor(model_prior, dtype=torch.float64)
    if p.ndim != 2 or prior.shape != p.shape[1:]:
        raise BadValue(f"probabilities [N, C] and a prior of C classes are needed, got {tuple(p.shape)} and {tuple(prior.shape)}")
    if (prior <= 0).any():
        raise BadValue("the model's prior must be positive for every class (a class it never predicts cannot be re-weighted)")
    return p, prior / prior.sum()


def shift_to_prior(logits: torch.Tensor, model_prior: torch.Tensor, target_prior: torch.Tensor) -> torch.Tensor:
    """``logits + log q - log p_model``: logits whose softmax is re-weighted from ``model_prior`` to
    ``target_prior`` (module docstring); computed in the logits' dtype, on their device.

    Examples:
        >>> shift_to_prior(torch.zeros(1, 2), torch.tensor([0.5, 0.5]), torch.tensor([0.75, 0.25])).softmax(1)
        tensor([[0.7500, 0.2500]])
    """
    target = torch.as_tensor(target_prior, dtype=torch.float64)
    prior = torch.as_tensor(model_prior, dtype=torch.float64)
    shift = torch.log(target / target.sum()) - torch.log(prior / prior.sum())
    return logits + shift.to(device=logits.device, dtype=logits.dtype)


def adapt_to_prior(probabilities: torch.Tensor, model_prior: torch.Tensor, target_prior: torch.Tensor) -> torch.Tensor:
    """``probabilities [N, C]`` re-weighted from ``model_prior`` to ``target_prior`` (:func:`shift_to_prior` of their logs).

    Examples:
        >>> adapt_to_prior(torch.tensor([[0.5, 0.5]]), torch.tensor([0.5, 0.5]), torch.tensor([0.9, 0.1]))
        tensor([[0.9000, 0.1000]], dtype=torch.float64)
    """
    p, prior = _checked(probabilities, model_prior)
    return shift_to_prior(torch.log(p), prior, target_prior).softmax(1)


def estimate_prior(
    probabilities: torch.Tensor, model_prior: torch.Tensor, tol: float = 1e-6, max_iterations: int = 1000
) -> tuple[torch.Tensor, int]:
    """The class prior of the inputs behind ``probabilities [N, C]`` by EM (module docstring), and
    the number of iterations it took."""
    p, prior = _checked(probabilities, model_prior)
    q = prior.clone()
    for iteration in range(1, max_iterations + 1):
        updated = adapt_to_prior(p, prior, q).mean(0)
        change = (updated - q).abs().sum().item()
        q = updated
        if change < tol:
            return q, iteration
    return q, max_iterations


def bootstrap_prior(probabilities: torch.Tensor, model_prior: torch.Tensor, repeats: int = 100, seed: int = 0) -> torch.Tensor:
    """Standard error of :func:`estimate_prior` per class over ``repeats`` resamples of the inputs with replacement."""
    p = probabilities.double()
    generator = torch.Generator().manual_seed(seed)
    draws = [estimate_prior(p[torch.randint(0, len(p), (len(p),), generator=generator)], model_prior, tol=1e-5)[0] for _ in range(repeats)]
    return torch.stack(draws).std(0)


@dataclass(frozen=True)
class TargetPrior:
    """What ``--prior`` asked for: ``shares`` (float64, summing to 1) of a named or file prior, or
    ``estimate`` (the inputs' own mix, ``shares`` None); ``spec`` is the value as given."""

    spec: str
    shares: torch.Tensor | None

    @property
    def estimate(self) -> bool:
        return self.shares is None


def parse_prior(spec: str | None, class_names: list[str], class_counts: list[int], command: str) -> TargetPrior | None:
    """The one reader of ``--prior`` for every command (``None`` when not given): ``train`` (the
    training mix), ``uniform``, ``estimate`` (``predict`` only: the inputs' own mix, by EM), or a
    file of ``name,share`` lines (a header line allowed, each class once; shares are normalised).
    Errors name the command, the form and the fix."""
    if spec is None:
        return None
    if spec == ESTIMATE:
        if command != "predict":
            why = "an exported model has no inputs to estimate from" if command == "export" else "estimate is for `lt-imbalance predict`"
            raise BadValue(
                f"{command} --prior estimate: {why} (`lt-imbalance predict --ckpt_path ... --input ... --prior estimate`); "
                "give train, uniform or a file of 'class,share' lines"
            )
        return TargetPrior(spec, None)
    return TargetPrior(spec, _read_shares(spec, class_names, class_counts))


def _read_shares(spec: str, class_names: list[str], class_counts: list[int]) -> torch.Tensor:
    if spec == "train":
        counts = torch.tensor(class_counts, dtype=torch.float64)
        return counts / counts.sum()
    if spec == "uniform":
        return torch.full((len(class_names),), 1 / len(class_names), dtype=torch.float64)
    path = Path(spec)
    if not path.is_file():
        raise BadValue(f"--prior {spec}: give train, uniform, or a file of 'class name,share' lines (no such file)")
    shares: dict[str, float] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, value = line.rpartition(",")
        try:
            share = float(value)
        except ValueError:
            if number == 1 and not shares:
                continue  # a header
            raise BadValue(f"--prior {spec}, line {number}: write 'class name,share' (e.g. cat,0.25), got {line!r}") from None
        if not math.isfinite(share) or share < 0:
            raise BadValue(f"--prior {spec}, line {number}: a share must be a finite number, 0 or more, got {value.strip()}")
        if name.strip() in shares:
            raise BadValue(f"--prior {spec}, line {number}: class {name.strip()!r} is listed twice; give each class once")
        shares[name.strip()] = share
    unknown = sorted(set(shares) - set(class_names))
    missing = [n for n in class_names if n not in shares]
    if unknown or missing:
        raise BadValue(
            f"--prior {spec} must give a share for each of the model's {len(class_names)} classes and no others: "
            + "; ".join(filter(None, [f"unknown {unknown[:5]}" if unknown else "", f"missing {missing[:5]}" if missing else ""]))
        )
    values = torch.tensor([shares[n] for n in class_names], dtype=torch.float64)
    if values.sum() <= 0:
        raise BadValue(f"--prior {spec}: the shares sum to 0; give at least one class a positive share")
    return values / values.sum()
