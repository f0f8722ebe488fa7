"""The plugin's own tests: nasbench's contract checks on the plugin's searcher and every built-in space."""

import importlib.metadata

import pytest
import torch

from nasbench.registry import SEARCHERS, SPACES
from nasbench.testing import PAIR_CHECKS, build, steps


def test_the_plugin_is_found_through_its_entry_point():
    found = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="nasbench.searchers")}
    if "tempered" not in found:
        pytest.skip("the example plugin is not installed (pip install -e examples/plugin)")
    assert found["tempered"] == "nasbench_tempered:TemperedDarts" and "tempered" in SEARCHERS.names()


@pytest.fixture
def tempered():
    if "tempered" not in SEARCHERS.names():  # not installed: register it in-process, as a notebook would
        from nasbench_tempered import TemperedDarts

        SEARCHERS.register("tempered")(TemperedDarts)
        yield "tempered"
        SEARCHERS.unregister("tempered")
    else:
        yield "tempered"


@pytest.mark.parametrize("check", PAIR_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("space", SPACES.names())
def test_the_contract_holds_on_every_space(tempered, check, space):
    check(tempered, space)


def test_only_the_strongest_ops_are_computed_and_alpha_learns(tempered):
    _, data, s = build(tempered, "nb201", top_ops="1")
    mix = s.model.mixing("cell")
    assert all(len(a) == 1 for a in mix.active)
    before = s.model.alpha_cell.detach().clone()
    steps(s, data, 0, 2)
    assert not torch.equal(before, s.model.alpha_cell.detach())
