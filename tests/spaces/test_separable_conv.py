"""The depthwise + 1x1 convolution pair that keeps only its input, against the two layers run one after the other."""

import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch import nn

from nasbench.spaces.depthwise_conv import DepthwiseConv2d
from nasbench.spaces.ops import dil_conv, sep_conv
from nasbench.spaces.separable_conv import ConvChain, separable_conv2d

# (kernel, padding, dilation) of sep_conv_3x3 and dil_conv_5x5, at stride 1 and 2
SHAPES = [(3, 1, 1, 1), (3, 1, 1, 2), (5, 4, 2, 1), (5, 4, 2, 2)]


def layers(kernel, padding, dilation, stride, dtype):
    torch.manual_seed(0)
    depthwise = DepthwiseConv2d(4, kernel, stride, padding, dilation).to(dtype)
    pointwise = nn.Conv2d(4, 6, 1, bias=False).to(dtype)
    return depthwise, pointwise


def fused_pair(x, depthwise, pointwise):
    return separable_conv2d(x, depthwise.weight, pointwise.weight, *depthwise.conf)


def inputs(dtype, channels_last=True):
    x = torch.randn(3, 4, 7, 7, dtype=dtype)
    return (x.contiguous(memory_format=torch.channels_last) if channels_last else x).requires_grad_()


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("kernel", "padding", "dilation", "stride"), SHAPES)
@pytest.mark.parametrize("wanted", ["all", "input", "weights"])
def test_values_and_gradients_are_bit_for_bit_those_of_the_two_layers(
    kernel, padding, dilation, stride, dtype, channels_last, wanted
):
    """Every subset of gradients a pass asks for: all (a weight pass), the input alone (a pass for alpha
    alone, where the depthwise output is not recomputed), the weights alone."""
    depthwise, pointwise = layers(kernel, padding, dilation, stride, dtype)
    x = inputs(dtype, channels_last)
    fused, plain = fused_pair(x, depthwise, pointwise), pointwise(depthwise(x))
    grad = torch.randn_like(plain)
    params = {"all": (x, depthwise.weight, pointwise.weight), "input": (x,)}.get(
        wanted, (depthwise.weight, pointwise.weight)
    )
    got = torch.autograd.grad(fused, params, grad)
    want = torch.autograd.grad(plain, params, grad)
    assert torch.equal(fused, plain)
    assert fused.is_contiguous(memory_format=torch.channels_last) == channels_last
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b)


def hvp(forward, x, params, vectors):
    """The Hessian of a nonlinear loss of forward(x) w.r.t. params, times vectors, by double backward."""
    loss = torch.tanh(forward(x)).pow(2).sum()
    grads = torch.autograd.grad(loss, params, create_graph=True)
    return torch.autograd.grad(sum((g * v).sum() for g, v in zip(grads, vectors, strict=True)), params)


@pytest.mark.parametrize(("kernel", "padding", "dilation", "stride"), SHAPES)
def test_second_derivatives_match_the_two_layers(kernel, padding, dilation, stride):
    """Hessian-vector products of a nonlinear loss through the pair, by double backward, in float64: to the
    input alone (the eigenvalue measurement's kind) and to the input and both weights."""
    depthwise, pointwise = layers(kernel, padding, dilation, stride, torch.float64)
    x = inputs(torch.float64)
    for params in ((x,), (x, depthwise.weight, pointwise.weight)):
        vectors = [torch.randn_like(p) for p in params]
        got = hvp(lambda x: fused_pair(x, depthwise, pointwise), x, params, vectors)
        want = hvp(lambda x: pointwise(depthwise(x)), x, params, vectors)
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_forward_mode_derivative_matches_the_two_layers():
    depthwise, pointwise = layers(5, 4, 2, 2, torch.float64)
    x = torch.randn(3, 4, 7, 7, dtype=torch.float64)
    primals = (x, depthwise.weight.detach(), pointwise.weight.detach())
    tangents = [torch.randn_like(p) for p in primals]

    def tangent(forward):
        with fwAD.dual_level():
            duals = [fwAD.make_dual(p, t) for p, t in zip(primals, tangents)]
            return fwAD.unpack_dual(forward(*duals)).tangent

    def fused(x, w_depth, w_point):
        return separable_conv2d(x, w_depth, w_point, *depthwise.conf)

    got = tangent(fused)
    want = tangent(
        lambda x, w_depth, w_point: nn.functional.conv2d(
            nn.functional.conv2d(x, w_depth, None, 2, 4, 2, groups=4), w_point
        )
    )
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_gradgradcheck():
    depthwise, pointwise = layers(3, 1, 1, 2, torch.float64)
    x = torch.randn(1, 4, 5, 5, dtype=torch.float64, requires_grad=True)
    w_depth, w_point = depthwise.weight, pointwise.weight

    def fused(x, w_depth, w_point):
        return separable_conv2d(x, w_depth, w_point, *depthwise.conf)

    assert torch.autograd.gradgradcheck(fused, (x, w_depth, w_point))


def saved_bytes(forward, x):
    """Bytes autograd keeps between the forward and the backward pass, counted by storage."""
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward(x)
    return sum(storages.values())


@pytest.mark.parametrize("build", [lambda: sep_conv(4, 3, 1, 1, False), lambda: dil_conv(4, 5, 2, 4, 2, False)])
def test_an_op_keeps_its_input_instead_of_the_depthwise_outputs(build):
    """sep_conv and dil_conv chain their convolutions this way: they keep less for the backward pass than
    the same modules run one by one, by at least the depthwise outputs, with the same gradients."""
    torch.manual_seed(0)
    op = build().double()
    assert isinstance(op, ConvChain)
    x = torch.relu(torch.randn(2, 4, 8, 8, dtype=torch.float64)).requires_grad_()
    depthwise_outputs = []
    hooks = [
        layer.register_forward_hook(lambda m, i, out: depthwise_outputs.append(out.untyped_storage().nbytes()))
        for layer in op
        if isinstance(layer, DepthwiseConv2d)
    ]
    plain = saved_bytes(lambda x: nn.Sequential.forward(op, x), x)
    for hook in hooks:
        hook.remove()
    assert len(depthwise_outputs) == sum(isinstance(layer, DepthwiseConv2d) for layer in op) > 0
    assert plain - saved_bytes(op, x) >= sum(depthwise_outputs)
    got = torch.autograd.grad(op(x).sum(), [x, *op.parameters()])
    want = torch.autograd.grad(nn.Sequential.forward(op, x).sum(), [x, *op.parameters()])
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b)


def test_refuses_a_weight_that_is_not_1x1():
    depthwise, _ = layers(3, 1, 1, 1, torch.float32)
    with pytest.raises(ValueError, match="1x1 convolution"):
        separable_conv2d(torch.randn(1, 4, 5, 5), depthwise.weight, torch.randn(4, 4, 3, 3), *depthwise.conf)
