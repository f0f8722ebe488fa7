"""The DARTS CNN cell space on CIFAR-10 (Liu et al., "DARTS: Differentiable Architecture Search", ICLR 2019).

The search network (sec. 3.1.1): a 3x3 conv stem with 3C channels, then ``layers`` cells; the cells at
1/3 and 2/3 of the depth are reduction cells (stride 2, channels doubled). A cell has two inputs (the
outputs of the two previous cells), four intermediate nodes, and 14 edges, each a mixture of the eight
operations weighted by softmax(alpha); its output concatenates the four nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from nasbench.data.cifar10 import cifar10_search_data
from nasbench.data.streams import SearchData
from nasbench.errors import UserError
from nasbench.genotype import Edge, Genotype, derive_top_k, edge_index, format_darts, parse_darts
from nasbench.spaces.base import ImageClassifier, SearchSpace, Supernet, SupernetOptions
from nasbench.spaces.cnn_network import CnnNetwork
from nasbench.spaces.mixing import channel_shuffle, edge_softmax
from nasbench.spaces.ops import CNN_OP_NAMES, CNN_OPS, FactorizedReduce, conv_bn, takes_relu

N_INPUTS = 2
CELLS = ("normal", "reduce")


@dataclass(frozen=True)
class CnnConfig:
    """Search-network shape; defaults are the paper's (sec. 3.1.1: 8 cells, 16 initial channels)."""

    channels: int = 16
    layers: int = 8
    nodes: int = 4
    stem_multiplier: int = 3

    def check(self) -> None:
        if self.channels < 2 or self.channels % 2:
            raise UserError(f"space channels={self.channels}: use an even number of at least 2")
        if self.layers < 1 or self.nodes < 1:
            raise UserError(f"space layers={self.layers}, nodes={self.nodes}: both must be at least 1")


POOLS = ("max_pool_3x3", "avg_pool_3x3")


