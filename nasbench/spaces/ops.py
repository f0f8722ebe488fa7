"""The eight operations of the DARTS CNN space (Liu et al. 2019, sec. 3.1.1) and their building blocks.

Every operation that begins with a ReLU (the separable and dilated convolutions, and the factorised
reduction that ``skip_connect`` becomes on a stride-2 edge) is built *without* it and marked
``preact``: the cell applies ReLU once to each node's output and hands the result to all such
operations on all edges leaving that node, instead of recomputing it per operation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from nasbench.spaces.depthwise_conv import DepthwiseConv2d
from nasbench.spaces.pooling import Pool2d
from nasbench.spaces.separable_conv import ConvChain


class OpSpec(NamedTuple):
    build: Callable[[int, int, bool], nn.Module]  # (channels, stride, affine) -> module
    preact: bool  # takes relu(x) rather than x


class Zero(nn.Module):
    """The ``none`` operation: zeros of the output shape (only built in discrete networks)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class Noise(nn.Module):
    """RobustDARTS' ``noise`` op (S4): N(0, 1) noise of the output's shape, independent of the input."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.randn_like(x[:, :, :: self.stride, :: self.stride])


# oneDNN in torch 2.14.1 corrupts the heap when it computes the input gradient of a 1x1 stride-2 convolution
# over a channels-last input of 2 to 7 channels (measured on this project's 2-core AMD EPYC, AVX2: a crash
# at every such width, none at 1 nor at the widths tried from 8 to 24; the suite's tests never crashed on
# the Intel Xeon it also ran on). Narrower inputs take the stride-2 grid by indexing and convolve it with
# stride 1: the same values.
STRIDED_1X1_MIN_CHANNELS = 8


class FactorizedReduce(nn.Module):
    """Halve the resolution with two 1x1 stride-2 convolutions on offset grids; input is relu(x)."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True) -> None:
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even channel count, got {c_out}")
        self.conv_a = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, C_in, H, W] -> [B, C_out, H/2, W/2]
        if x.shape[1] >= STRIDED_1X1_MIN_CHANNELS:
            a, b = self.conv_a(x), self.conv_b(x[:, :, 1:, 1:])
        else:
            a, b = F.conv2d(x[:, :, ::2, ::2], self.conv_a.weight), F.conv2d(x[:, :, 1::2, 1::2], self.conv_b.weight)
        return self.bn(torch.cat([a, b], dim=1))


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool) -> nn.Sequential:
    """conv -> BN; with a ReLU in front (applied by the caller) it is DARTS' ReLUConvBN."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
        nn.BatchNorm2d(c_out, affine=affine),
    )


def dil_conv(c: int, kernel: int, stride: int, padding: int, dilation: int, affine: bool) -> nn.Sequential:
    """Depthwise dilated conv -> pointwise conv -> BN (input is relu(x)); the two convolutions keep only their
    input for the backward pass (``ConvChain``)."""
    return ConvChain(
        DepthwiseConv2d(c, kernel, stride, padding, dilation),
        nn.Conv2d(c, c, 1, bias=False),
        nn.BatchNorm2d(c, affine=affine),
    )


def sep_conv(c: int, kernel: int, stride: int, padding: int, affine: bool) -> nn.Sequential:
    """Two stacked depthwise-separable convolutions, the second with its own ReLU (input is relu(x))."""
    return ConvChain(
        *dil_conv(c, kernel, stride, padding, 1, affine),
        nn.ReLU(),
        *dil_conv(c, kernel, 1, padding, 1, affine),
    )


def _skip(c: int, stride: int, affine: bool) -> nn.Module:
    return nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine)


CNN_OPS: dict[str, OpSpec] = {
    "none": OpSpec(lambda c, s, a: Zero(s), preact=False),
    "max_pool_3x3": OpSpec(lambda c, s, a: Pool2d("max", 3, stride=s, padding=1), preact=False),
    "avg_pool_3x3": OpSpec(lambda c, s, a: Pool2d("avg", 3, stride=s, padding=1), preact=False),  # padding not counted
    "skip_connect": OpSpec(_skip, preact=False),  # stride 2: FactorizedReduce, which wants relu(x)
    "sep_conv_3x3": OpSpec(lambda c, s, a: sep_conv(c, 3, s, 1, a), preact=True),
    "sep_conv_5x5": OpSpec(lambda c, s, a: sep_conv(c, 5, s, 2, a), preact=True),
    "dil_conv_3x3": OpSpec(lambda c, s, a: dil_conv(c, 3, s, 2, 2, a), preact=True),
    "dil_conv_5x5": OpSpec(lambda c, s, a: dil_conv(c, 5, s, 4, 2, a), preact=True),
}
CNN_OP_NAMES: tuple[str, ...] = tuple(CNN_OPS)  # DARTS' eight
CNN_OPS["noise"] = OpSpec(lambda c, s, a: Noise(s), preact=False)  # RobustDARTS' S4 only (cnn_candidates.py)


def takes_relu(op: str, stride: int) -> bool:
    """Whether ``op`` on an edge of this stride consumes relu(x) instead of x."""
    return CNN_OPS[op].preact or (op == "skip_connect" and stride == 2)
