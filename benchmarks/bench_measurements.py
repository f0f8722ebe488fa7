"""The suite's own measurements and the evaluation network: the Hessian eigenvalue and one training step."""

from __future__ import annotations

from itertools import islice

import torch

from nasbench.config import resolve_config
from nasbench.data import builtin_path
from nasbench.data.cifar10 import ImageStream, load_cifar10
from nasbench.metrics.collapse import supernet_hessian_eigenvalue
from nasbench.metrics.flops import forward_mult_adds
from nasbench.provenance import seed_all
from nasbench.registry import SEARCHERS, SPACES
from nasbench.spaces.cnn import PUBLISHED
from nasbench.spaces.cnn_network import CnnNetwork

from .conftest import measure


def test_hessian_eigenvalue_small_cnn(benchmark, device, matmul_gflops):
    """10 Lanczos steps on one architecture-split batch of the small CNN supernet (the per-epoch default)."""
    space = SPACES.get("cnn")()
    cfg = resolve_config(
        SEARCHERS.get("darts1"),
        space,
        searcher="darts1",
        preset="small",
        seed=0,
        device=str(device),
        data=None,
        train_flags={},
        set_pairs={},
    )
    seed_all(0)
    data = space.load_data(None, cfg, device, 0)
    model = SEARCHERS.get("darts1")(space, cfg, data, device).model
    assert model is not None
    batches = list(islice(data.score.epoch(0), 1))
    macs = forward_mult_adds(lambda: model.loss(batches[0]))
    measure(
        benchmark,
        "hessian/cnn-small",
        lambda: supernet_hessian_eigenvalue(model, batches, iters=10, tol=0.0),
        device,
        matmul_gflops,
        macs * 10 * 4,
        2,
        note="mult-adds: 10 Hessian-vector products, each ~4 forwards",
    )


def test_eval_network_train_step(benchmark, device, matmul_gflops):
    """One SGD step of DARTS_V2's evaluation network at the small eval preset's shape (8 cells, 16 channels,
    batch 64, auxiliary head, channels-last batches as in `nasbench eval`)."""
    images, labels = load_cifar10(builtin_path("cifar10-mini"))
    stream = ImageStream(images.to(device), labels.to(device), 64, seed=0, stream=0, train=True, channels_last=True)
    batch = next(stream.epoch(0))
    torch.manual_seed(0)
    net = CnnNetwork(PUBLISHED["DARTS_V2"], channels=16, layers=8, num_classes=10, auxiliary=True).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=0.025, momentum=0.9, weight_decay=3e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        net.loss(batch).backward()
        opt.step()

    macs = forward_mult_adds(lambda: net(batch[0])) * 3
    measure(benchmark, "eval_step/darts_v2-small", step, device, matmul_gflops, macs, 3, samples=64)
