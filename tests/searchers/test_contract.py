"""The contract every registered searcher x space pair meets, on the tiny preset (seconds each)."""

import copy
import math
from itertools import islice

import pytest
import torch

from nasbench.provenance import seed_all
from nasbench.registry import SEARCHERS, SPACES
from tests.conftest import tiny_config

PAIRS = [(s, p) for s in SEARCHERS.names() for p in SPACES.names()]


def build(searcher: str, space_name: str, seed: int = 0):
    cfg = tiny_config(searcher, space_name, seed=seed)
    seed_all(seed)
    space = SPACES.get(space_name)()
    data = space.load_data(None, cfg, torch.device("cpu"), seed)
    return space, data, SEARCHERS.get(searcher)(space, cfg, data, torch.device("cpu"))


def steps(searcher, data, epoch: int, n: int):
    searcher.start_epoch(epoch)
    vals = data.val.epoch(epoch) if searcher.uses_val_batches(epoch) else None
    out = []
    for train in islice(data.train.epoch(epoch), n):
        stats = searcher.step(train, next(vals) if vals is not None else None)
        out.append({k: float(v) for k, v in stats.items()})
    return out


@pytest.mark.parametrize("searcher,space_name", PAIRS)
def test_one_step_gives_finite_losses_and_a_valid_genotype(searcher, space_name):
    space, data, s = build(searcher, space_name)
    stats = steps(s, data, 0, 1)[0]
    assert "train_loss" in stats and all(math.isfinite(v) for v in stats.values())
    genotype = s.derive()
    assert space.parse_genotype(space.format_genotype(genotype)) == genotype
    ops = {e.op for _, edges in genotype.cells for e in edges}
    assert ops <= set(space.ops) and ("none" not in ops or space.none_edges)
    scores = s.score(islice(data.score.epoch(0), 1))
    assert all(math.isfinite(v) for v in scores.values())


@pytest.mark.parametrize("searcher,space_name", PAIRS)
def test_state_round_trip_continues_identically(searcher, space_name):
    _, data, s = build(searcher, space_name)
    steps(s, data, 0, 1)
    state = copy.deepcopy(s.state_dict())
    rng = torch.get_rng_state()
    first = steps(s, data, 1, 2)
    _, _, fresh = build(searcher, space_name, seed=123)  # different init, then overwritten
    fresh.load_state_dict(state)
    torch.set_rng_state(rng)
    assert steps(fresh, data, 1, 2) == first
    assert fresh.derive() == s.derive()


@pytest.mark.parametrize("searcher,space_name", PAIRS)
def test_same_seed_same_result(searcher, space_name):
    runs = []
    for _ in range(2):
        _, data, s = build(searcher, space_name, seed=7)
        runs.append((steps(s, data, 0, 2), s.derive()))
    assert runs[0] == runs[1]
