"""The search space of ``lt-imbalance tune``: dotted config keys mapped to distributions.

A space is a YAML mapping, read in order; each entry is one key of the config (as on the
command line, ``data.init_args.batch_size``) and one distribution:

.. code-block:: yaml

    model.init_args.optimizer.init_args.lr: {float: [0.01, 0.2], log: true}
    data.init_args.batch_size: {categorical: [16, 32, 64]}
    model.init_args.loss.class_path: {categorical: [CrossEntropy, BalancedSoftmaxLoss, LDAMLoss]}
    model.init_args.head: {fixed: cosine, when: {model.init_args.loss.class_path: LDAMLoss}}
    callbacks.SAM: {categorical: [false, true]}
    callbacks.SAM.rho: {float: [0.01, 0.2], log: true, when: {callbacks.SAM: true}}
    model.init_args.reweighting.start_epoch: {categorical: [0.0, 0.8], of: trainer.max_epochs, when: {...}}

- ``float: [low, high]`` (``log: true`` for a log-uniform draw), ``int: [low, high]`` (``step``,
  ``log``), ``categorical: [choices]`` (numbers, strings, booleans, null), ``fixed: value``;
- ``when: {earlier key: value or [values]}``: the entry applies only when every named earlier entry
  took one of those values (SAM's radius only when SAM is on; DRW's start only with re-weighting);
- ``of: <config key>``: the value is a fraction of that key's value in the config, rounded to an
  integer (a start epoch as a share of ``trainer.max_epochs``);
- ``callbacks.<Class>``: ``true`` / ``false`` adds or removes the callback of that class in
  ``trainer.callbacks``; ``callbacks.<Class>.<argument>`` sets one of its init arguments.

A ``portfolio:`` section (optional) names recipes to try first, before the sampler: each a mapping
of the same dotted keys to fixed values (values outside the space's choices are allowed; a value
``{fraction: 0.8, of: trainer.max_epochs}`` is a share of a config number). The base config
unchanged (``base``) is always the first. The default space ships the recipes a user would compare
against: Balanced Softmax, LDAM-DRW, the paper's routine, and that routine with Balanced Softmax.

The space is checked before the first trial (:meth:`SearchSpace.check`): the shape of every
entry, empty choices, low > high, log ranges through 0, ``when`` and ``of`` references, and every
key against the config parser, each error naming the entry.
"""

from __future__ import annotations

import copy
import inspect
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lt_imbalance.errors import BadValue
from lt_imbalance.user_errors import read_yaml_file

KINDS = ("float", "int", "categorical", "fixed")
DEFAULT_SPACE = Path(__file__).with_name("default_space.yaml")


class SpaceError(BadValue):
    """A search-space entry that cannot be used; the message names the entry."""


@dataclass
class Entry:
    """One dotted key and its distribution."""

    key: str
    kind: str
    args: Any
    log: bool = False
    step: float | None = None
    when: dict[str, list[Any]] = field(default_factory=dict)
    of: str | None = None

    def first(self) -> Any:
        """A representative value (for checking the key against the parser)."""
        if self.kind in ("float", "int"):
            return self.args[0]
        return self.args[0] if self.kind == "categorical" else self.args

    def extremes(self) -> list[Any]:
        """The values a range can reach at its ends, or every choice (for checking them before any trial)."""
        if self.kind in ("float", "int"):
            return [self.args[0], self.args[1]]
        return list(self.args) if self.kind == "categorical" else [self.args]

    def applies(self, chosen: dict[str, Any]) -> bool:
        return all(chosen.get(key, _MISSING) in values for key, values in self.when.items())

    def sample(self, trial) -> Any:
        """Draw this entry's value from an Optuna trial (define-by-run)."""
        if self.kind == "float":
            return trial.suggest_float(self.key, self.args[0], self.args[1], log=self.log, step=self.step)
        if self.kind == "int":
            return trial.suggest_int(self.key, self.args[0], self.args[1], log=self.log, step=int(self.step or 1))
        if self.kind == "categorical":
            return trial.suggest_categorical(self.key, self.args)
        return self.args


