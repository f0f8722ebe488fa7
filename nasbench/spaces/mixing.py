"""Pure functions shared by the mixed operations of every space."""

from __future__ import annotations

import torch

from nasbench.genotype import edge_index


def edge_softmax(beta: torch.Tensor, n_inputs: int, n_nodes: int) -> torch.Tensor:
    """PC-DARTS edge normalisation (Xu et al. 2020, eq. 4): softmax of ``beta`` [n_edges] over the
    incoming edges of each node separately. Returns [n_edges]; each node's slice sums to 1."""
    pieces, row = [], 0
    for dst in range(n_inputs, n_inputs + n_nodes):
        pieces.append(torch.softmax(beta[row : row + dst], dim=0))
        row += dst
    if row != beta.numel():
        raise ValueError(f"beta has {beta.numel()} entries, expected {len(edge_index(n_inputs, n_nodes))}")
    return torch.cat(pieces)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """[B, C, ...] -> [B, C, ...] with channel c*groups + g taken from group g's channel c (ShuffleNet)."""
    b, c = x.shape[:2]
    return x.view(b, groups, c // groups, *x.shape[2:]).transpose(1, 2).reshape(x.shape)
