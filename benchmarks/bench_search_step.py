"""One search step per searcher x space (small CPU preset) and at the papers' CNN supernet shape."""

from __future__ import annotations

import pytest
import torch

from nasbench.config import resolve_config
from nasbench.metrics.flops import forward_mult_adds
from nasbench.provenance import seed_all
from nasbench.registry import SEARCHERS, SPACES
from nasbench.searchers.base import Searcher

from .conftest import measure

# Forward-equivalent passes per step, a backward counted as two forwards: first order makes one
# forward and backward for alpha and one for w (2 x 3); second order adds the virtual step's forward
# and backward, the forward and backward at the virtual weights, and two gradient evaluations for the
# finite difference (5 forwards + 5 backwards = 15).
PASSES = {"darts1": 6, "pcdarts": 6, "darts2": 15, "randomws": 3, "random": 3}


def build(searcher: str, space: str, preset: str, device: torch.device, **sets: str) -> tuple[Searcher, tuple]:
    space_obj = SPACES.get(space)()
    cls = SEARCHERS.get(searcher)
    cfg = resolve_config(
        cls,
        space_obj,
        searcher=searcher,
        preset=preset,
        seed=0,
        device=str(device),
        data=None,
        train_flags={},
        set_pairs=dict(sets),
    )
    seed_all(0)
    data = space_obj.load_data(None, cfg, device, 0)
    s = cls(space_obj, cfg, data, device)
    epoch = cfg.train.epochs - 1  # past any warm-up, so the architecture step runs
    s.start_epoch(epoch)
    val = next(data.val.epoch(epoch)) if s.uses_val_batches(epoch) else None
    return s, (next(data.train.epoch(epoch)), val)


def batch_samples(batch) -> int:
    """Images in a CIFAR-10 batch, tokens in a PTB window."""
    inputs = getattr(batch, "inputs", None)
    return int(inputs.numel()) if inputs is not None else len(batch[0])


def step_benchmark(benchmark, key, searcher, space, preset, device, matmul_gflops, rounds, **sets):
    s, (train, val) = build(searcher, space, preset, device, **sets)
    model = s.model
    macs = forward_mult_adds(lambda: model.loss(train)) * PASSES.get(searcher, 6) if model is not None else 0.0
    samples = batch_samples(train) + (batch_samples(val) if val is not None else 0)
    measure(benchmark, key, lambda: s.step(train, val), device, matmul_gflops, macs, rounds, samples=samples)


SMALL = [(s, p) for s in SEARCHERS.names() for p in SPACES.names()]


@pytest.mark.parametrize("searcher,space", SMALL)
def test_search_step_small(benchmark, searcher, space, device, matmul_gflops):
    step_benchmark(benchmark, f"step/{searcher}-{space}-small", searcher, space, "small", device, matmul_gflops, 3)


@pytest.mark.paper_shape
@pytest.mark.parametrize("searcher", ["darts1", "darts2", "pcdarts"])
def test_search_step_paper_shape(benchmark, searcher, device, matmul_gflops):
    """Batch 64, 16 channels, 8 cells (Liu et al. 2019, A.1.1), PC-DARTS at the same batch for the memory ratio."""
    step_benchmark(
        benchmark, f"step/{searcher}-cnn-paper", searcher, "cnn", "paper", device, matmul_gflops, 2, batch_size="64"
    )


@pytest.mark.paper_shape
def test_pcdarts_step_at_its_batch_256(benchmark, device, matmul_gflops):
    step_benchmark(benchmark, "step/pcdarts-cnn-paper-b256", "pcdarts", "cnn", "paper", device, matmul_gflops, 2)


def test_supernet_forward_paper_shape(benchmark, device, matmul_gflops):
    s, (train, _) = build("darts1", "cnn", "paper", device)
    images = train[0]
    model = s.model
    macs = forward_mult_adds(lambda: model(images))

    def forward() -> None:
        with torch.no_grad():
            model(images)

    measure(benchmark, "forward/darts1-cnn-paper", forward, device, matmul_gflops, macs, 3, samples=len(images))
