"""The search-space parser: each distribution, conditionals, ``of`` fractions, callbacks, every error."""

import optuna
import pytest
import yaml

from lt_imbalance.tuning.space import DEFAULT_SPACE, SearchSpace, SpaceError, apply_overrides

BASE = {
    "trainer": {"max_epochs": 30, "callbacks": [{"class_path": "lt_imbalance.callbacks.SAM", "init_args": {"rho": 0.05}}]},
    "model": {"class_path": "lt_imbalance.module.ImbalancedClassifier", "init_args": {"loss": "ce", "head": "linear"}},
    "data": {"class_path": "lt_imbalance.data.DigitsLT", "init_args": {"batch_size": 64}},
}


def _space(tmp_path, spec: dict) -> SearchSpace:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return SearchSpace.from_yaml(path)


def _sample(space: SearchSpace, seed: int = 0, n: int = 30) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    draws = []
    for _ in range(n):
        trial = study.ask()
        draws.append(space.sample(trial, BASE))
        study.tell(trial, 0.0)
    return draws


def test_each_distribution(tmp_path):
    space = _space(
        tmp_path,
        {
            "a.float": {"float": [0.1, 0.2]},
            "a.log": {"float": [1.0e-4, 1.0e-1], "log": True},
            "a.int": {"int": [2, 5]},
            "a.choice": {"categorical": [16, "x", True, None]},
            "a.fixed": {"fixed": "cosine"},
        },
    )
    draws = _sample(space)
    assert all(0.1 <= d["a.float"] <= 0.2 and 1e-4 <= d["a.log"] <= 0.1 and d["a.int"] in range(2, 6) for d in draws)
    assert {d["a.choice"] for d in draws} == {16, "x", True, None} and {d["a.fixed"] for d in draws} == {"cosine"}
    assert all(isinstance(d["a.int"], int) for d in draws)


def test_conditionals_and_fractions(tmp_path):
    space = _space(
        tmp_path,
        {
            "callbacks.SAM": {"categorical": [False, True]},
            "callbacks.SAM.rho": {"float": [0.01, 0.2], "when": {"callbacks.SAM": True}},
            "model.init_args.loss.class_path": {"categorical": ["CrossEntropy", "LDAMLoss"]},
            "model.init_args.head": {"fixed": "cosine", "when": {"model.init_args.loss.class_path": "LDAMLoss"}},
            "callbacks.SAM.start_epoch": {"categorical": [0.0, 0.5], "of": "trainer.max_epochs", "when": {"callbacks.SAM": [True]}},
        },
    )
    draws = _sample(space)
    assert all(("callbacks.SAM.rho" in d) == d["callbacks.SAM"] for d in draws)
    assert all(("model.init_args.head" in d) == (d["model.init_args.loss.class_path"] == "LDAMLoss") for d in draws)
    on = next(d for d in draws if d["callbacks.SAM"] and d["callbacks.SAM.start_epoch"] == 0.5)
    values = space.overrides(on, BASE)
    assert values["callbacks.SAM.start_epoch"] == 15  # half of trainer.max_epochs
    config = apply_overrides(BASE, values)
    sam = [c for c in config["trainer"]["callbacks"] if c["class_path"].endswith("SAM")]
    assert len(sam) == 1 and sam[0]["init_args"] == {"rho": values["callbacks.SAM.rho"], "start_epoch": 15}
    off = apply_overrides(BASE, {"callbacks.SAM": False})
    assert off["trainer"]["callbacks"] == [] and BASE["trainer"]["callbacks"]  # removed from a copy


def test_overrides_turn_a_short_loss_name_into_its_class():
    config = apply_overrides(BASE, {"model.init_args.loss.init_args.label_smoothing_tail": 0.1})
    assert config["model"]["init_args"]["loss"] == {"class_path": "CrossEntropy", "init_args": {"label_smoothing_tail": 0.1}}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"x": {"float": [0.2, 0.1]}}, "'x': low 0.2 is above high 0.1"),
        ({"x": {"float": [0.0, 0.1], "log": True}}, "'x': a log range must stay above 0"),
        ({"x": {"categorical": []}}, "'x': categorical needs a non-empty list"),
        ({"x": {"int": [1.5, 3]}}, "'x': int takes integer bounds"),
        ({"x": {"float": [1, 2], "int": [1, 2]}}, "'x': give exactly one of"),
        ({"x": {"uniform": [1, 2]}}, "'x': give exactly one of"),
        ({"x": {"float": [1, 2], "when": {"y": 1}}}, "'x': when refers to 'y', which is not an earlier entry"),
        ({"x": {"categorical": [[1, 2]]}}, "'x': choices must be numbers, strings, booleans or null"),
        ({"x": 3}, "'x': expected a mapping"),
    ],
)
def test_malformed_entries_are_named(tmp_path, spec, message):
    with pytest.raises(SpaceError, match=message.replace("(", r"\(").replace("[", r"\[")):
        _space(tmp_path, spec)


