"""The NAS-Bench-201 macro network and its discrete cell (Dong and Yang, ICLR 2020, sec. 2.1 and fig. 1).

Macro skeleton: a 3x3 conv + BN stem with C channels; three stages of N cells at C, 2C and 4C channels,
with a residual reduction block (the ResNet basic block, stride 2) between stages; then BN, ReLU,
global average pooling and a linear classifier. A cell keeps its input's shape: node 0 is the cell's
input, nodes 1..3 each sum one operation per edge from every earlier node, and node 3 is the output.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasbench.genotype import Genotype
from nasbench.spaces.base import ImageClassifier
from nasbench.spaces.ops import Zero, conv_bn
from nasbench.spaces.pooling import Pool2d

NB201_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
N_NODES = 4  # node 0 is the input, nodes 1..3 are computed; 6 edges
STAGES = 3


def relu_conv_bn(c: int, kernel: int, affine: bool) -> nn.Sequential:
    """The benchmark's ``nor_conv_KxK``: ReLU -> KxK conv (stride 1, same padding) -> BN, C -> C channels."""
    return nn.Sequential(nn.ReLU(), *conv_bn(c, c, kernel, 1, kernel // 2, affine))


def build_op(name: str, c: int, affine: bool) -> nn.Module:
    """One cell operation on [B, C, H, W] -> [B, C, H, W]."""
    if name == "none":
        return Zero(1)
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return relu_conv_bn(c, 1, affine)
    if name == "nor_conv_3x3":
        return relu_conv_bn(c, 3, affine)
    if name == "avg_pool_3x3":
        return Pool2d("avg", 3, stride=1, padding=1)  # without padded positions in the count, as NB201's code
    raise ValueError(f"unknown NAS-Bench-201 op {name!r}")


class ResidualReduction(nn.Module):
    """The ResNet basic block with stride 2 between stages: [B, C_in, H, W] -> [B, C_out, H/2, W/2]."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = nn.Sequential(nn.ReLU(), *conv_bn(c_in, c_out, 3, 2, 1, True))
        self.conv_b = nn.Sequential(nn.ReLU(), *conv_bn(c_out, c_out, 3, 1, 1, True))
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


class MacroNetwork(nn.Module):
    """Stem, three stages of cells built by ``make_cell(channels)``, residual reductions, and the head.

    ``forward(x, *cell_args)`` passes ``cell_args`` (the supernet's mixing weights or path) to every cell,
    through ``run_cell(cell, x, *cell_args)`` where one is given (a supernet's checkpointing).
    """

    def __init__(
        self, channels: int, cells_per_stage: int, num_classes: int, make_cell: Callable[[int], nn.Module]
    ) -> None:
        super().__init__()
        self.stem = conv_bn(3, channels, 3, 1, 1, True)
        layers: list[nn.Module] = []
        c = channels
        for stage in range(STAGES):
            if stage:
                layers.append(ResidualReduction(c, 2 * c))
                c *= 2
            layers.extend(make_cell(c) for _ in range(cells_per_stage))
        self.layers = nn.ModuleList(layers)
        self.head_bn = nn.BatchNorm2d(c)
        self.classifier = nn.Linear(c, num_classes)

    def forward(
        self, x: torch.Tensor, *cell_args: Any, run_cell: Callable[..., torch.Tensor] | None = None
    ) -> torch.Tensor:
        # x: [B, 3, H, W] -> logits [B, num_classes]; channels C -> 2C -> 4C, resolution H -> H/2 -> H/4
        x = self.stem(x)
        for layer in self.layers:
            if isinstance(layer, ResidualReduction):
                x = layer(x)
            else:
                x = run_cell(layer, x, *cell_args) if run_cell is not None else layer(x, *cell_args)
        x = F.relu(self.head_bn(x))
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))


class DiscreteCell(nn.Module):
    """The cell of one genotype: one op per edge; each node sums its incoming edges."""

    def __init__(self, genotype: Genotype, c: int) -> None:
        super().__init__()
        self.edges = genotype.cell("cell")
        self.ops = nn.ModuleList(build_op(e.op, c, affine=True) for e in self.edges)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, C, H, W] -> [B, C, H, W]
        states: dict[int, torch.Tensor] = {0: x}
        for edge, op in zip(self.edges, self.ops):
            y = op(states[edge.src])
            states[edge.dst] = states[edge.dst] + y if edge.dst in states else y
        return states[N_NODES - 1]


class Nb201Network(ImageClassifier):
    """The discrete network of a NAS-Bench-201 cell, at the search network's shape."""

    def __init__(self, genotype: Genotype, channels: int, cells_per_stage: int, num_classes: int) -> None:
        super().__init__()
        self.body = MacroNetwork(channels, cells_per_stage, num_classes, lambda c: DiscreteCell(genotype, c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
