"""What class-prior adaptation gains on test sets whose class mix differs from training.

    python scripts/prior_shift_evidence.py --group ce RUN [RUN ...] --group balanced_softmax RUN [RUN ...] \\
        [--ratio 10] [--repeats 200] [--json out.json] [--inputs test|unused]

Each RUN is a finished ``lt-imbalance fit`` run folder (its ``config.yaml`` and
``checkpoints/last.ckpt``, calibrated when fit ended). For every run, the calibrated test-set
probabilities are computed once, exactly as ``lt-imbalance predict`` computes them. Then, for a
forward (long-tailed as training) and a backward (inverted) class prior q of ``--ratio``, test sets
of the original test set's size are drawn ``--repeats`` times: a label from q, then an input of
that class from the test set, with replacement. On each, three predictions are scored (accuracy and
macro-F1): the model as trained (calibrated, its own prior), adapted to the true q, and adapted to
q estimated by EM from that test set's inputs alone. A second table gives the estimate's L1 error
to q and to the drawn inputs' own class mix (which differs from q by sampling alone), and the
accuracy with the estimate, against the number of inputs. ``--inputs unused`` draws from the
pool images that neither training nor validation used instead of the test set: the place to
choose a setting (``predict --prior estimate``'s minimum was chosen there), the test set to report. Numbers are means over runs of the mean over repeats,
with the standard error over runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import yaml

from lt_imbalance.commands.lightning_cli import instantiate_data
from lt_imbalance.inference.trained_model import load_trained
from lt_imbalance.label_shift import adapt_to_prior, estimate_prior
from lt_imbalance.metrics import metrics_from_confusion, shifted_class_prior

PER_CLASS = (1, 2, 5, 10, 20, 50, 100)


@torch.no_grad()
def run_probabilities(run: Path, inputs: str) -> dict:
    """The run's calibrated probabilities, labels, and model prior on ``inputs``: ``test`` (the test
    set) or ``unused`` (the pool images that neither the run's training nor its validation split holds)."""
    model, spec = load_trained(next(run.rglob("last.ckpt")))
    config = yaml.safe_load((run / "config.yaml").read_text())
    data = instantiate_data(config)
    data.prepare_data()
    data.setup("fit")
    loader = data.test_dataloader()
    if inputs == "unused":
        used = np.concatenate([data.split.train_indices, data.split.val_indices])
        unused = np.setdiff1d(np.arange(len(data.parts.pool.labels)), used)
        loader = data.eval_loader(data.make_dataset(data.parts.pool, unused, train=False))
    probabilities, labels = [], []
    for batch in loader:
        x, y = data.on_after_batch_transfer(batch, 0)[:2]
        probabilities.append(model.outputs(model(x)).double())
        labels.append(y)
    return {
        "p": torch.cat(probabilities),
        "y": torch.cat(labels),
        "model_prior": model.outputs.prior(),
        "counts": list(spec.class_counts),
        "source": model.outputs.record.prior_source,
        "calibrator": model.outputs.record.calibrator,
    }


def scores(predictions: torch.Tensor, labels: torch.Tensor, classes: int) -> tuple[float, float]:
    confusion = torch.zeros(classes, classes, dtype=torch.float64)
    confusion.index_put_((labels, predictions), torch.ones(len(labels), dtype=torch.float64), accumulate=True)
    metrics = metrics_from_confusion(confusion)
    return metrics["acc"], metrics["macro_f1"]


def draw(labels: torch.Tensor, q: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of a test set of ``n`` inputs whose labels follow ``q`` (with replacement)."""
    order = torch.argsort(labels, stable=True)  # the inputs grouped by class
    sizes = torch.bincount(labels, minlength=len(q))
    starts = torch.cumsum(sizes, 0) - sizes
    drawn = torch.multinomial(q, n, replacement=True, generator=generator)
    within = (torch.rand(n, generator=generator, dtype=torch.float64) * sizes[drawn]).long()
    return order[starts[drawn] + within]


def one_run(record: dict, q: torch.Tensor, n: int, repeats: int, seed: int) -> dict[str, float]:
    p, y, m = record["p"], record["y"], record["model_prior"]
    classes = p.shape[1]
    generator = torch.Generator().manual_seed(seed)
    totals: dict[str, float] = {}
    for _ in range(repeats):
        index = draw(y, q, n, generator)
        pi, yi = p[index], y[index]
        estimate, _ = estimate_prior(pi, m)
        outcomes = {
            "plain": scores(pi.argmax(1), yi, classes),
            "true": scores(adapt_to_prior(pi, m, q).argmax(1), yi, classes),
            "estimated": scores(adapt_to_prior(pi, m, estimate).argmax(1), yi, classes),
        }
        values = {f"{k}_acc": v[0] for k, v in outcomes.items()} | {f"{k}_f1": v[1] for k, v in outcomes.items()}
        values["l1_estimate"] = (estimate - q).abs().sum().item()
        values["l1_model_prior"] = (m - q).abs().sum().item()
        drawn_mix = torch.bincount(yi, minlength=classes).double() / n
        values["l1_drawn_mix"] = (drawn_mix - q).abs().sum().item()  # sampling noise alone
        values["l1_estimate_to_drawn"] = (estimate - drawn_mix).abs().sum().item()
        for key, value in values.items():
            totals[key] = totals.get(key, 0.0) + value / repeats
    return totals


def mean_se(values: list[float]) -> tuple[float, float]:
    t = torch.tensor(values, dtype=torch.float64)
    return t.mean().item(), (t.std().item() / len(t) ** 0.5) if len(t) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", nargs="+", action="append", required=True, metavar=("NAME", "RUN"))
    parser.add_argument("--ratio", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--inputs", choices=["test", "unused"], default="test",
        help="draw from the test set (to report), or from the pool images no run used (to choose a setting on)",
    )  # fmt: skip
    args = parser.parse_args()
    groups = {g[0]: [run_probabilities(Path(r), args.inputs) for r in g[1:]] for g in args.group}
    results: dict = {"ratio": args.ratio, "groups": {}}
    lines = [
        "| test prior | model | accuracy: as trained | true prior | estimated | macro-F1: as trained | true prior | estimated |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    curve = [
        "| test prior | model | inputs | L1 of the estimate to q | to the inputs' own mix | L1 of the inputs' mix to q "
        "| L1 of the model's prior to q | accuracy: as trained | estimated |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, records in groups.items():
        counts, n_test = records[0]["counts"], len(records[0]["y"])
        results["groups"][name] = {"prior_source": records[0]["source"], "test_size": n_test, "runs": len(records)}
        for kind in ("forward", "backward"):
            q = shifted_class_prior(counts, kind, args.ratio)
            runs = [one_run(r, q, n_test, args.repeats, seed) for seed, r in enumerate(records)]
            summary = {k: mean_se([run[k] for run in runs]) for k in runs[0]}
            results["groups"][name][kind] = summary

            def cell(key: str, summary=summary) -> str:
                return f"{100 * summary[key][0]:.1f} ± {100 * summary[key][1]:.1f}"

            lines.append(
                f"| {kind} {args.ratio:g} | {name} | {cell('plain_acc')} | {cell('true_acc')} | {cell('estimated_acc')} "
                f"| {cell('plain_f1')} | {cell('true_f1')} | {cell('estimated_f1')} |"
            )
            for per_class in PER_CLASS:
                n = per_class * len(counts)
                runs = [one_run(r, q, n, args.repeats, 1000 + seed) for seed, r in enumerate(records)]
                s = {k: mean_se([run[k] for run in runs]) for k in runs[0]}
                results["groups"][name][f"{kind}_n{n}"] = s
                curve.append(
                    f"| {kind} {args.ratio:g} | {name} | {n} ({per_class}/class) | {s['l1_estimate'][0]:.3f} ± {s['l1_estimate'][1]:.3f} "
                    f"| {s['l1_estimate_to_drawn'][0]:.3f} | {s['l1_drawn_mix'][0]:.3f} | {s['l1_model_prior'][0]:.3f} | {100 * s['plain_acc'][0]:.1f} | {100 * s['estimated_acc'][0]:.1f} |"
                )
    print("\n".join(lines) + "\n\n" + "\n".join(curve))
    for name, group in results["groups"].items():
        print(f"{name}: p_model {group['prior_source']}; {args.inputs} inputs: {group['test_size']}; {group['runs']} runs")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