_MISSING = object()


def _entry(key: str, spec: Any, earlier: list[str]) -> Entry:
    where = f"search-space entry {key!r}"
    if not isinstance(spec, dict):
        raise SpaceError(f"{where}: expected a mapping such as {{float: [low, high]}}, got {spec!r}")
    kinds = [k for k in KINDS if k in spec]
    unknown = sorted(set(spec) - set(KINDS) - {"log", "step", "when", "of"})
    if len(kinds) != 1 or unknown:
        raise SpaceError(f"{where}: give exactly one of {', '.join(KINDS)} (and optionally log, step, when, of); got {sorted(spec)}")
    kind, args = kinds[0], spec[kinds[0]]
    if kind in ("float", "int"):
        if not (isinstance(args, list) and len(args) == 2 and all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)):
            raise SpaceError(f"{where}: {kind} takes [low, high], got {args!r}")
        low, high = args
        if low > high:
            raise SpaceError(f"{where}: low {low} is above high {high}")
        if spec.get("log") and low <= 0:
            raise SpaceError(f"{where}: a log range must stay above 0, got [{low}, {high}]; use a positive low or log: false")
        if kind == "int" and not all(float(a).is_integer() for a in args):
            raise SpaceError(f"{where}: int takes integer bounds, got {args!r}")
    elif kind == "categorical":
        if not isinstance(args, list) or not args:
            raise SpaceError(f"{where}: categorical needs a non-empty list of choices, got {args!r}")
        if any(isinstance(a, (dict, list)) for a in args):
            raise SpaceError(f"{where}: choices must be numbers, strings, booleans or null, got {args!r}")
    when = spec.get("when") or {}
    if not isinstance(when, dict):
        raise SpaceError(f"{where}: when takes {{earlier key: value or [values]}}, got {when!r}")
    for ref in when:
        if ref not in earlier:
            raise SpaceError(f"{where}: when refers to {ref!r}, which is not an earlier entry of the space")
    of = spec.get("of")
    if of is not None and kind not in ("float", "categorical", "fixed"):
        raise SpaceError(f"{where}: of scales a fraction; use it with float, categorical or fixed")
    return Entry(
        key, kind, args, log=bool(spec.get("log")), step=spec.get("step"), of=of,
        when={k: v if isinstance(v, list) else [v] for k, v in when.items()},
    )  # fmt: skip


