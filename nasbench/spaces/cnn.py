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
from nasbench.spaces.mixing import CellMix, CellSpec, PartialChannels
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
    """One edge: sum over ops of w_o * o(x), as its row of the ``CellMix`` says. ``none`` adds zeros and is not
    computed; the pooling ops' results come from the source node's ``SharedPools``.

    In a supernet built with partial channels (PC-DARTS, sec. 3.2) only the first C/K channels go through
    the ops; the rest bypass them (max-pooled on stride-2 edges) and a channel shuffle mixes the two parts.
    """

    def __init__(self, channels: int, stride: int, partial: int) -> None:
        super().__init__()
        self.stride = stride
        self.channels = PartialChannels(channels, partial)
        self.names = [op for op in CNN_OP_NAMES if op != "none" and op not in POOLS]
        self.columns: torch.Tensor
        self.pool_columns: torch.Tensor
        self.register_buffer("columns", torch.tensor([CNN_OP_NAMES.index(op) for op in self.names]), False)
        self.register_buffer("pool_columns", torch.tensor([CNN_OP_NAMES.index(op) for op in POOLS]), False)
        self.relu_input = [takes_relu(op, stride) for op in self.names]
        self.ops = nn.ModuleList(CNN_OPS[name].build(self.channels.mixed, stride, False) for name in self.names)

    def forward(
        self,
        x: torch.Tensor,
        x_relu: torch.Tensor,
        pooled: dict[str, torch.Tensor],
        weights: torch.Tensor | None,
        active: Sequence[int] | None,
        edge_scale: torch.Tensor | None,
    ) -> torch.Tensor | None:
        # x, x_relu: [B, C, H, W]; pooled: the source's SharedPools output (the pools ``active`` needs);
        # weights: [n_ops] over all ops, or None (weight 1); active: op columns to compute, None: all;
        # edge_scale: a 0-dim factor on the edge's output, or None. The factor scales the op weights and the
        # bypassed channels rather than the edge's output: the same value, without keeping that output (a
        # full-width tensor per edge) for the backward. None when no op of the edge is computed.
        part, part_relu = self.channels.part(x), self.channels.part(x_relu)
        if weights is not None and edge_scale is not None:
            weights = weights * edge_scale
        w = None if weights is None else weights[self.columns]
        w_pool = None if weights is None else weights[self.pool_columns]
        wanted = None if active is None else set(active)
        terms = [
            self._weighted(op, part_relu if relu else part, None if w is None else w[i])
            for i, (op, relu) in enumerate(zip(self.ops, self.relu_input))
            if wanted is None or CNN_OP_NAMES.index(self.names[i]) in wanted
        ]
        terms += [
            pooled[name] if w_pool is None else w_pool[i] * pooled[name]
            for i, name in enumerate(POOLS)
            if wanted is None or CNN_OP_NAMES.index(name) in wanted
        ]
        if not terms:
            return None
        out = cast(torch.Tensor, sum(terms))
        if weights is None and edge_scale is not None:  # unweighted ops: the factor applies to their sum
            out = edge_scale * out
        return self._join(out, x, edge_scale)

    @staticmethod
    def _weighted(op: nn.Module, x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        """weight * op(x) (op(x) for weight None). An op that ends in a non-affine BN gets ``weight`` as that BN's
        scale instead: the same value, but the backward then needs only what the BN keeps anyway, where a
        separate product would also keep the op's output (about a fifth of a supernet step's memory)."""
        if weight is None:
            return op(x)
        if isinstance(op, nn.Sequential) and isinstance(op[-1], nn.BatchNorm2d):
            return scaled_batch_norm(op[-1], op[:-1](x), weight)
        return weight * op(x)

    def _join(self, out: torch.Tensor, x: torch.Tensor, edge_scale: torch.Tensor | None) -> torch.Tensor:
        # out: the mixed channels' result; x: the edge input, whose other channels bypass the ops
        if self.channels.k == 1:
            return out
        rest = self.channels.rest(x)
        if self.stride == 2:
            rest = F.max_pool2d(rest, 2, 2)
        if edge_scale is not None:
            rest = edge_scale * rest
        return self.channels.join(out, rest)


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

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, mix: CellMix) -> torch.Tensor:
        # mix: this cell type's CellMix over its len(pairs) edges
        states = [self.pre0(F.relu(s0)), self.pre1(F.relu(s1))]
        relus = [F.relu(s) for s in states]  # once per node, shared by every op on every outgoing edge
        pooled = [self._pools(src, states[src], mix) for src in range(N_INPUTS)]
        row = 0
        for dst in range(N_INPUTS, N_INPUTS + self.nodes):
            terms = []
            for src in range(dst):
                weights, active = mix.row(row)
                scale = None if mix.edge_scale is None else mix.edge_scale[row]
                y = self.edges[row](states[src], relus[src], pooled[src], weights, active, scale)
                if y is not None:
                    terms.append(y)
                row += 1
            node = sum(terms) if terms else self._zeros(states[0])
            if mix.bias is not None:  # each incoming edge's scalar, broadcast onto the node
                node = node + mix.bias[row - dst : row].sum()
            states.append(node)
            if dst < N_INPUTS + self.nodes - 1:
                relus.append(F.relu(states[-1]))
                pooled.append(self._pools(dst, states[-1], mix))
        return torch.cat(states[N_INPUTS:], dim=1)

    def _zeros(self, state: torch.Tensor) -> torch.Tensor:
        """A node none of whose incoming edges is computed (every one ``none`` or off the path)."""
        b, c, h, w = state.shape
        s = 2 if self.reduction else 1
        return state.new_zeros(b, c, -(-h // s), -(-w // s))

    def _pools(self, src: int, state: torch.Tensor, mix: CellMix) -> dict[str, torch.Tensor]:
        """The pooled results edges leaving ``src`` need: both pools when every op is computed, else those
        that some edge from ``src`` computes."""
        names: Sequence[str] = POOLS
        if mix.active is not None:
            wanted = {c for row, (s, _) in enumerate(self.pairs) if s == src for c in mix.active[row]}
            names = [name for name in POOLS if CNN_OP_NAMES.index(name) in wanted]
        return self.pools[src](state[:, : self.mixed_channels], names) if names else {}


class CnnSupernet(ImageClassifier, Supernet):
    def __init__(self, cfg: CnnConfig, num_classes: int, options: SupernetOptions) -> None:
        super().__init__(options.mixer)
        k = options.partial_channels
        if k < 1 or cfg.channels % (2 * k):
            raise UserError(
                f"partial_channels K={k} needs the channel count ({cfg.channels}) to be a multiple of 2K; "
                "change space.channels or the searcher's partial_channels"
            )
        self.cfg = cfg
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
        spec = CellSpec(CNN_OP_NAMES, tuple(edge_index(N_INPUTS, cfg.nodes)))
        for cell in CELLS:
            self.add_cell_parameters(cell, spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, 3, 32, 32] -> logits [B, num_classes]
        mix = {cell: self.mixing(cell) for cell in CELLS}
        s0 = s1 = self.stem(x)
        for layer in self.cells:
            s0, s1 = s1, layer(s0, s1, mix["reduce" if layer.reduction else "normal"])
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))

    def derive(self, strengths: dict[str, torch.Tensor]) -> Genotype:
        """DARTS' rule (sec. 2.4): per node the two strongest incoming edges, each with its best op but none."""
        cells = {cell: derive_top_k(strengths[cell], CNN_OP_NAMES, N_INPUTS, self.cfg.nodes, k=2) for cell in CELLS}
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
    family = "darts-cifar10"
    metric = "acc"
    ops = CNN_OP_NAMES
    skip_ops = ("skip_connect",)
    param_free_ops = ("none", "skip_connect", *POOLS)
    primary_cell = "normal"
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

    def sample_genotype(self, cfg: CnnConfig, generator: torch.Generator, ops: Sequence[str] | None = None) -> Genotype:
        """Per node two distinct predecessors and for each an op, uniformly from ``ops`` (default: every op but
        ``none``, which a derived cell never holds)."""
        choices = list(ops) if ops is not None else [op for op in CNN_OP_NAMES if op != "none"]
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

    def eval_task(self) -> type:
        from nasbench.eval.cnn import CnnEvalTask

        return CnnEvalTask

    def format_genotype(self, genotype: Genotype) -> str:
        return format_darts(genotype)

    def parse_genotype(self, text: str) -> Genotype:
        genotype = parse_darts(text, CELLS, per_node=2, n_inputs=N_INPUTS)
        for cell in CELLS:
            unknown = {e.op for e in genotype.cell(cell)} - set(CNN_OP_NAMES)
            if unknown:
                raise UserError(f"genotype uses ops outside the cnn space: {sorted(unknown)}")
        return genotype
