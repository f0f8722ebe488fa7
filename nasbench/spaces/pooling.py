"""2-d max and average pooling that keep for their backward pass only what it reads.

PyTorch's pooling keeps its whole input for the backward pass, although the average's backward reads
only the input's shape and the maximum's only the positions of the maxima (which max pooling keeps too,
as int64). Kept input matters beyond its own size: a supernet pools a node's channels as a view of the
node, so the view keeps the whole node alive (with partial channels, K times what is pooled).

Here the average keeps nothing and the maximum only the positions. Values and gradients (first, second
and forward-mode) are bit for bit PyTorch's: values and positions come from its forward functions, and
the backward passes are its own, given the input's shape and the positions (the tests compare all of
them, ties included). Keeping the positions in fewer bytes (a position's distance from its window's
corner fits one byte) saved another 4 % of darts1's kept tensors at the paper's shape, but the
conversions made a stride-1 max pooling about twice as slow, forward and backward; it is not done.

PyTorch's CPU max pooling is slow on NCHW tensors: forward and backward of a 3x3 stride-1 pool of a
64 x C x H x W batch took 1.5x (C = 4, 32 x 32) to 3.5x (C = 16, 8 x 8) as long as a copy to channels-last,
the pool there and a copy back. So an NCHW input on a CPU is pooled channels-last and its output and
gradient are handed back in NCHW; values, positions and gradients are the same bit for bit.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _remember_input(ctx: Any, x: torch.Tensor, kernel: int, stride: int, padding: int) -> None:
    """The settings, and the input's shape and the layout PyTorch gives its gradient: the input's own, or
    for a view in neither layout (a channel slice of a node) the one its strides resemble, as
    ``empty_like`` picks it (from an unwritten tensor, which holds no memory on a CPU)."""
    ctx.conf = (kernel, stride, padding)
    dense = x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last)
    like = x if dense else torch.empty_like(x)
    ctx.in_shape, ctx.channels_last = x.shape, like.is_contiguous(memory_format=torch.channels_last)


def _shape_only(ctx: Any, like: torch.Tensor) -> torch.Tensor:
    """A tensor of the pooled input's shape, layout and type that nothing writes. On a CPU its pages are
    never touched, so it holds no memory; CUDA's allocator reserves it for the one backward call."""
    layout = torch.channels_last if ctx.channels_last else torch.contiguous_format
    return torch.empty(ctx.in_shape, dtype=like.dtype, device=like.device, memory_format=layout)


def _pooled_channels_last(x: torch.Tensor) -> bool:
    """Whether max pooling should run ``x`` through channels-last: a 4-d NCHW tensor on a CPU (see above)."""
    nchw = x.dim() == 4 and x.is_contiguous() and not x.is_contiguous(memory_format=torch.channels_last)
    return nchw and x.device.type == "cpu"


class _IndexedMaxPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
        _remember_input(ctx, x, kernel, stride, padding)
        ctx.via_channels_last = _pooled_channels_last(x)
        if ctx.via_channels_last:  # the backward kernel then runs channels-last as well
            x, ctx.channels_last = x.contiguous(memory_format=torch.channels_last), True
        out, positions = F.max_pool2d(x, kernel, stride, padding, return_indices=True)
        ctx.save_for_backward(positions)
        ctx.save_for_forward(positions)
        return out.contiguous() if ctx.via_channels_last else out

    @staticmethod
    def jvp(ctx: Any, x_tangent: torch.Tensor, *_: Any) -> torch.Tensor:
        # the output is the input taken at the maxima: so is its tangent
        (positions,) = ctx.saved_tensors
        return x_tangent.flatten(2).gather(2, positions.flatten(2)).view_as(positions)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        kernel, stride, padding = ctx.conf
        (positions,) = ctx.saved_tensors
        if ctx.via_channels_last:
            grad = grad.contiguous(memory_format=torch.channels_last)
        grad_x = torch.ops.aten.max_pool2d_with_indices_backward(
            grad, _shape_only(ctx, grad), [kernel] * 2, [stride] * 2, [padding] * 2, [1, 1], False, positions
        )
        return (grad_x.contiguous() if ctx.via_channels_last else grad_x), None, None, None


class _ShapeOnlyAvgPool(torch.autograd.Function):
    """Average pooling without padded positions in the count (DARTS' ``count_include_pad=False``)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
        _remember_input(ctx, x, kernel, stride, padding)
        return F.avg_pool2d(x, kernel, stride, padding, count_include_pad=False)

    @staticmethod
    def jvp(ctx: Any, x_tangent: torch.Tensor, *_: Any) -> torch.Tensor:
        kernel, stride, padding = ctx.conf
        return F.avg_pool2d(x_tangent, kernel, stride, padding, count_include_pad=False)  # linear

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        kernel, stride, padding = ctx.conf
        grad_x = torch.ops.aten.avg_pool2d_backward(
            grad, _shape_only(ctx, grad), [kernel] * 2, [stride] * 2, [padding] * 2, False, False, None
        )
        return grad_x, None, None, None


def max_pool2d(x: torch.Tensor, kernel: int, stride: int, padding: int = 0) -> torch.Tensor:
    """``F.max_pool2d(x, kernel, stride, padding)`` over [B, C, H, W]."""
    return _IndexedMaxPool.apply(x, kernel, stride, padding)


def avg_pool2d(x: torch.Tensor, kernel: int, stride: int, padding: int = 0) -> torch.Tensor:
    """``F.avg_pool2d(x, kernel, stride, padding, count_include_pad=False)`` over [B, C, H, W]."""
    return _ShapeOnlyAvgPool.apply(x, kernel, stride, padding)


class Pool2d(nn.Module):
    """``nn.MaxPool2d`` or ``nn.AvgPool2d(..., count_include_pad=False)`` with the lean backward passes above."""

    def __init__(self, kind: str, kernel: int, stride: int, padding: int = 0) -> None:
        super().__init__()
        pools = {"max": max_pool2d, "avg": avg_pool2d}
        if kind not in pools:
            raise ValueError(f"pooling kind {kind!r}: expected one of {sorted(pools)}")
        self.kind, self.pool = kind, pools[kind]
        self.kernel, self.stride, self.padding = kernel, stride, padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x, self.kernel, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"{self.kind}, kernel={self.kernel}, stride={self.stride}, padding={self.padding}"
