"""Every shipped data module's options stand in its own signature: typed, no ``**kwargs``, every
shared option of its bases listed and passed on by name (an option a leaf took but did not pass
on would be silently ignored), and the CLI's parser offers exactly these options."""

import ast
import inspect
import textwrap

import pytest
from jsonargparse import ArgumentParser

import lt_imbalance.data as data
from lt_imbalance.data import FileImageDataModule, ImageDataModule, LongTailedDataModule

SHIPPED = sorted(
    name for name in data.__all__ if isinstance(getattr(data, name), type) and issubclass(getattr(data, name), LongTailedDataModule)
)


def options(cls: type) -> dict[str, inspect.Parameter]:
    return {name: p for name, p in inspect.signature(cls).parameters.items()}


def own_options(cls: type) -> set[str]:
    """The options a base class adds to its parent's."""
    parent = cls.__mro__[1]
    return set(options(cls)) - (set(options(parent)) if issubclass(parent, LongTailedDataModule) else set())


def shared_bases(cls: type) -> list[type]:
    return [base for base in (LongTailedDataModule, ImageDataModule, FileImageDataModule) if issubclass(cls, base) and base is not cls]


def passed_on(cls: type) -> set[str]:
    """Names the ``super().__init__(...)`` call of ``cls`` passes as ``name=name``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls.__init__)))
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "__init__"
    ]
    assert len(calls) == 1, f"{cls.__name__}.__init__ should call super().__init__ once"
    return {k.arg for k in calls[0].keywords if isinstance(k.value, ast.Name) and k.value.id == k.arg}


def test_the_list_covers_every_family():
    assert len(SHIPPED) >= 15 and {"DigitsLT", "ImageNetLT", "TabularLT", "FileImageDataModule"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_option_is_in_the_signature_typed_and_passed_on(name):
    cls = getattr(data, name)
    params = options(cls)
    kinds = {p.kind for p in params.values()}
    assert inspect.Parameter.VAR_KEYWORD not in kinds and inspect.Parameter.VAR_POSITIONAL not in kinds, f"{name} takes **kwargs"
    untyped = [n for n, p in params.items() if p.annotation is inspect.Parameter.empty]
    assert not untyped, f"{name}: options without a type: {untyped}"
    for base in shared_bases(cls):
        shared = own_options(base) if base is not LongTailedDataModule else set(options(base))
        missing = shared - set(params)
        assert not missing, f"{name} lacks the {base.__name__} options {sorted(missing)}"
        for option in shared:
            assert params[option].annotation == options(base)[option].annotation, f"{name}.{option}: another type than {base.__name__}'s"
    owner = next(c for c in cls.__mro__ if "__init__" in vars(c))  # CIFAR10LT's is _CIFARLT's
    if owner is not LongTailedDataModule:
        parent = owner.__mro__[1]
        not_passed = (set(options(parent)) & set(params)) - passed_on(owner)
        assert not not_passed, f"{owner.__name__} takes {sorted(not_passed)} but does not pass them on to {parent.__name__}"


@pytest.mark.parametrize("name", SHIPPED)
def test_the_parser_offers_exactly_the_signature(name):
    cls = getattr(data, name)
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls, "data")
    offered = parser.get_defaults().as_dict()["data"]
    assert set(offered) == set(options(cls)), name
    listed = {n: p.default for n, p in options(cls).items() if p.default is not inspect.Parameter.empty}
    assert {n: offered[n] for n in listed} == {n: list(v) if isinstance(v, tuple) else v for n, v in listed.items()}, name
