"""A depthwise convolution whose backward pass is itself made of single, differentiable convolutions.

Values and weight gradients are bit for bit those of ``nn.Conv2d(c, c, k, groups=c)``; input gradients
too at stride 2, and at stride 1 equal up to float rounding (another order of summation; within 2e-6
relative in float32 and 1e-14 in float64, as the tests check). PyTorch's generic double backward of a
grouped convolution runs one convolution per group (c + 1 calls for a depthwise layer, measured on torch
2.14), which makes a Hessian-vector product through the supernet about as costly as four search steps.
Here the input gradient is written as one depthwise convolution with the flipped kernel (stride 1) or
one grouped transposed convolution (stride 2), and the weight gradient as one ``convolution_backward``
call, so autograd differentiates those instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _output_padding(
    in_size: tuple[int, ...], out_size: tuple[int, ...], weight: torch.Tensor, conf: tuple[Any, ...]
) -> list[int]:
    """The rows/columns a strided convolution dropped, which its transpose must add back."""
    stride, padding, dilation = conf
    kernel = weight.shape[2:]
    return [
        i - ((o - 1) * s - 2 * p + d * (k - 1) + 1)
        for i, o, s, p, d, k in zip(in_size, out_size, stride, padding, dilation, kernel, strict=True)
    ]


def _flipped_padding(weight: torch.Tensor, conf: tuple[Any, ...]) -> list[int] | None:
    """The padding under which the input gradient is a depthwise forward convolution of the output gradient
    with the flipped kernel: dilation * (kernel - 1) - padding, at stride 1; None where that does not hold
    (a stride above 1, or a padding the rule would make negative). oneDNN's forward kernel ran 1.8 to 6.6
    times as fast as its transposed one here (2-core CPU, channels-last, the supernets' shapes;
    ``results/benchmarks/README.md``)."""
    stride, padding, dilation = conf
    flipped = [d * (k - 1) - p for p, d, k in zip(padding, dilation, weight.shape[2:], strict=True)]
    return flipped if all(s == 1 for s in stride) and min(flipped) >= 0 else None


def _conv(x: torch.Tensor, weight: torch.Tensor, conf: tuple[Any, ...]) -> torch.Tensor:
    stride, padding, dilation = conf
    return F.conv2d(x, weight, None, stride, padding, dilation, x.shape[1])


class _DepthwiseConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, conf: tuple[Any, ...]) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.save_for_forward(x, weight)
        ctx.conf = conf
        return _conv(x, weight, conf)

    @staticmethod
    def jvp(ctx: Any, x_tangent: torch.Tensor | None, w_tangent: torch.Tensor | None, _: None) -> torch.Tensor:
        # bilinear in (x, weight): the product rule
        x, weight = ctx.saved_tensors
        parts = []
        if x_tangent is not None:
            parts.append(_conv(x_tangent, weight, ctx.conf))
        if w_tangent is not None:
            parts.append(_conv(x, w_tangent, ctx.conf))
        return parts[0] if len(parts) == 1 else parts[0] + parts[1]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        x, weight = ctx.saved_tensors
        grad_x, grad_w = depthwise_conv2d_backward(grad, x, weight, ctx.conf, *ctx.needs_input_grad[:2])
        return grad_x, grad_w, None


def depthwise_conv2d_backward(
    grad: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, conf: tuple[Any, ...], need_x: bool, need_w: bool
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The input and weight gradients (each None where not needed) of ``depthwise_conv2d(x, weight, *conf)``
    for the output gradient ``grad``, as single differentiable convolutions."""
    stride, padding, dilation = conf
    grad_x = grad_w = None
    if need_x:
        flipped_padding = _flipped_padding(weight, conf)
        if flipped_padding is not None:
            grad_x = depthwise_conv2d(grad, weight.flip(2, 3), (1, 1), flipped_padding, dilation)
        else:
            extra = _output_padding(tuple(x.shape[2:]), tuple(grad.shape[2:]), weight, conf)
            grad_x = F.conv_transpose2d(grad, weight, None, stride, padding, extra, x.shape[1], dilation)
    if need_w:
        grad_w = torch.ops.aten.convolution_backward(
            grad, x, weight, None, stride, padding, dilation, False, [0, 0], x.shape[1], [False, True, False]
        )[1]
    return grad_x, grad_w


def depthwise_conv2d(
    x: torch.Tensor, weight: torch.Tensor, stride: Sequence[int], padding: Sequence[int], dilation: Sequence[int]
) -> torch.Tensor:
    """``F.conv2d(x, weight, None, stride, padding, dilation, groups=channels)``; each argument a pair."""
    return _DepthwiseConv.apply(x, weight, (tuple(stride), tuple(padding), tuple(dilation)))


class DepthwiseConv2d(nn.Conv2d):
    """``nn.Conv2d(c, c, kernel, groups=c, bias=False)`` with the cheap double backward above."""

    def __init__(self, channels: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> None:
        super().__init__(channels, channels, kernel, stride, padding, dilation=dilation, groups=channels, bias=False)
        self.conf = ((stride, stride), (padding, padding), (dilation, dilation))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depthwise_conv2d(x, self.weight, *self.conf)
