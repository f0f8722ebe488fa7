"""The lean pooling against PyTorch's: values, gradients of every order, ties, layouts, what it keeps."""

import functools

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F

from nasbench.spaces import cnn_cells, pooling
from nasbench.spaces.pooling import Pool2d, avg_pool2d, max_pool2d
from nasbench.testing import build
from tests.conftest import saved_bytes

# (kernel, stride, padding): DARTS' 3x3 pools at both strides, PC-DARTS' 2x2 reduction of the bypass
CONFIGS = [(3, 1, 1), (3, 2, 1), (2, 2, 0)]
# ours against PyTorch's
POOLS = {
    "max": (max_pool2d, F.max_pool2d),
    "avg": (avg_pool2d, functools.partial(F.avg_pool2d, count_include_pad=False)),
}


def inputs(channels_last: bool, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """ReLU outputs, as the supernet pools them: many zeros, so many windows with tied maxima; odd sizes."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 7, 9, generator=g, dtype=dtype).relu()
    x[0, 0] = 1.0  # a plane where every window is a tie
    x = x.round(decimals=1)  # ties between non-zero values too
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@pytest.mark.parametrize("kind", POOLS)
@pytest.mark.parametrize("conf", CONFIGS)
@pytest.mark.parametrize("channels_last", [False, True])
def test_values_and_gradients_are_pytorchs_bit_for_bit(kind, conf, channels_last):
    x = inputs(channels_last)
    ours_x, theirs_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours, theirs = (pool(t, *conf) for pool, t in zip(POOLS[kind], (ours_x, theirs_x), strict=True))
    assert torch.equal(ours, theirs)
    upstream = torch.randn(theirs.shape, generator=torch.Generator().manual_seed(1))
    (g_ours,) = torch.autograd.grad(ours, ours_x, upstream)
    (g_theirs,) = torch.autograd.grad(theirs, theirs_x, upstream)
    assert torch.equal(g_ours, g_theirs)
    assert g_ours.is_contiguous(memory_format=torch.channels_last) == channels_last


@pytest.mark.parametrize("kind", POOLS)
def test_a_channel_slice_gets_pytorchs_gradient_layout(kind):
    """PC-DARTS pools the first C/K channels of a channels-last node: a view in neither layout."""
    node = inputs(channels_last=True)
    grads = []
    for pool in POOLS[kind]:
        part = node[:, :2].requires_grad_()
        out = pool(part, 3, 1, 1)
        (grad,) = torch.autograd.grad(out, part, torch.ones_like(out))
        grads.append(grad)
    ours, theirs = grads
    assert torch.equal(ours, theirs) and ours.stride() == theirs.stride()


@pytest.mark.parametrize("kind", POOLS)
@pytest.mark.parametrize("conf", CONFIGS)
def test_second_order_and_forward_mode_are_pytorchs(kind, conf):
    """What the Hessian eigenvalue (double backward) and darts2's ``hvp=forward`` (forward over reverse) need."""
    x = inputs(False, torch.float64)
    g = torch.Generator().manual_seed(2)
    out_shape = F.max_pool2d(x, *conf).shape
    upstream = torch.randn(out_shape, generator=g, dtype=torch.float64)
    probe, tangent = (torch.randn(x.shape, generator=g, dtype=torch.float64) for _ in range(2))
    results = []
    for pool in POOLS[kind]:
        xi, ui = x.clone().requires_grad_(), upstream.clone().requires_grad_()
        (gx,) = torch.autograd.grad(pool(xi, *conf), xi, ui, create_graph=True)
        (second,) = torch.autograd.grad((gx * probe).sum(), ui)
        with fwAD.dual_level():
            out_tangent = fwAD.unpack_dual(pool(fwAD.make_dual(x, tangent), *conf)).tangent
            xi = x.clone().requires_grad_()
            dual_up = fwAD.make_dual(upstream, torch.ones_like(upstream))
            (gx_dual,) = torch.autograd.grad(pool(xi, *conf), xi, dual_up)
            grad_tangent = fwAD.unpack_dual(gx_dual).tangent
        results.append((second, out_tangent, grad_tangent))
    for ours, theirs in zip(*results, strict=True):
        assert torch.equal(ours, theirs)
    untied = torch.randn(x.shape, generator=g, dtype=torch.float64, requires_grad=True)  # ties have no derivative
    assert torch.autograd.gradgradcheck(lambda t: POOLS[kind][0](t, *conf), (untied,))


def test_an_nchw_max_pooling_runs_channels_last_and_hands_back_nchw(monkeypatch):
    """PyTorch's CPU max pooling is several times slower on NCHW: NCHW inputs are pooled channels-last."""
    layouts, pool = [], F.max_pool2d

    def recording(t, *args, **kwargs):
        layouts.append(t.is_contiguous(memory_format=torch.channels_last))
        return pool(t, *args, **kwargs)

    monkeypatch.setattr(pooling.F, "max_pool2d", recording)
    for channels_last in (False, True):
        x = inputs(channels_last).requires_grad_()
        out = max_pool2d(x, 3, 1, 1)
        (grad,) = torch.autograd.grad(out, x, torch.ones_like(out))
        for t in (out, grad):  # handed back in the input's own layout
            assert t.is_contiguous(memory_format=torch.channels_last) == channels_last
            assert t.is_contiguous() != channels_last
    assert layouts == [True, True]
    unbatched = torch.randn(3, 7, 9)  # [C, H, W]: no channels-last layout, pooled as PyTorch pools it
    assert torch.equal(max_pool2d(unbatched, 3, 1, 1), F.max_pool2d(unbatched, 3, 1, 1))


@pytest.mark.parametrize("conf", CONFIGS)
def test_max_keeps_only_the_positions_and_avg_nothing(conf):
    x = torch.randn(4, 8, 16, 16)
    out = F.max_pool2d(x, *conf)
    pools = {f"{who} {kind}": pair[who == "theirs"] for kind, pair in POOLS.items() for who in ("ours", "theirs")}
    kept = {name: saved_bytes(lambda p=pool: p(x.clone().requires_grad_(), *conf)) for name, pool in pools.items()}
    assert kept == {
        "ours max": 8 * out.numel(),  # int64 positions
        "theirs max": 4 * x.numel() + 8 * out.numel(),  # and the float32 input
        "ours avg": 0,
        "theirs avg": 4 * x.numel(),
    }


def test_a_partial_channel_supernet_no_longer_keeps_whole_nodes_for_its_pools(monkeypatch):
    """PC-DARTS pools a view of each node's first C/K channels: with PyTorch's pooling that view kept the node."""
    _, data, s = build("pcdarts", "cnn")
    batch = next(data.train.epoch(0))

    def weight_pass() -> None:
        with s.model.differentiating(s.weights):
            s.model.loss(batch)

    lean = saved_bytes(weight_pass)
    for m in s.model.modules():
        if isinstance(m, Pool2d):
            monkeypatch.setattr(m, "pool", POOLS[m.kind][1])
    monkeypatch.setattr(cnn_cells, "max_pool2d", F.max_pool2d)
    assert lean < 0.95 * saved_bytes(weight_pass)  # 0.86 at the tiny preset


def test_an_unknown_kind_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"pooling kind 'min': expected one of \['avg', 'max'\]"):
        Pool2d("min", 3, 1)
