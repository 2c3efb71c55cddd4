"""Every shipped data module gives the same split and the same first batches as the code before the
data layer was restructured (``tests/data/golden.py``), so earlier runs and the README's numbers hold."""

import json

import pytest

from golden import CASES, GOLDEN, snapshots


@pytest.fixture(scope="module")
def today(tmp_path_factory) -> dict:
    return snapshots(tmp_path_factory.mktemp("golden"))


@pytest.mark.parametrize("case", CASES)
def test_split_and_first_batches_are_unchanged(case, today):
    expected = json.loads(GOLDEN.read_text())[case]
    assert today[case] == expected