def scaled_batch_norm(bn: nn.BatchNorm2d, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """scale * bn(x) for a batch norm without affine parameters, as one batch-norm call with ``scale``
    (a 0-dim tensor) as every channel's weight; running statistics are updated as ``bn(x)`` would."""
    assert not bn.affine and bn.momentum is not None and bn.num_batches_tracked is not None
    if bn.training:
        bn.num_batches_tracked.add_(1)
    # A contiguous weight: with a stride-0 (expanded) one, the contract tests saw NaN losses and runs that
    # differed between equal seeds on this CPU build.
    weight = scale.expand(x.shape[1]).contiguous()
    return F.batch_norm(x, bn.running_mean, bn.running_var, weight, None, bn.training, bn.momentum, bn.eps)


class SharedPools(nn.Module):
    """The pooling ops of every edge that leaves one node, each followed by a non-affine BN as in the
    reference mixed op, computed once per node instead of once per edge.

    All edges leaving a node have the same stride and feed these ops the same input (with partial
    channels, the node's first C/K channels on every edge). Pooling has no weights and a BN without
    affine parameters has only running statistics, which every such edge would update identically in
    the mixture; so one result serves all edges exactly. (On a single path, randomws' running statistics
    are then per node rather than per edge.)
    """

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        self.ops = nn.ModuleDict(
            {
                name: nn.Sequential(
                    CNN_OPS[name].build(channels, stride, False), nn.BatchNorm2d(channels, affine=False)
                )
                for name in POOLS
            }
        )

    def forward(self, part: torch.Tensor, names: Sequence[str] = POOLS) -> dict[str, torch.Tensor]:
        # part: [B, C/K, H, W] (the mixed channels of a node) -> {pool name: [B, C/K, H/stride, W/stride]}
        return {name: self.ops[name](part) for name in names}


class MixedOp(nn.Module):
    """One edge: sum over ops of softmax(alpha)_o * o(x). ``none`` adds zeros and is not computed; the
    pooling ops' results come from the source node's ``SharedPools``.

    With ``partial > 1`` (PC-DARTS, sec. 3.2) only the first C/K channels go through the ops; the rest
    bypass them (max-pooled on stride-2 edges) and a channel shuffle mixes the two parts.
    """

    def __init__(self, channels: int, stride: int, partial: int) -> None:
        super().__init__()
        self.stride, self.partial = stride, partial
        self.mixed_channels = channels // partial
        self.names = [op for op in CNN_OP_NAMES if op != "none" and op not in POOLS]
        self.columns: torch.Tensor
        self.pool_columns: torch.Tensor
        self.register_buffer("columns", torch.tensor([CNN_OP_NAMES.index(op) for op in self.names]), False)
        self.register_buffer("pool_columns", torch.tensor([CNN_OP_NAMES.index(op) for op in POOLS]), False)
        self.relu_input = [takes_relu(op, stride) for op in self.names]
        self.ops = nn.ModuleList(CNN_OPS[name].build(self.mixed_channels, stride, False) for name in self.names)

    def forward(
        self,
        x: torch.Tensor,
        x_relu: torch.Tensor,
        pooled: dict[str, torch.Tensor],
        weights: torch.Tensor,
        edge_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        # x, x_relu: [B, C, H, W]; pooled: the source's SharedPools output; weights: [n_ops] over all ops;
        # edge_weight: this edge's PC-DARTS normalisation weight (0-dim) or None. It scales the op weights and
        # the bypassed channels rather than the edge's output: the same value, without keeping that output
        # (a full-width tensor per edge) for the backward.
        part, part_relu = x[:, : self.mixed_channels], x_relu[:, : self.mixed_channels]
        if edge_weight is not None:
            weights = weights * edge_weight
        w, w_pool = weights[self.columns], weights[self.pool_columns]
        terms = [
            self._weighted(op, part_relu if relu else part, w[i])
            for i, (op, relu) in enumerate(zip(self.ops, self.relu_input))
        ]
        terms += [w_pool[i] * pooled[name] for i, name in enumerate(POOLS)]
        return self._join(cast(torch.Tensor, sum(terms)), x, edge_weight)

    @staticmethod
    def _weighted(op: nn.Module, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """weight * op(x). An op that ends in a non-affine BN gets ``weight`` as that BN's scale instead: the
        same value, but the backward then needs only what the BN keeps anyway, where a separate product
        would also keep the op's output (about a fifth of a supernet step's memory)."""
        if isinstance(op, nn.Sequential) and isinstance(op[-1], nn.BatchNorm2d):
            return scaled_batch_norm(op[-1], op[:-1](x), weight)
        return weight * op(x)

    def single(self, x: torch.Tensor, x_relu: torch.Tensor, pooled: dict[str, torch.Tensor], op: str) -> torch.Tensor:
        """Only the op named ``op``, with weight 1 (a single path of random search with weight sharing);
        ``pooled`` holds at least that op's result when it is a pooling op."""
        if op in POOLS:
            return self._join(pooled[op], x)
        i = self.names.index(op)
        out = self.ops[i](x_relu[:, : self.mixed_channels] if self.relu_input[i] else x[:, : self.mixed_channels])
        return self._join(out, x)

    def _join(self, out: torch.Tensor, x: torch.Tensor, edge_weight: torch.Tensor | None = None) -> torch.Tensor:
        # out: the mixed channels' result; x: the edge input, whose other channels bypass the ops
        if self.partial == 1:
            return out
        rest = x[:, self.mixed_channels :]
        if self.stride == 2:
            rest = F.max_pool2d(rest, 2, 2)
        if edge_weight is not None:
            rest = edge_weight * rest
        return channel_shuffle(torch.cat([out, rest], dim=1), self.partial)


class SearchCell(nn.Module):
    def __init__(
        self, nodes: int, c_pp: int, c_p: int, c: int, reduction: bool, reduction_prev: bool, partial: int
    ) -> None:
        super().__init__()
        self.nodes, self.reduction = nodes, reduction
        self.mixed_channels = c // partial
        self.pre0 = FactorizedReduce(c_pp, c, affine=False) if reduction_prev else conv_bn(c_pp, c, 1, 1, 0, False)
        self.pre1 = conv_bn(c_p, c, 1, 1, 0, False)
        self.pairs = edge_index(N_INPUTS, nodes)
        self.edges = nn.ModuleList(MixedOp(c, self._stride(src), partial) for src, _ in self.pairs)
        # one per node with outgoing edges: the inputs and every intermediate node but the last
        self.pools = nn.ModuleList(
            SharedPools(self.mixed_channels, self._stride(src)) for src in range(N_INPUTS + nodes - 1)
        )

    def _stride(self, src: int) -> int:
        return 2 if self.reduction and src < N_INPUTS else 1

    def forward(
        self,
        s0: torch.Tensor,
        s1: torch.Tensor,
        weights: torch.Tensor | None,
        edge_weights: torch.Tensor | None,
        path: dict[int, str] | None = None,
    ) -> torch.Tensor:
        # weights: [14, 8] op mixture per edge; edge_weights: [14] PC-DARTS edge normalisation or None;
        # path: edge row -> op of a single genotype (weights unused), or None for the mixture
        states = [self.pre0(F.relu(s0)), self.pre1(F.relu(s1))]
        relus = [F.relu(s) for s in states]  # once per node, shared by every op on every outgoing edge
        pooled = [self._pools(src, states[src], path) for src in range(N_INPUTS)]
        row = 0
        for dst in range(N_INPUTS, N_INPUTS + self.nodes):
            terms = []
            for src in range(dst):
                if path is not None:
                    if row in path:  # edges outside the genotype are not computed
                        edge = cast(MixedOp, self.edges[row])
                        terms.append(edge.single(states[src], relus[src], pooled[src], path[row]))
                else:
                    assert weights is not None
                    edge_weight = None if edge_weights is None else edge_weights[row]
                    terms.append(self.edges[row](states[src], relus[src], pooled[src], weights[row], edge_weight))
                row += 1
            states.append(sum(terms))
            if dst < N_INPUTS + self.nodes - 1:
                relus.append(F.relu(states[-1]))
                pooled.append(self._pools(dst, states[-1], path))
        return torch.cat(states[N_INPUTS:], dim=1)

    def _pools(self, src: int, state: torch.Tensor, path: dict[int, str] | None) -> dict[str, torch.Tensor]:
        """The pooled results edges leaving ``src`` need: both pools for the mixture, on a single path
        only the pools its edges from ``src`` use."""
        names: Sequence[str] = POOLS
        if path is not None:
            names = list(dict.fromkeys(op for row, op in path.items() if self.pairs[row][0] == src and op in POOLS))
        return self.pools[src](state[:, : self.mixed_channels], names) if names else {}


class CnnSupernet(ImageClassifier, Supernet):
    def __init__(self, cfg: CnnConfig, num_classes: int, options: SupernetOptions) -> None:
        super().__init__()
        k = options.partial_channels
        if k < 1 or cfg.channels % (2 * k):
            raise UserError(
                f"partial_channels K={k} needs the channel count ({cfg.channels}) to be a multiple of 2K; "
                "change space.channels or the searcher's partial_channels"
            )
        self.cfg, self.options = cfg, options
        self._path: dict[str, dict[int, str]] | None = None  # see use_genotype
        c_stem = cfg.stem_multiplier * cfg.channels
        self.stem = conv_bn(3, c_stem, 3, 1, 1, True)
        c_pp, c_p, c = c_stem, c_stem, cfg.channels
        cells, reduction_prev = [], False
        for layer in range(cfg.layers):
            reduction = layer in (cfg.layers // 3, 2 * cfg.layers // 3)
            if reduction:
                c *= 2
            cells.append(SearchCell(cfg.nodes, c_pp, c_p, c, reduction, reduction_prev, k))
            c_pp, c_p, reduction_prev = c_p, cfg.nodes * c, reduction
        self.cells = nn.ModuleList(cells)
        self.classifier = nn.Linear(c_p, num_classes)
        n_edges, n_ops = len(edge_index(N_INPUTS, cfg.nodes)), len(CNN_OP_NAMES)
        for cell in CELLS:  # reference code: alphas start at 1e-3 * N(0, 1)
            self.add_arch_parameter(f"alpha_{cell}", 1e-3 * torch.randn(n_edges, n_ops))
            if options.edge_normalization:
                self.add_arch_parameter(f"beta_{cell}", 1e-3 * torch.randn(n_edges))

    def _edge_weights(self, cell: str) -> torch.Tensor | None:
        if not self.options.edge_normalization:
            return None
        return edge_softmax(getattr(self, f"beta_{cell}"), N_INPUTS, self.cfg.nodes)

    def use_genotype(self, genotype: Genotype | None) -> None:
        if genotype is None:
            self._path = None
            return
        rows = {pair: row for row, pair in enumerate(edge_index(N_INPUTS, self.cfg.nodes))}
        nodes = set(range(N_INPUTS, N_INPUTS + self.cfg.nodes))
        path = {}
        for cell in CELLS:
            edges = genotype.cell(cell)
            bad = [e for e in edges if (e.src, e.dst) not in rows or e.op not in CNN_OP_NAMES or e.op == "none"]
            if bad or {e.dst for e in edges} != nodes:
                raise UserError(
                    f"genotype {cell} cell {list(edges)} is no single path of this supernet: every node "
                    f"{sorted(nodes)} needs an input edge, each an op other than none from an earlier node"
                )
            path[cell] = {rows[(e.src, e.dst)]: e.op for e in edges}
        self._path = path

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, 3, 32, 32] -> logits [B, num_classes]
        mix: dict[str, torch.Tensor | None]
        edge: dict[str, torch.Tensor | None]
        if self._path is None:
            mix = {cell: torch.softmax(getattr(self, f"alpha_{cell}"), dim=-1) for cell in CELLS}
            edge = {cell: self._edge_weights(cell) for cell in CELLS}
        else:  # a single path (use_genotype): the architecture parameters are not used
            mix, edge = dict.fromkeys(CELLS), dict.fromkeys(CELLS)
        path = self._path or {}
        s0 = s1 = self.stem(x)
        for layer in self.cells:
            cell = "reduce" if layer.reduction else "normal"
            s0, s1 = s1, layer(s0, s1, mix[cell], edge[cell], path.get(cell))
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))

    def arch_weights(self) -> dict[str, torch.Tensor]:
        return {cell: torch.softmax(getattr(self, f"alpha_{cell}").detach(), dim=-1) for cell in CELLS}

    def derive(self) -> Genotype:
        cells = {}
        for cell, weights in self.arch_weights().items():
            edge = self._edge_weights(cell)
            ranked = weights if edge is None else weights * edge.detach()[:, None]
            cells[cell] = derive_top_k(ranked, CNN_OP_NAMES, N_INPUTS, self.cfg.nodes, k=2)
        concat = list(range(N_INPUTS, N_INPUTS + self.cfg.nodes))
        return Genotype.of(cells, {cell: concat for cell in CELLS})


def _published(text: str) -> Genotype:
    return parse_darts(text, CELLS, per_node=2, n_inputs=N_INPUTS)


PUBLISHED = {
    # Liu et al. 2019, fig. 4 and 5 (first- and second-order search), as released with the paper.
    "DARTS_V1": _published(
        "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), "
        "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], "
        "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
        "('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
        "('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])"
    ),
    "DARTS_V2": _published(
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
        "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
        "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
        "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
        "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
    ),
    # Xu et al. 2020 (PC-DARTS), CIFAR-10 cell as released with the paper.
    "PC_DARTS": _published(
        "Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), ('dil_conv_3x3', 1), "
        "('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), ('dil_conv_3x3', 1)], "
        "normal_concat=range(2, 6), reduce=[('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 1), "
        "('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), "
        "('sep_conv_3x3', 2)], reduce_concat=range(2, 6))"
    ),
}


class CnnSpace(SearchSpace):
    name = "cnn"
    summary = "DARTS CNN cell space on CIFAR-10: 8 ops, 2 inputs + 4 nodes, 14 edges (Liu et al., ICLR 2019)"
    dataset = "cifar10"
    metric = "acc"
    ops = CNN_OP_NAMES
    config_cls = CnnConfig
    published = PUBLISHED
    presets = {
        "paper": {"train": {}, "space": {}},
        # A 2-core CPU budget on the built-in slice (about 4 minutes): a narrower, shallower supernet,
        # 4 epochs of 20 steps, each epoch scored on the first 640 architecture-split images.
        "small": {
            "train": {
                "epochs": 4,
                "batch_size": 32,
                "steps_per_epoch": 20,
                "eval_batches": 20,
                "hessian_every": 2,  # the eigenvalue costs about a third of an epoch here
            },
            "space": {"channels": 8, "layers": 5},
        },
        # Seconds, for tests: a toy supernet and two steps per epoch.
        "tiny": {
            "train": {"epochs": 2, "batch_size": 8, "steps_per_epoch": 2, "eval_batches": 2},
            "space": {"channels": 4, "layers": 3, "nodes": 2},
        },
    }

    def load_data(
        self, path: str | None, cfg: Any, device: torch.device, seed: int, download: bool = False
    ) -> SearchData:
        return cifar10_search_data(path, cfg.train, device, seed, download)

    def supernet(self, cfg: CnnConfig, data: SearchData, options: SupernetOptions) -> CnnSupernet:
        return CnnSupernet(cfg, data.info["num_classes"], options)

    def network(self, genotype: Genotype, cfg: CnnConfig, data: SearchData) -> CnnNetwork:
        return CnnNetwork(genotype, cfg.channels, cfg.layers, data.info["num_classes"])

    def sample_genotype(self, cfg: CnnConfig, generator: torch.Generator) -> Genotype:
        """Per node two distinct predecessors and for each an op, uniformly, never ``none``."""
        choices = [op for op in CNN_OP_NAMES if op != "none"]
        cells = {}
        for cell in CELLS:
            edges = []
            for dst in range(N_INPUTS, N_INPUTS + cfg.nodes):
                sources = sorted(torch.randperm(dst, generator=generator)[:2].tolist())
                for src in sources:
                    op = choices[int(torch.randint(len(choices), (1,), generator=generator))]
                    edges.append(Edge(op, src, dst))
            cells[cell] = edges
        return Genotype.of(cells, {cell: range(N_INPUTS, N_INPUTS + cfg.nodes) for cell in CELLS})

    def format_genotype(self, genotype: Genotype) -> str:
        return format_darts(genotype)

    def parse_genotype(self, text: str) -> Genotype:
        genotype = parse_darts(text, CELLS, per_node=2, n_inputs=N_INPUTS)
        for cell in CELLS:
            unknown = {e.op for e in genotype.cell(cell)} - set(CNN_OP_NAMES)
            if unknown:
                raise UserError(f"genotype uses ops outside the cnn space: {sorted(unknown)}")
        return genotype
