"""The contract every registered searcher x space pair meets (``nasbench.testing``), on the tiny preset."""

import pytest

from nasbench.registry import SEARCHERS, SPACES
from nasbench.testing import PAIR_CHECKS

PAIRS = [(s, p) for s in SEARCHERS.names() for p in SPACES.names()]


@pytest.mark.parametrize("check", PAIR_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("searcher,space_name", PAIRS)
def test_contract(check, searcher, space_name):
    check(searcher, space_name)
