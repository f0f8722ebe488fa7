"""The step benchmarks know the pass count of every registered searcher (their GFLOP/s need it)."""

from benchmarks.bench_search_step import PASSES
from nasbench.registry import SEARCHERS


def test_every_registered_searcher_has_a_pass_count():
    missing = sorted(set(SEARCHERS.names()) - set(PASSES))
    assert not missing, f"add the forward-equivalent passes per step of {missing} to benchmarks/bench_search_step.py"
