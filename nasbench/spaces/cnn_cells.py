"""The DARTS CNN space's search cell: mixed edges, the pooling shared per node, and the batch norm that
carries each op's mixing weight (the supernet of ``cnn.py`` stacks these cells)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from nasbench.genotype import edge_index
from nasbench.spaces.mixing import CellMix, CellSpec, PartialChannels
from nasbench.spaces.ops import CNN_OP_NAMES, CNN_OPS, FactorizedReduce, conv_bn, takes_relu
from nasbench.spaces.pooling import max_pool2d
from nasbench.spaces.separable_conv import ConvChain

N_INPUTS = 2


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
    """One edge over the channels it mixes: sum over ops of w_o * o(x), as its row of the ``CellMix`` says.
    ``none`` adds zeros and is not computed; the pooling ops' results come from the source node's
    ``SharedPools``.

    In a supernet built with partial channels (PC-DARTS, sec. 3.2) the cell hands each edge only the first
    C/K channels of its source; the bypass of the other channels and the channel shuffle are the cell's
    (``SearchCell``), once per node. With ``aux_skip`` the edge also adds ``CellMix.aux_skip`` times a skip of
    its input outside its ops: the identity, or on a stride-2 edge a FactorizedReduce of its own (DARTS-'
    ``model_search.py``, which builds it before the ops).
    """

    def __init__(
        self,
        channels: int,
        stride: int,
        ops: Sequence[str] = CNN_OP_NAMES,
        allowed: Sequence[str] = (),
        aux_skip: bool = False,
    ) -> None:
        # channels: the width the edge mixes (C/K with partial channels); ops: the cell's op columns;
        # allowed: the ops this edge mixes (empty: all of them)
        super().__init__()
        self.stride, self.op_columns = stride, tuple(ops)
        self.aux_reduce = FactorizedReduce(channels, channels, False) if aux_skip and stride == 2 else None
        self.has_aux_skip = aux_skip
        mixed = [op for op in ops if not allowed or op in allowed]
        self.names = [op for op in mixed if op != "none" and op not in POOLS]
        self.pool_names = [op for op in POOLS if op in mixed]
        self.columns: torch.Tensor
        self.pool_columns: torch.Tensor
        self.register_buffer("columns", torch.tensor([ops.index(op) for op in self.names], dtype=torch.long), False)
        self.register_buffer(
            "pool_columns", torch.tensor([ops.index(op) for op in self.pool_names], dtype=torch.long), False
        )
        self.relu_input = [takes_relu(op, stride) for op in self.names]
        self.ops = nn.ModuleList(CNN_OPS[name].build(channels, stride, False) for name in self.names)

    def forward(
        self,
        x: torch.Tensor,
        x_relu: torch.Tensor,
        pooled: dict[str, torch.Tensor],
        weights: torch.Tensor | None,
        active: Sequence[int] | None,
        edge_scale: torch.Tensor | None,
        aux_skip: float = 0.0,
    ) -> torch.Tensor | None:
        # x, x_relu: [B, c, H, W], the channels this edge mixes and their ReLU; pooled: the source's
        # SharedPools output (the pools ``active`` needs); weights: [n_ops] over all ops, or None (weight 1);
        # active: op columns to compute, None: all; edge_scale: a 0-dim factor on the edge's output, or None.
        # The factor scales the op weights rather than the edge's output: the same value, without keeping
        # that output for the backward. aux_skip: the auxiliary skip's weight (0: none).
        # -> [B, c, H/stride, W/stride], or None when nothing of the edge is computed.
        if weights is not None and edge_scale is not None:
            weights = weights * edge_scale
        w = None if weights is None else weights[self.columns]
        w_pool = None if weights is None else weights[self.pool_columns]
        wanted = None if active is None else set(active)
        terms = [
            self._weighted(op, x_relu if relu else x, None if w is None else w[i])
            for i, (op, relu) in enumerate(zip(self.ops, self.relu_input))
            if wanted is None or self.op_columns.index(self.names[i]) in wanted
        ]
        terms += [
            pooled[name] if w_pool is None else w_pool[i] * pooled[name]
            for i, name in enumerate(self.pool_names)
            if wanted is None or self.op_columns.index(name) in wanted
        ]
        if aux_skip:
            if not self.has_aux_skip:
                raise ValueError(
                    "a mix with an auxiliary skip needs a supernet built with SupernetOptions(aux_skip=True)"
                )
            skip = x if self.aux_reduce is None else self.aux_reduce(x_relu)
            scale = aux_skip if weights is None or edge_scale is None else aux_skip * edge_scale
            terms.append(scale * skip)
        if not terms:
            return None
        out = cast(torch.Tensor, sum(terms))
        if weights is None and edge_scale is not None:  # unweighted ops: the factor applies to their sum
            out = edge_scale * out
        return out

    @staticmethod
    def _weighted(op: nn.Module, x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        """weight * op(x) (op(x) for weight None). An op that ends in a non-affine BN gets ``weight`` as that BN's
        scale instead: the same value, but the backward then needs only what the BN keeps anyway, where a
        separate product would also keep the op's output (about a fifth of a supernet step's memory)."""
        if weight is None:
            return op(x)
        if isinstance(op, ConvChain) and isinstance(op[-1], nn.BatchNorm2d):
            return scaled_batch_norm(op[-1], op(x, upto=-1), weight)
        return weight * op(x)


class SearchCell(nn.Module):
    """A search cell over the ReLUs of the two previous cells' outputs (every input of a DARTS cell starts
    with ReLU-conv-BN, and each cell's output feeds the next two cells: the network applies that ReLU once).

    Each node that edges leave is prepared once for all of them: the channels the edges mix and their ReLU,
    the shared pools, and with partial channels the bypassed rest (max-pooled where the edges have stride 2).
    A node is then shuffle(concat(sum of its edges' mixed parts, sum of their bypassed rests)): the sum of
    each edge's own shuffled concatenation, as PC-DARTS computes it, with one concatenation and shuffle per
    node instead of one per edge, and one pooled rest per source instead of one per edge."""

    def __init__(
        self,
        nodes: int,
        c_pp: int,
        c_p: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
        partial: int,
        spec: CellSpec | None = None,
        aux_skip: bool = False,
    ) -> None:
        # spec: the cell type's op columns and allowed ops per edge (default: DARTS' eight everywhere);
        # aux_skip: whether edges carry DARTS-' auxiliary skip (``MixedOp``)
        super().__init__()
        self.nodes, self.reduction = nodes, reduction
        self.channels = PartialChannels(c, partial)
        self.pre0 = FactorizedReduce(c_pp, c, affine=False) if reduction_prev else conv_bn(c_pp, c, 1, 1, 0, False)
        self.pre1 = conv_bn(c_p, c, 1, 1, 0, False)
        self.pairs = edge_index(N_INPUTS, nodes)
        ops = spec.ops if spec is not None else CNN_OP_NAMES
        allowed = [[ops[k] for k in cols] for cols in spec.allowed] if spec is not None and spec.allowed else None
        self.edges = nn.ModuleList(
            MixedOp(self.channels.mixed, self._stride(src), ops, allowed[row] if allowed else (), aux_skip)
            for row, (src, _) in enumerate(self.pairs)
        )
        # one per node with outgoing edges: the inputs and every intermediate node but the last
        self.pools = nn.ModuleList(
            SharedPools(self.channels.mixed, self._stride(src)) for src in range(N_INPUTS + nodes - 1)
        )

    def _stride(self, src: int) -> int:
        return 2 if self.reduction and src < N_INPUTS else 1

    def forward(self, r0: torch.Tensor, r1: torch.Tensor, mix: CellMix) -> torch.Tensor:
        # r0, r1: relu of the outputs of the cells two back and one back; mix: this cell type's CellMix over
        # its len(pairs) edges
        states = [self.pre0(r0), self.pre1(r1)]
        sources = [self._source(src, states[src], mix) for src in range(N_INPUTS)]
        row = 0
        for dst in range(N_INPUTS, N_INPUTS + self.nodes):
            mixed, bypassed = [], []
            for src in range(dst):
                part, part_relu, pooled, rest = sources[src]
                weights, active = mix.row(row)
                scale = None if mix.edge_scale is None else mix.edge_scale[row]
                y = self.edges[row](part, part_relu, pooled, weights, active, scale, mix.aux_skip)
                if y is not None:
                    mixed.append(y)
                    if rest is not None:
                        bypassed.append(rest if scale is None else scale * rest)
                row += 1
            node = self.channels.node(mixed, bypassed) if mixed else self._zeros(states[0])
            if mix.bias is not None:  # each incoming edge's scalar, broadcast onto the node
                node = node + mix.bias[row - dst : row].sum()
            states.append(node)
            if dst < N_INPUTS + self.nodes - 1:
                sources.append(self._source(dst, node, mix))
        return torch.cat(states[N_INPUTS:], dim=1)

    def _source(
        self, src: int, state: torch.Tensor, mix: CellMix
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], torch.Tensor | None]:
        """What every edge leaving ``src`` reads: the channels they mix, their ReLU, the shared pools, and
        with partial channels the bypassed rest (reduced as the edges' stride needs; None without)."""
        part = self.channels.part(state)
        rest = None
        if self.channels.k > 1:
            rest = self.channels.rest(state)
            if self._stride(src) == 2:
                rest = max_pool2d(rest, 2, 2)
        return part, F.relu(part), self._pools(src, part, mix), rest

    def _zeros(self, state: torch.Tensor) -> torch.Tensor:
        """A node none of whose incoming edges is computed (every one ``none`` or off the path)."""
        b, c, h, w = state.shape
        s = 2 if self.reduction else 1
        return state.new_zeros(b, c, -(-h // s), -(-w // s))

    def _pools(self, src: int, part: torch.Tensor, mix: CellMix) -> dict[str, torch.Tensor]:
        """The pooled results edges leaving ``src`` need: both pools when every op is computed, else those
        that some edge from ``src`` computes."""
        leaving = [row for row, (s, _) in enumerate(self.pairs) if s == src]
        used = {name for row in leaving for name in cast(MixedOp, self.edges[row]).pool_names}
        names = [name for name in POOLS if name in used]
        if mix.active is not None:
            columns = cast(MixedOp, self.edges[leaving[0]]).op_columns
            wanted = {c for row in leaving for c in mix.active[row]}
            names = [name for name in names if columns.index(name) in wanted]
        return self.pools[src](part, names) if names else {}
