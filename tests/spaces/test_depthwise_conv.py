"""The depthwise convolution with a hand-written backward against PyTorch's own grouped convolution."""

import pytest
import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch import nn

from nasbench.spaces.depthwise_conv import DepthwiseConv2d, depthwise_conv2d

# (kernel, padding, dilation) of sep_conv_3x3, sep_conv_5x5, dil_conv_3x3, dil_conv_5x5
SHAPES = [(3, 1, 1), (5, 2, 1), (3, 2, 2), (5, 4, 2)]
CONF = ((2, 2), (2, 2), (2, 2))  # stride, padding, dilation of a stride-2 dil_conv_3x3


def pair(kernel, padding, dilation, stride, dtype=torch.float64):
    """A DepthwiseConv2d and a native nn.Conv2d holding the same weight."""
    torch.manual_seed(0)
    ours = DepthwiseConv2d(3, kernel, stride, padding, dilation).to(dtype)
    native = nn.Conv2d(3, 3, kernel, stride, padding, dilation=dilation, groups=3, bias=False).to(dtype)
    native.weight.data.copy_(ours.weight.data)
    return ours, native


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize(("kernel", "padding", "dilation"), SHAPES)
@pytest.mark.parametrize("size", [6, 7])  # an odd size: the strided transpose must add the dropped row back
def test_values_and_first_gradients_match_the_native_conv(kernel, padding, dilation, stride, size, dtype):
    ours, native = pair(kernel, padding, dilation, stride, dtype)
    x = torch.randn(2, 3, size, size, dtype=dtype).contiguous(memory_format=torch.channels_last).requires_grad_()
    y_ours, y_native = ours(x), native(x)
    grad = torch.randn_like(y_native)
    got = torch.autograd.grad(y_ours, (x, ours.weight), grad)
    want = torch.autograd.grad(y_native, (x, native.weight), grad)
    assert torch.equal(y_ours, y_native)
    assert torch.equal(got[1], want[1])
    if stride == 2:  # the transposed convolution: the native backward's own arithmetic
        assert torch.equal(got[0], want[0])
    else:  # the flipped kernel: the same sums in another order
        tol = 2e-6 if dtype == torch.float32 else 1e-14
        torch.testing.assert_close(got[0], want[0], rtol=tol, atol=tol * float(want[0].abs().max()))


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize(("kernel", "padding", "dilation"), SHAPES)
def test_second_derivatives_match_the_native_conv(kernel, padding, dilation, stride):
    """Hessian-vector products of a nonlinear loss through the layer, by double backward, in float64."""
    ours, native = pair(kernel, padding, dilation, stride)
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64, requires_grad=True)
    v_x, v_w = torch.randn_like(x), torch.randn_like(ours.weight)

    def hvp(layer):
        loss = torch.tanh(layer(x)).pow(2).sum()
        g = torch.autograd.grad(loss, (x, layer.weight), create_graph=True)
        return torch.autograd.grad((g[0] * v_x).sum() + (g[1] * v_w).sum(), (x, layer.weight))

    got, want = hvp(ours), hvp(native)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_forward_mode_derivative_is_the_product_rule():
    """The layer's forward-mode rule (used by forward-over-reverse products) against the conv's bilinearity."""
    ours, native = pair(3, 2, 2, 2)
    x, t_x = torch.randn(2, 3, 7, 7, dtype=torch.float64), torch.randn(2, 3, 7, 7, dtype=torch.float64)
    t_w = torch.randn_like(ours.weight)
    with fwAD.dual_level():
        dual = depthwise_conv2d(fwAD.make_dual(x, t_x), fwAD.make_dual(ours.weight.detach(), t_w), *CONF)
        got = fwAD.unpack_dual(dual).tangent
    want = F.conv2d(t_x, native.weight, None, 2, 2, 2, 3) + F.conv2d(x, t_w, None, 2, 2, 2, 3)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_gradgradcheck():
    ours, _ = pair(3, 2, 2, 2)
    x = torch.randn(1, 3, 7, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x, w: depthwise_conv2d(x, w, *CONF), (x, ours.weight))