class SearchSpace:
    """An ordered list of :class:`Entry` read from YAML (module docstring).

    Args:
        entries: the entries, in order.
        source: where they came from, for messages.
    """

    def __init__(self, entries: list[Entry], source: str = "<space>", portfolio: dict[str, dict[str, Any]] | None = None):
        self.entries, self.source = entries, source
        #: recipe name -> its overrides, tried first, in order; ``base`` (no override) leads
        self.portfolio: dict[str, dict[str, Any]] = {"base": {}, **(portfolio or {})}

    def recipe(self, name: str, config: dict) -> dict[str, Any]:
        """The overrides of portfolio recipe ``name`` for ``config`` (``fraction`` / ``of`` values resolved)."""
        values = {}
        for key, value in self.portfolio[name].items():
            if isinstance(value, dict) and set(value) == {"fraction", "of"}:
                value = int(round(float(value["fraction"]) * float(get_dotted(config, value["of"]))))
            values[key] = value
        return values

    def check_portfolio(self, config: dict, parse: Any) -> None:
        """Refuse a recipe whose overrides the config parser rejects (the error names the recipe)."""
        for name in self.portfolio:
            try:
                overrides = self.recipe(name, config)
                for key in overrides:
                    if key.startswith("callbacks."):
                        _check_callback_key(key)
                parse(apply_overrides(config, overrides))
            except Exception as err:  # the parser's message (or a missing `of` key) names the problem
                raise SpaceError(f"portfolio recipe {name!r} does not fit the config: {_first_line(err)}") from err

    @classmethod
    def from_yaml(cls, path: str | Path | None = None) -> SearchSpace:
        """Read a space file (default: the space shipped with the package)."""
        path = Path(path) if path is not None else DEFAULT_SPACE
        if not path.is_file():
            raise SpaceError(f"search space '{path}' not found; give a YAML file of dotted keys and distributions")
        spec = read_yaml_file(path, "search space") or {}
        if not isinstance(spec, dict) or not spec:
            raise SpaceError(f"search space '{path}' is empty or not a mapping of dotted keys to distributions")
        portfolio = spec.pop("portfolio", None) or {}
        if not isinstance(portfolio, dict) or not all(isinstance(v, dict) for v in portfolio.values()) or "base" in portfolio:
            raise SpaceError(
                f"search space '{path}': portfolio must map recipe names (not 'base', which is always first) to mappings of dotted keys to values"
            )
        entries: list[Entry] = []
        for key, value in spec.items():
            entries.append(_entry(str(key), value, [e.key for e in entries]))
        return cls(entries, str(path), portfolio)

    def sample(self, trial, config: dict) -> dict[str, Any]:
        """The trial's values of every entry that applies, in order (Optuna define-by-run)."""
        chosen: dict[str, Any] = {}
        for entry in self.entries:
            if entry.applies(chosen):
                chosen[entry.key] = entry.sample(trial)
        return chosen

    def overrides(self, chosen: dict[str, Any], config: dict) -> dict[str, Any]:
        """The config values of ``chosen`` (``of`` fractions turned into numbers of the config)."""
        values = {}
        for entry in self.entries:
            if entry.key in chosen:
                value = chosen[entry.key]
                if entry.of is not None and value is not None:
                    value = int(round(float(value) * float(get_dotted(config, entry.of))))
                values[entry.key] = value
        return values

    def check(self, config: dict, parse: Any) -> None:
        """Refuse entries that do not fit ``config``: ``of`` keys that are not numbers in it, unknown
        callbacks or their arguments, and keys the config parser rejects (``parse(config)`` raises
        with the parser's message)."""
        for entry in self.entries:
            if entry.of is not None:
                try:
                    float(get_dotted(config, entry.of))
                except (KeyError, TypeError, ValueError) as err:
                    raise SpaceError(
                        f"search-space entry {entry.key!r}: of refers to {entry.of!r}, which is not a number in the config"
                    ) from err
            if entry.key.startswith("callbacks."):
                _check_callback_key(entry.key)
        by_key = {e.key: e for e in self.entries}
        for entry in self.entries:
            if entry.key.startswith("callbacks."):
                continue
            probe = apply_overrides(config, {**self._conditions(entry, by_key), entry.key: 1 if entry.of is not None else entry.first()})
            try:
                parse(probe)
            except Exception as err:  # the parser's message names the problem
                raise SpaceError(f"search-space entry {entry.key!r} does not fit the config: {_first_line(err)}") from err

    def check_values(self, config: dict, build: Any) -> None:
        """Refuse a data entry with a value the data module refuses (``build(config)`` instantiates it,
        applying the rules ``fit`` applies): each choice, and both ends of a range, before any trial,
        so that a space whose every trial would fail is not run."""
        by_key = {e.key: e for e in self.entries}
        for entry in self.entries:
            if not entry.key.startswith("data."):
                continue
            for value in entry.extremes():
                probe = apply_overrides(config, self.overrides({**self._conditions(entry, by_key), entry.key: value}, config))
                try:
                    build(probe)
                except Exception as err:  # the data module's message names the rule
                    why = _first_line(err).lstrip("- ").rstrip(".")
                    raise SpaceError(f"search-space entry {entry.key!r}: the value {value!r} is refused: {why}; change the entry") from err

    def _conditions(self, entry: Entry, by_key: dict[str, Entry]) -> dict[str, Any]:
        """Values of the earlier entries under which ``entry`` applies (its ``when``, recursively)."""
        values: dict[str, Any] = {}
        for key, allowed in entry.when.items():
            values.update(self._conditions(by_key[key], by_key))
            values[key] = allowed[0]
        return values


