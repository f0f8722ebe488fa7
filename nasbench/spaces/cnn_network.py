"""The discrete networks of a DARTS CNN genotype (Liu et al. 2019, sec. 3.2 and A.2.3): CIFAR's evaluation
network and ImageNet's in the mobile setting.

The same macro structure as the search network, each edge now one operation, with optional drop-path
and the auxiliary head after the second reduction cell (sec. A.2: weight 0.4, drop-path 0.2). ImageNet's
network differs only in its stem (three stride-2 convolutions, so the first cell sees a reduced input)
and in its auxiliary head's pooling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasbench.genotype import Genotype
from nasbench.spaces.base import Network, classification_scores
from nasbench.spaces.ops import CNN_OPS, FactorizedReduce, conv_bn, takes_relu


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples with probability ``drop_prob`` and rescale the rest (x: [B, ...])."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], *([1] * (x.dim() - 1)), device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x * mask / keep


class DiscreteCell(nn.Module):
    def __init__(self, genotype: Genotype, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool):
        super().__init__()
        self.reduction = reduction
        cell = "reduce" if reduction else "normal"
        self.edges = genotype.cell(cell)
        self.concat = genotype.concat_of(cell)
        self.pre0 = FactorizedReduce(c_pp, c) if reduction_prev else conv_bn(c_pp, c, 1, 1, 0, True)
        self.pre1 = conv_bn(c_p, c, 1, 1, 0, True)
        strides = [2 if reduction and e.src < 2 else 1 for e in self.edges]
        self.ops = nn.ModuleList(CNN_OPS[e.op].build(c, s, True) for e, s in zip(self.edges, strides))
        self.relu_input = [takes_relu(e.op, s) for e, s in zip(self.edges, strides)]

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float) -> torch.Tensor:
        states: dict[int, torch.Tensor] = {0: self.pre0(F.relu(s0)), 1: self.pre1(F.relu(s1))}
        for edge, op, relu in zip(self.edges, self.ops, self.relu_input):
            x = states[edge.src]
            y = op(F.relu(x) if relu else x)
            if self.training and not isinstance(op, nn.Identity):
                y = drop_path(y, drop_prob)
            states[edge.dst] = states[edge.dst] + y if edge.dst in states else y
        return torch.cat([states[n] for n in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """Classifier on the feature map after the second reduction cell (reference code's layout): CIFAR's
    8x8 map pooled with stride 3 to 2x2; ImageNet's 7x7 map with stride 2, and there without the batch norm
    after the 2x2 convolution (the reference code leaves it out "for consistency with the experiments in
    the paper")."""

    def __init__(self, c: int, num_classes: int, pool_stride: int = 3, final_norm: bool = True) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(),
            nn.AvgPool2d(5, stride=pool_stride, padding=0, count_include_pad=False),  # -> 2x2
            nn.Conv2d(c, 128, 1, bias=False),
            nn.BatchNorm2d(128),
            nn.ReLU(),
            nn.Conv2d(128, 768, 2, bias=False),  # -> 1x1
            *([nn.BatchNorm2d(768)] if final_norm else []),
            nn.ReLU(),
        )
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class CnnNetwork(Network):
    """Stem, ``layers`` discrete cells (reductions at 1/3 and 2/3 depth), global pool, classifier.

    ``forward`` returns (logits, auxiliary logits or None); ``loss`` adds the auxiliary loss with
    ``auxiliary_weight`` (0.4 in the paper's evaluation, sec. A.2) when the head exists.
    """

    auxiliary_weight = 0.4
    label_smoothing = 0.0  # the training loss's (0.1 in the ImageNet evaluation, sec. A.2.3); tests score plainly

    def __init__(
        self,
        genotype: Genotype,
        channels: int,
        layers: int,
        num_classes: int,
        auxiliary: bool = False,
        stem_multiplier: int = 3,
    ) -> None:
        super().__init__()
        self.drop_path_prob = 0.0
        c_stem, reduction_prev = self.build_stem(channels, stem_multiplier)
        c_pp, c_p, c = c_stem, c_stem, channels
        cells = []
        self.aux_after = 2 * layers // 3
        self.auxiliary: AuxiliaryHead | None = None
        for layer in range(layers):
            reduction = layer in (layers // 3, 2 * layers // 3)
            if reduction:
                c *= 2
            cell = DiscreteCell(genotype, c_pp, c_p, c, reduction, reduction_prev)
            cells.append(cell)
            c_pp, c_p, reduction_prev = c_p, len(cell.concat) * c, reduction
            if auxiliary and layer == self.aux_after:
                self.auxiliary = self.auxiliary_head(c_p, num_classes)
        self.cells = nn.ModuleList(cells)
        self.classifier = nn.Linear(c_p, num_classes)

    def build_stem(self, channels: int, multiplier: int) -> tuple[int, bool]:
        """One 3x3 convolution to ``multiplier`` x ``channels``; returns (its channels, whether it reduced)."""
        self.stem = conv_bn(3, multiplier * channels, 3, 1, 1, True)
        return multiplier * channels, False

    def stems(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The first cell's two inputs."""
        s = self.stem(x)
        return s, s

    def auxiliary_head(self, c: int, num_classes: int) -> AuxiliaryHead:
        return AuxiliaryHead(c, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        # x: [B, 3, 32, 32] -> logits [B, num_classes]
        s0, s1 = self.stems(x)
        aux = None
        for layer, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if self.auxiliary is not None and self.training and layer == self.aux_after:
                aux = self.auxiliary(s1)
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1)), aux

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        images, labels = batch
        logits, aux = self(images)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.label_smoothing)
        if aux is None:
            return loss
        return loss + self.auxiliary_weight * F.cross_entropy(aux, labels, label_smoothing=self.label_smoothing)

    @torch.no_grad()
    def evaluate(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        images, labels = batch
        return classification_scores(self(images)[0], labels)


class ImageNetNetwork(CnnNetwork):
    """DARTS' ImageNet network (sec. A.2.3, reference ``NetworkImageNet``): two stride-2 3x3 convolutions
    (3 -> C/2 -> C) give the first cell's first input, one more stride-2 convolution its second, so the cells
    start at 1/8 of the input (28x28 of 224x224) after a reduction; the global pooling then sees 7x7. The
    paper's mobile setting: 14 cells, 48 channels, 224x224 inputs."""

    def build_stem(self, channels: int, multiplier: int) -> tuple[int, bool]:
        half = channels // 2
        self.stem0 = nn.Sequential(
            nn.Conv2d(3, half, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(half),
            nn.ReLU(),
            nn.Conv2d(half, channels, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.stem1 = nn.Sequential(nn.ReLU(), *conv_bn(channels, channels, 3, 2, 1, True))
        return channels, True

    def stems(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x: [B, 3, H, W] -> [B, C, H/4, W/4] and [B, C, H/8, W/8]
        s0 = self.stem0(x)
        return s0, self.stem1(s0)

    def auxiliary_head(self, c: int, num_classes: int) -> AuxiliaryHead:
        return AuxiliaryHead(c, num_classes, pool_stride=2, final_norm=False)  # 7x7 -> 2x2
