"""A depthwise convolution followed by a 1x1 convolution, as one autograd node that keeps only the input.

Autograd keeps a 1x1 convolution's input (here the depthwise output) for its weight gradient, and keeps it
even in a pass that needs no weight gradient (PyTorch saves it unconditionally). In the DARTS CNN space every
separable and dilated convolution has one or two such pairs, so these depthwise outputs are a large share of
what a supernet step holds between its forward and backward passes. ``separable_conv2d`` keeps the
depthwise input instead, which the preceding ReLU keeps anyway, and recomputes the depthwise output in the
backward pass only where the 1x1 weight gradient needs it: one depthwise convolution more per pair in a pass
for the weights, none in a pass for the architecture alone.

Values and all first derivatives are bit for bit those of ``depthwise_conv2d`` followed by ``F.conv2d`` (the
same kernels in the same order: the 1x1 convolution's input gradient is PyTorch's own backward call, given
an uninitialised stand-in of the input's shape and layout where the input itself is not recomputed, which
that call reads only for its shape). The backward is made of differentiable calls, so second derivatives
(Hessian-vector products) and forward-mode derivatives work as through the two layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeGuard

import torch
import torch.nn.functional as F
from torch import nn

from nasbench.spaces.depthwise_conv import DepthwiseConv2d, depthwise_conv2d, depthwise_conv2d_backward

_POINTWISE = ([1, 1], [0, 0], [1, 1], False, [0, 0], 1)  # stride, padding, dilation, transposed, output padding, groups


def _layout(t: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if t.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


class _SeparableConv(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, w_depth: torch.Tensor, w_point: torch.Tensor, conf: tuple[Any, ...]
    ) -> torch.Tensor:
        h = depthwise_conv2d(x, w_depth, *conf)
        ctx.save_for_backward(x, w_depth, w_point)
        ctx.save_for_forward(x, w_depth, w_point)
        y = F.conv2d(h, w_point)
        ctx.conf, ctx.h_shape, ctx.h_layout, ctx.dtype = conf, h.shape, _layout(h), y.dtype
        return y

    @staticmethod
    def jvp(
        ctx: Any, x_t: torch.Tensor | None, w_depth_t: torch.Tensor | None, w_point_t: torch.Tensor | None, _: None
    ) -> torch.Tensor:
        # y = P(D(x)), bilinear at each stage: the product rule, D's tangent from both of its arguments
        x, w_depth, w_point = ctx.saved_tensors
        h_parts = []
        if x_t is not None:
            h_parts.append(depthwise_conv2d(x_t, w_depth, *ctx.conf))
        if w_depth_t is not None:
            h_parts.append(depthwise_conv2d(x, w_depth_t, *ctx.conf))
        parts = [F.conv2d(sum(h_parts[1:], h_parts[0]), w_point)] if h_parts else []
        if w_point_t is not None:
            parts.append(F.conv2d(depthwise_conv2d(x, w_depth, *ctx.conf), w_point_t))
        return parts[0] if len(parts) == 1 else parts[0] + parts[1]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        need_x, need_depth, need_point = ctx.needs_input_grad[:3]
        need_h = need_x or need_depth
        # in the precision the forward pass computed in (bfloat16 under autocast), whatever autocast says now
        with torch.autocast(grad.device.type, enabled=False):
            x, w_depth, w_point, grad = (t.to(ctx.dtype) for t in (*ctx.saved_tensors, grad))
            if need_point:  # the weight gradient reads the depthwise output: recompute it
                h = depthwise_conv2d(x, w_depth, *ctx.conf)
            else:  # the input gradient reads only the input's shape and layout
                h = torch.empty(ctx.h_shape, dtype=grad.dtype, device=grad.device, memory_format=ctx.h_layout)
            grad_h, grad_point, _ = torch.ops.aten.convolution_backward(
                grad, h, w_point, None, *_POINTWISE, [need_h, need_point, False]
            )
            grad_x = grad_depth = None
            if need_h:
                grad_x, grad_depth = depthwise_conv2d_backward(grad_h, x, w_depth, ctx.conf, need_x, need_depth)
        return grad_x, grad_depth, grad_point, None


def separable_conv2d(
    x: torch.Tensor,
    w_depth: torch.Tensor,
    w_point: torch.Tensor,
    stride: Sequence[int],
    padding: Sequence[int],
    dilation: Sequence[int],
) -> torch.Tensor:
    """``F.conv2d(depthwise_conv2d(x, w_depth, stride, padding, dilation), w_point)`` for a 1x1 ``w_point``
    [out, in, 1, 1], keeping only ``x`` and the weights for the backward pass; each argument a pair."""
    if w_point.dim() != 4 or w_point.shape[2:] != (1, 1) or w_point.shape[1] != w_depth.shape[0]:
        raise ValueError(
            f"separable_conv2d needs a 1x1 convolution over the depthwise output's {w_depth.shape[0]} channels, "
            f"got a weight of shape {tuple(w_point.shape)}"
        )
    return _SeparableConv.apply(x, w_depth, w_point, (tuple(stride), tuple(padding), tuple(dilation)))


class ConvChain(nn.Sequential):
    """``nn.Sequential`` (the same modules and parameter names) in which, with ``recompute`` on, each depthwise
    convolution followed by a 1x1 convolution runs as one ``separable_conv2d``."""

    recompute = True  # set per module by ``recompute_depthwise``

    def forward(self, x: torch.Tensor, upto: int | None = None) -> torch.Tensor:
        """The layers up to (not including) ``upto``, all by default."""
        layers = list(self)[:upto]
        i = 0
        while i < len(layers):
            layer, following = layers[i], layers[i + 1] if i + 1 < len(layers) else None
            if (
                self.recompute
                and isinstance(layer, DepthwiseConv2d)
                and following is not None
                and _is_pointwise(following)
            ):
                x = separable_conv2d(x, layer.weight, following.weight, *layer.conf)
                i += 2
            else:
                x = layer(x)
                i += 1
        return x


def recompute_depthwise(module: nn.Module, on: bool) -> None:
    """Whether every ``ConvChain`` in ``module`` recomputes its depthwise outputs (True) or keeps them."""
    for m in module.modules():
        if isinstance(m, ConvChain):
            m.recompute = on


def _is_pointwise(layer: nn.Module) -> TypeGuard[nn.Conv2d]:
    return (
        isinstance(layer, nn.Conv2d)
        and layer.kernel_size == (1, 1)
        and layer.stride == (1, 1)
        and layer.groups == 1
        and layer.bias is None
    )