def _first_line(err: Exception) -> str:
    """What the parser found wrong, in a line: the key it does not accept where it names one, else
    its first lines without its machinery."""
    from lt_imbalance.user_errors import NOISE, exception_chain, plainly

    for cause in exception_chain(err):
        unknown = re.search(r"Option '([^']+)' is not accepted", str(cause))
        if unknown:
            return f"the config has no option {unknown.group(1)!r} at that place; check the key's spelling (fit --help lists the options)"
        said = plainly(str(cause))
        if said is not None:
            return said.split("; fix it in the config")[0]
    lines = [line.strip() for line in str(err).splitlines() if line.strip() and not NOISE.match(line)]
    return " / ".join(lines[:3])


def _callback_classes() -> dict[str, type]:
    import lt_imbalance.callbacks as callbacks

    return {name: getattr(callbacks, name) for name in callbacks.__all__}


def _check_callback_key(key: str) -> None:
    parts = key.split(".")
    classes = _callback_classes()
    if len(parts) not in (2, 3) or parts[1] not in classes:
        raise SpaceError(f"search-space entry {key!r}: callbacks.<Class>[.<argument>] with one of {', '.join(sorted(classes))}")
    if len(parts) == 3 and parts[2] not in inspect.signature(classes[parts[1]]).parameters:
        raise SpaceError(f"search-space entry {key!r}: {parts[1]} has no argument {parts[2]!r}")


# ---- dotted keys on a config dict ------------------------------------------------------------------
def get_dotted(config: dict, key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = node[part]
    return node


def _callback_path(name: str) -> str:
    return f"lt_imbalance.callbacks.{name}"


def apply_overrides(config: dict, overrides: dict[str, Any]) -> dict:
    """A copy of ``config`` with ``overrides`` applied: dotted keys set (creating mappings; a loss given
    by short name becomes its class), ``callbacks.<Class>`` entries adding, removing or configuring
    that callback in ``trainer.callbacks``."""
    from lt_imbalance.losses import LOSSES

    out = copy.deepcopy(config)
    for key, value in overrides.items():
        if key.startswith("callbacks."):
            _apply_callback(out, key, value)
            continue
        parts = key.split(".")
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part) if isinstance(node, dict) else None
            if isinstance(child, str) and parts[i + 1] in ("class_path", "init_args"):
                child = {"class_path": LOSSES[child].__name__ if child in LOSSES else child}
            if not isinstance(child, dict):
                child = {}
            node[part] = child
            node = child
        node[parts[-1]] = value
    return out


def _apply_callback(config: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    name = parts[1]
    trainer = config.setdefault("trainer", {})
    callbacks = trainer.get("callbacks") or []
    if not isinstance(callbacks, list):
        callbacks = [callbacks]
    mine = [c for c in callbacks if isinstance(c, dict) and str(c.get("class_path", "")).split(".")[-1] == name]
    if len(parts) == 2:
        if value and not mine:
            callbacks.append({"class_path": _callback_path(name), "init_args": {}})
        if not value:
            callbacks = [c for c in callbacks if c not in mine]
    else:
        if not mine:
            callbacks.append({"class_path": _callback_path(name), "init_args": {}})
            mine = callbacks[-1:]
        mine[0].setdefault("init_args", {})[parts[2]] = value
    trainer["callbacks"] = callbacks


def describe(overrides: dict[str, Any]) -> str:
    """``key=value`` pairs, shortest form, for progress lines and tables."""

    def short(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) and not math.isnan(v) else str(v)

    return ", ".join(f"{k.replace('.init_args', '')}={short(v)}" for k, v in overrides.items()) or "(base config)"
