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
    """One edge: sum over ops of w_o * o(x), as its row of the ``CellMix`` says. ``none`` adds zeros and is not
    computed; the pooling ops' results come from the source node's ``SharedPools``.

    In a supernet built with partial channels (PC-DARTS, sec. 3.2) only the first C/K channels go through
    the ops; the rest bypass them (max-pooled on stride-2 edges) and a channel shuffle mixes the two parts.
    With ``aux_skip`` the edge also adds ``CellMix.aux_skip`` times a skip of the mixed channels outside its
    ops: the identity, or on a stride-2 edge a FactorizedReduce of its own (DARTS-' ``model_search.py``, which
    builds it before the ops).
    """

    def __init__(
        self,
        channels: int,
        stride: int,
        partial: int,
        ops: Sequence[str] = CNN_OP_NAMES,
        allowed: Sequence[str] = (),
        aux_skip: bool = False,
    ) -> None:
        # ops: the cell's op columns; allowed: the ops this edge mixes (empty: all of them)
        super().__init__()
        self.stride, self.op_columns = stride, tuple(ops)
        self.channels = PartialChannels(channels, partial)
        self.aux_reduce = (
            FactorizedReduce(self.channels.mixed, self.channels.mixed, False) if aux_skip and stride == 2 else None
        )
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
        self.ops = nn.ModuleList(CNN_OPS[name].build(self.channels.mixed, stride, False) for name in self.names)

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
        # x, x_relu: [B, C, H, W]; pooled: the source's SharedPools output (the pools ``active`` needs);
        # weights: [n_ops] over all ops, or None (weight 1); active: op columns to compute, None: all;
        # edge_scale: a 0-dim factor on the edge's output, or None. The factor scales the op weights and the
        # bypassed channels rather than the edge's output: the same value, without keeping that output (a
        # full-width tensor per edge) for the backward. aux_skip: the auxiliary skip's weight (0: none).
        # None when nothing of the edge is computed.
        part, part_relu = self.channels.part(x), self.channels.part(x_relu)
        if weights is not None and edge_scale is not None:
            weights = weights * edge_scale
        w = None if weights is None else weights[self.columns]
        w_pool = None if weights is None else weights[self.pool_columns]
        wanted = None if active is None else set(active)
        terms = [
            self._weighted(op, part_relu if relu else part, None if w is None else w[i])
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
            skip = part if self.aux_reduce is None else self.aux_reduce(part_relu)
            scale = aux_skip if weights is None or edge_scale is None else aux_skip * edge_scale
            terms.append(scale * skip)
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
        self.mixed_channels = c // partial
        self.pre0 = FactorizedReduce(c_pp, c, affine=False) if reduction_prev else conv_bn(c_pp, c, 1, 1, 0, False)
        self.pre1 = conv_bn(c_p, c, 1, 1, 0, False)
        self.pairs = edge_index(N_INPUTS, nodes)
        ops = spec.ops if spec is not None else CNN_OP_NAMES
        allowed = [[ops[k] for k in cols] for cols in spec.allowed] if spec is not None and spec.allowed else None
        self.edges = nn.ModuleList(
            MixedOp(c, self._stride(src), partial, ops, allowed[row] if allowed else (), aux_skip)
            for row, (src, _) in enumerate(self.pairs)
        )
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
                y = self.edges[row](states[src], relus[src], pooled[src], weights, active, scale, mix.aux_skip)
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
        leaving = [row for row, (s, _) in enumerate(self.pairs) if s == src]
        used = {name for row in leaving for name in cast(MixedOp, self.edges[row]).pool_names}
        names = [name for name in POOLS if name in used]
        if mix.active is not None:
            columns = cast(MixedOp, self.edges[leaving[0]]).op_columns
            wanted = {c for row in leaving for c in mix.active[row]}
            names = [name for name in names if columns.index(name) in wanted]
        return self.pools[src](state[:, : self.mixed_channels], names) if names else {}
