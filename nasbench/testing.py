"""The contract checks every searcher x space pair meets, for the suite's own tests and for a plugin's.

A plugin's test suite calls them on its own searcher or space, against the built-in partners, e.g.::

    import pytest
    from nasbench.testing import PAIR_CHECKS

    @pytest.mark.parametrize("check", PAIR_CHECKS)
    @pytest.mark.parametrize("space", ["cnn", "nb201", "rnn"])
    def test_contract(check, space):
        check("mysearcher", space)

Each check builds the pair from the registry at the space's ``tiny`` preset (seconds on a CPU) and raises
``AssertionError`` with what went wrong. A searcher or space registered in-process (``SEARCHERS.register``)
is checked the same way as an installed one.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from itertools import islice
from typing import Any

import torch

from nasbench.config import RunConfig, resolve_config
from nasbench.provenance import seed_all
from nasbench.registry import SEARCHERS, SPACES

CPU = torch.device("cpu")


def preset_config(searcher: str, space: str, preset: str, seed: int = 0, **settings: Any) -> RunConfig:
    """A preset of a space for a searcher on the CPU and the built-in data, with optional settings."""
    return resolve_config(
        SEARCHERS.get(searcher),
        SPACES.get(space)(),
        searcher=searcher,
        preset=preset,
        seed=seed,
        device="cpu",
        data=None,
        train_flags={},
        set_pairs=dict(settings),
    )


def tiny_config(searcher: str, space: str, seed: int = 0, **settings: Any) -> RunConfig:
    """The ``tiny`` preset of a space for a searcher, with optional settings."""
    return preset_config(searcher, space, "tiny", seed, **settings)


def build(searcher: str, space_name: str, seed: int = 0, preset: str = "tiny", **settings: Any) -> tuple[Any, Any, Any]:
    """(space, data, searcher) of a pair at ``preset`` (the tiny one unless named), seeded, on the CPU."""
    cfg = preset_config(searcher, space_name, preset, seed, **settings)
    seed_all(seed)
    space = SPACES.get(space_name)()
    data = space.load_data(None, cfg, CPU, seed)
    return space, data, SEARCHERS.get(searcher)(space, cfg, data, CPU)


def steps(searcher: Any, data: Any, epoch: int, n: int) -> list[dict[str, float]]:
    """``n`` steps of ``epoch`` as the runner takes them; the returned stats as floats."""
    searcher.start_epoch(epoch)
    vals = data.val.epoch(epoch) if searcher.uses_val_batches(epoch) else None
    out = []
    for train in islice(data.train.epoch(epoch), n):
        stats = searcher.step(train, next(vals) if vals is not None else None)
        out.append({k: float(v) for k, v in stats.items()})
    return out


def check_one_step(searcher: str, space_name: str) -> None:
    """One step gives finite losses with a ``train_loss``, a genotype the space reads back, finite scores."""
    space, data, s = build(searcher, space_name)
    stats = steps(s, data, 0, 1)[0]
    assert "train_loss" in stats, f"{searcher} on {space_name}: step() returned no train_loss ({sorted(stats)})"
    assert all(math.isfinite(v) for v in stats.values()), f"{searcher} on {space_name}: non-finite stats {stats}"
    genotype = s.derive()
    assert space.parse_genotype(space.format_genotype(genotype)) == genotype, "the genotype does not round-trip"
    ops = {e.op for _, edges in genotype.cells for e in edges}
    assert ops <= set(space.ops), f"ops {sorted(ops - set(space.ops))} are not the space's"
    assert "none" not in ops or space.none_edges, f"{space_name} cells cannot hold a none edge"
    scores = s.score(islice(data.score.epoch(0), 1))
    assert all(math.isfinite(v) for v in scores.values()), f"non-finite scores {scores}"


def check_state_round_trip(searcher: str, space_name: str) -> None:
    """A searcher rebuilt (another seed) and loaded from ``state_dict`` continues exactly as the original."""
    _, data, s = build(searcher, space_name)
    steps(s, data, 0, 1)
    state = copy.deepcopy(s.state_dict())
    rng = torch.get_rng_state()
    first = steps(s, data, 1, 2)
    _, _, fresh = build(searcher, space_name, seed=123)  # a different initialisation, then overwritten
    fresh.load_state_dict(state)
    torch.set_rng_state(rng)
    assert steps(fresh, data, 1, 2) == first, "the loaded state does not continue as the original"
    assert fresh.derive() == s.derive(), "the loaded state derives another genotype"


def check_same_seed_same_result(searcher: str, space_name: str) -> None:
    runs = []
    for _ in range(2):
        _, data, s = build(searcher, space_name, seed=7)
        runs.append((steps(s, data, 0, 2), s.derive()))
    assert runs[0] == runs[1], "two runs with the same seed differ"


PAIR_CHECKS: tuple[Callable[[str, str], None], ...] = (
    check_one_step,
    check_state_round_trip,
    check_same_seed_same_result,
)
