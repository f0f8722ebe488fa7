"""The searchers' mixers: how each method turns architecture parameters into a supernet's ``CellMix``.

Every mixer works on any space, through the ``CellSpec`` each supernet declares; none of them knows a
space. DARTS' softmax relaxation is the base ``Mixer`` (``nasbench.spaces.mixing``).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby

import torch

from nasbench.errors import UserError
from nasbench.genotype import Genotype
from nasbench.spaces.base import Supernet
from nasbench.spaces.mixing import CellMix, CellSpec, Mixer


def grouped_softmax(values: torch.Tensor, groups: Sequence[int]) -> torch.Tensor:
    """Softmax of ``values`` [n] within each run of equal ``groups`` entries (PC-DARTS' edge normalisation,
    Xu et al. 2020, eq. 4: over the incoming edges of each node). Returns [n]; each group sums to 1."""
    if len(groups) != values.numel():
        raise ValueError(f"{values.numel()} values for {len(groups)} group entries")
    pieces, start = [], 0
    for _, run in groupby(groups):
        size = len(list(run))
        pieces.append(torch.softmax(values[start : start + size], dim=0))
        start += size
    return torch.cat(pieces)


class EdgeNormalizedMixer(Mixer):
    """PC-DARTS (sec. 3.3): softmax(alpha) over each edge's ops, times a weight per edge, the softmax of beta
    over the node's incoming edges; the genotype ranks edges by the product."""

    def cell_parameters(self, cell: str, spec: CellSpec) -> dict[str, torch.Tensor]:
        return {f"beta_{cell}": 1e-3 * torch.randn(spec.n_edges)}  # reference code: 1e-3 * N(0, 1)

    def edge_weights(self, net: Supernet, cell: str) -> torch.Tensor:
        return grouped_softmax(getattr(net, f"beta_{cell}"), net.cell_specs[cell].destinations)

    def __call__(self, net: Supernet, cell: str) -> CellMix:
        return CellMix(torch.softmax(net.alpha(cell), dim=-1), edge_scale=self.edge_weights(net, cell))

    def strengths(self, net: Supernet) -> dict[str, torch.Tensor]:
        out = {}
        for cell, weights in super().strengths(net).items():
            out[cell] = weights * self.edge_weights(net, cell).detach()[:, None]
        return out


class PathMixer(Mixer):
    """One genotype's single path: each of its edges computes its one op with weight 1 (``none``: nothing),
    every other edge nothing; the architecture parameters are not used. Random search with weight sharing
    trains and scores the shared weights this way."""

    def __init__(self, net: Supernet, genotype: Genotype) -> None:
        self.active: dict[str, list[tuple[int, ...]]] = {}
        for cell, spec in net.cell_specs.items():
            rows = {pair: r for r, pair in enumerate(spec.pairs)}
            edges = genotype.cell(cell) if cell in genotype.cell_names else ()
            bad = [e for e in edges if (e.src, e.dst) not in rows or e.op not in spec.ops]
            if bad:
                raise UserError(
                    f"genotype edges {bad} are not edges of this supernet's {cell!r} cell (ops {', '.join(spec.ops)})"
                )
            active: list[tuple[int, ...]] = [() for _ in spec.pairs]
            for e in edges:
                active[rows[(e.src, e.dst)]] = (spec.ops.index(e.op),)
            self.active[cell] = active

    def __call__(self, net: Supernet, cell: str) -> CellMix:
        return CellMix(None, active=self.active[cell])