def test_entries_are_checked_against_the_config(tmp_path):
    def parse(config):  # a stand-in parser that knows a few keys
        if "nosuch" in config["model"]["init_args"]:
            raise ValueError('Key "model.init_args.nosuch" is not expected')

    with pytest.raises(SpaceError, match="'model.init_args.nosuch' does not fit the config: Key .*nosuch.* is not expected"):
        _space(tmp_path, {"model.init_args.nosuch": {"fixed": 1}}).check(BASE, parse)
    with pytest.raises(SpaceError, match="'callbacks.Nope': callbacks.<Class>"):
        _space(tmp_path, {"callbacks.Nope": {"categorical": [True]}}).check(BASE, parse)
    with pytest.raises(SpaceError, match="SAM has no argument 'radius'"):
        _space(tmp_path, {"callbacks.SAM.radius": {"fixed": 0.1}}).check(BASE, parse)
    with pytest.raises(SpaceError, match="of refers to 'trainer.epochs', which is not a number"):
        _space(tmp_path, {"x": {"fixed": 0.5, "of": "trainer.epochs"}}).check(BASE, parse)
    with pytest.raises(SpaceError, match="not found"):
        SearchSpace.from_yaml(tmp_path / "missing.yaml")


def test_the_default_space_fits_the_digits_config():
    from lt_imbalance.commands.config import check_config, resolve_config

    base = resolve_config(["--config", "configs/digits_lt_erm.yaml"])
    space = SearchSpace.from_yaml(DEFAULT_SPACE)
    space.check(base, check_config)
    space.check_portfolio(base, check_config)
    assert list(space.portfolio) == ["base", "balanced_softmax", "ldam_drw", "paper_routine", "paper_routine+balanced_softmax"]
    assert space.recipe("ldam_drw", base)["model.init_args.reweighting.start_epoch"] == 24  # 0.8 of 30 epochs
    assert space.recipe("base", base) == {}
    keys = [e.key for e in space.entries]
    for component in (
        "data.init_args.batch_size",
        "data.init_args.augmentation",
        "callbacks.SAM",
        "model.init_args.ssl.weight",
        "model.init_args.reweighting.kind",
    ):
        assert component in keys


def test_the_tabular_space_fits_the_tabular_config():
    from lt_imbalance.commands.config import check_config, resolve_config

    tabular = resolve_config(["--config", "configs/tabular/erm.yaml"])
    space = SearchSpace.from_yaml("configs/tune/tabular_space.yaml")
    space.check(tabular, check_config)
    space.check_portfolio(tabular, check_config)
    assert len(space.portfolio) == 5
    with pytest.raises(SpaceError, match="'data.init_args.augmentation' does not fit the config"):
        SearchSpace.from_yaml(DEFAULT_SPACE).check(resolve_config(["--config", "configs/tabular/erm.yaml"]), check_config)


def test_a_portfolio_recipe_that_does_not_fit_is_named(tmp_path):
    from lt_imbalance.commands.config import check_config, resolve_config

    base = resolve_config(["--config", "configs/digits_lt_erm.yaml"])
    path = tmp_path / "space.yaml"
    path.write_text(
        yaml.safe_dump({"data.init_args.batch_size": {"categorical": [16]}, "portfolio": {"mine": {"data.init_args.nosuch": 1}}})
    )
    with pytest.raises(SpaceError, match="portfolio recipe 'mine' does not fit the config"):
        SearchSpace.from_yaml(path).check_portfolio(base, check_config)
    path.write_text(yaml.safe_dump({"data.init_args.batch_size": {"categorical": [16]}, "portfolio": {"base": {}}}))
    with pytest.raises(SpaceError, match="not 'base', which is always first"):
        SearchSpace.from_yaml(path)
