"""2-d max and average pooling that keep for their backward pass only what it reads.

PyTorch's pooling keeps its whole input for the backward pass, and max pooling also the flat position of
every maximum as int64: three times the input's size at stride 1. Yet the average's backward reads only
the input's shape, and the maximum's only the positions, and a position within a window of at most
16 x 16 fits one byte. Kept input matters beyond its own size: a supernet pools a node's channels as a
view of the node, so the view keeps the whole node alive (with partial channels, K times what is pooled).

Here the average keeps nothing and the maximum one byte per output. Values and gradients (first, second
and forward-mode) are bit for bit PyTorch's: the values and positions come from its forward functions,
and the backward passes are its own, given the input's shape and the positions rebuilt from the bytes
(the tests compare all of them, ties included).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

_MAX_KERNEL = 16  # kernel * kernel window positions must fit a byte


def _shape_only(ctx: Any, like: torch.Tensor) -> torch.Tensor:
    """A tensor of the pooled input's shape, layout and type that nothing writes: it holds no memory."""
    layout = torch.channels_last if ctx.channels_last else torch.contiguous_format
    return torch.empty(ctx.in_shape, dtype=like.dtype, device=like.device, memory_format=layout)


def _remember_input(ctx: Any, x: torch.Tensor, kernel: int, stride: int, padding: int) -> None:
    ctx.conf = (kernel, stride, padding)
    ctx.in_shape, ctx.channels_last = x.shape, x.is_contiguous(memory_format=torch.channels_last)


def _window_origins(out_shape: torch.Size, stride: int, padding: int, device: torch.device) -> tuple[Any, Any]:
    """The top row [Ho, 1] and left column [Wo] of each output position's window, in input coordinates."""
    rows = torch.arange(out_shape[-2], device=device).unsqueeze(1) * stride - padding
    cols = torch.arange(out_shape[-1], device=device) * stride - padding
    return rows, cols


def _offsets(flat: torch.Tensor, width: int, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """Flat input positions (row * width + column) as positions within each output's window, uint8."""
    rows, cols = _window_origins(flat.shape, stride, padding, flat.device)
    return ((flat // width - rows) * kernel + (flat % width - cols)).to(torch.uint8)


def _positions(ctx: Any, offsets: torch.Tensor) -> torch.Tensor:
    """The inverse of ``_offsets``: flat input positions, int64, as PyTorch's max pooling returns them."""
    kernel, stride, padding = ctx.conf
    rows, cols = _window_origins(offsets.shape, stride, padding, offsets.device)
    within = offsets.long()
    return (rows + within // kernel) * ctx.in_shape[-1] + cols + within % kernel


class _CompactMaxPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
        out, flat = F.max_pool2d(x, kernel, stride, padding, return_indices=True)
        _remember_input(ctx, x, kernel, stride, padding)
        offsets = _offsets(flat, x.shape[-1], kernel, stride, padding)
        ctx.save_for_backward(offsets)
        ctx.save_for_forward(offsets)
        return out

    @staticmethod
    def jvp(ctx: Any, x_tangent: torch.Tensor, *_: Any) -> torch.Tensor:
        # the output is the input taken at the maxima: so is its tangent
        flat = _positions(ctx, *ctx.saved_tensors)
        return x_tangent.flatten(2).gather(2, flat.flatten(2)).view_as(flat)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        kernel, stride, padding = ctx.conf
        flat = _positions(ctx, *ctx.saved_tensors)
        grad_x = torch.ops.aten.max_pool2d_with_indices_backward(
            grad, _shape_only(ctx, grad), [kernel] * 2, [stride] * 2, [padding] * 2, [1, 1], False, flat
        )
        return grad_x, None, None, None


class _ShapeOnlyAvgPool(torch.autograd.Function):
    """Average pooling without padded positions in the count (DARTS' ``count_include_pad=False``)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, kernel: int, stride: int, padding: int) -> torch.Tensor:
        _remember_input(ctx, x, kernel, stride, padding)
        return F.avg_pool2d(x, kernel, stride, padding, count_include_pad=False)

    @staticmethod
    def jvp(ctx: Any, x_tangent: torch.Tensor, *_: Any) -> torch.Tensor:
        return F.avg_pool2d(x_tangent, *ctx.conf, count_include_pad=False)  # linear

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        kernel, stride, padding = ctx.conf
        grad_x = torch.ops.aten.avg_pool2d_backward(
            grad, _shape_only(ctx, grad), [kernel] * 2, [stride] * 2, [padding] * 2, False, False, None
        )
        return grad_x, None, None, None


def max_pool2d(x: torch.Tensor, kernel: int, stride: int, padding: int = 0) -> torch.Tensor:
    """``F.max_pool2d(x, kernel, stride, padding)`` over [B, C, H, W], keeping a byte per output."""
    if kernel > _MAX_KERNEL:
        raise ValueError(f"max_pool2d keeps a window position in a byte: kernel {kernel} > {_MAX_KERNEL}")
    return _CompactMaxPool.apply(x, kernel, stride, padding)


def avg_pool2d(x: torch.Tensor, kernel: int, stride: int, padding: int = 0) -> torch.Tensor:
    """``F.avg_pool2d(x, kernel, stride, padding, count_include_pad=False)`` over [B, C, H, W], keeping nothing."""
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
