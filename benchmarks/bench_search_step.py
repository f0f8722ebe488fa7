"""One search step per searcher x space (small CPU preset) and at the papers' CNN supernet shape."""

from __future__ import annotations

import pytest
import torch

from nasbench.config import resolve_config
from nasbench.metrics.flops import forward_mult_adds
from nasbench.provenance import seed_all
from nasbench.registry import SEARCHERS, SPACES
from nasbench.runner import search_autocast
from nasbench.searchers.base import Searcher
from nasbench.searchers.mixers import PathMixer
from nasbench.searchers.random import RandomSearch
from nasbench.searchers.randomws import RandomWeightSharing

from .conftest import measure

# Forward-equivalent passes per step, a backward counted as two forwards: first order makes one
# forward and backward for alpha and one for w (2 x 3); second order adds the virtual step's forward
# and backward, the forward and backward at the virtual weights, and two gradient evaluations for the
# finite difference (5 forwards + 5 backwards = 15).
# With share_train_grad, darts2 drops one forward and backward (12). With hvp=forward, the two
# finite-difference passes become one whose forward and backward also carry the tangent: twice the
# multiply-adds of each, so the same 15. Random search trains one network and
# random search with weight sharing one single path of the supernet (3 each).
# The samplers are first order (6); GDAS' forward computes one sampled op per edge, which its count reflects.
# checkpoint_cells recomputes the cells' forward pass in each of darts1's two backward passes (8).
PASSES = {
    "darts1": 6,
    "darts1-checkpointed": 8,
    "pcdarts": 6,
    "darts2": 15,
    "darts2-shared": 12,
    "darts2-forward": 15,
    "randomws": 3,
    "random": 3,
}
PASSES.update(gdas=6, snas=6, drnas=6)
# The anti-collapse methods change a loss, a derivation or the mixing weights of a first-order step (6);
# SDARTS-ADV adds its attack: a forward pass before and one after, and a forward and backward per PGD step.
PASSES.update(
    dict.fromkeys(("betadarts", "darts-minus", "darts-pt", "fairdarts", "rdarts-l2", "sdarts-rs", "tempered"), 6)
)
PASSES["sdarts-adv"] = 6 + 2 + 3 * SEARCHERS.get("sdarts-adv").config_cls().perturb_steps


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


def forward_macs(s: Searcher, train) -> float:
    """Multiply-adds of one forward pass of what a step trains: the supernet, the single path that random
    search with weight sharing trains (its probe genotype stands in for the sampled one), or the network
    that random search is training."""
    if isinstance(s, RandomWeightSharing):
        with s.supernet.mixed_by(PathMixer(s.supernet, s.probe)):
            return forward_mult_adds(lambda: s.supernet.loss(train))
    net = s.net if isinstance(s, RandomSearch) else s.model
    assert net is not None
    return forward_mult_adds(lambda: net.loss(train))


def step_benchmark(benchmark, key, searcher, space, preset, device, matmul_gflops, rounds, passes=None, **sets):
    s, (train, val) = build(searcher, space, preset, device, **sets)
    if isinstance(s, RandomSearch):
        s.step(train, val)  # builds the first sample's network, whose size the multiply-adds need
    macs = forward_macs(s, train) * PASSES[passes or searcher]
    samples = batch_samples(train) + (batch_samples(val) if val is not None else 0)

    def step() -> None:
        with search_autocast(s.cfg.train.autocast, device):  # as the runner steps: under the autocast setting
            s.step(train, val)

    measure(benchmark, key, step, device, matmul_gflops, macs, rounds, samples=samples)


SMALL = [(s, p) for s in SEARCHERS.names() for p in SPACES.names()]


@pytest.mark.parametrize("searcher,space", SMALL)
def test_search_step_small(benchmark, searcher, space, device, matmul_gflops):
    step_benchmark(benchmark, f"step/{searcher}-{space}-small", searcher, space, "small", device, matmul_gflops, 3)


@pytest.mark.paper_shape
@pytest.mark.parametrize("autocast", ["off", "bf16"])
@pytest.mark.parametrize("searcher", ["darts1", "darts2", "pcdarts"])
def test_search_step_paper_shape(benchmark, searcher, autocast, device, matmul_gflops):
    """Batch 64, 16 channels, 8 cells (Liu et al. 2019, A.1.1), PC-DARTS at the same batch for the memory ratio;
    in float32 and, on a GPU, under bfloat16 autocast (whose multiply-adds and matmul fraction stay counted
    against float32)."""
    if autocast != "off" and device.type != "cuda":
        pytest.skip(f"autocast={autocast} is benchmarked on a GPU only (the suite refuses it for channels-last images)")
    key = f"step/{searcher}-cnn-paper" + ("" if autocast == "off" else f"-{autocast}")
    step_benchmark(
        benchmark, key, searcher, "cnn", "paper", device, matmul_gflops, 2, batch_size="64", autocast=autocast
    )


@pytest.mark.paper_shape
def test_darts2_step_sharing_the_training_gradient(benchmark, device, matmul_gflops):
    """darts2 with share_train_grad=true (the weight step reuses the virtual step's gradient), paper shape."""
    step_benchmark(
        benchmark,
        "step/darts2-shared-cnn-paper",
        "darts2",
        "cnn",
        "paper",
        device,
        matmul_gflops,
        2,
        passes="darts2-shared",
        batch_size="64",
        share_train_grad="true",
    )


@pytest.mark.paper_shape
def test_darts2_step_with_the_forward_mode_product(benchmark, device, matmul_gflops):
    """darts2 with hvp=forward (the exact Hessian-vector product in one tangent-carrying pass), paper shape."""
    step_benchmark(
        benchmark,
        "step/darts2-forward-cnn-paper",
        "darts2",
        "cnn",
        "paper",
        device,
        matmul_gflops,
        2,
        passes="darts2-forward",
        batch_size="64",
        hvp="forward",
    )


# darts1 at the paper shape with a speed or memory setting that is on by default turned off: the before of
# that change (its summary key, the setting). The recomputed depthwise outputs' extra depthwise
# convolutions are not counted as work.
DARTS1_BEFORE = {
    "nchw": ("step/darts1-cnn-paper-nchw", "channels_last"),
    "kept-depthwise": ("step/darts1-kept-depthwise-cnn-paper", "recompute_depthwise"),
}


@pytest.mark.paper_shape
@pytest.mark.parametrize("before", list(DARTS1_BEFORE))
def test_darts1_step_before_a_default(benchmark, before, device, matmul_gflops):
    key, setting = DARTS1_BEFORE[before]
    step_benchmark(
        benchmark, key, "darts1", "cnn", "paper", device, matmul_gflops, 2, batch_size="64", **{setting: "false"}
    )


@pytest.mark.paper_shape
def test_darts1_step_with_checkpointed_cells(benchmark, device, matmul_gflops):
    """darts1 at the paper shape with checkpoint_cells=true: memory traded for a recomputed forward pass."""
    step_benchmark(
        benchmark,
        "step/darts1-checkpointed-cnn-paper",
        "darts1",
        "cnn",
        "paper",
        device,
        matmul_gflops,
        2,
        passes="darts1-checkpointed",
        batch_size="64",
        checkpoint_cells="true",
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
