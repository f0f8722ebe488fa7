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

    def cell_parameters(self, cell: str, spec: CellSpec, alpha: torch.Tensor) -> dict[str, torch.Tensor]:
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


def gumbel(like: torch.Tensor) -> torch.Tensor:
    """Standard Gumbel noise of ``like``'s shape: -log(E), E ~ Exponential(1)."""
    return -torch.empty_like(like).exponential_().log()


class GumbelHardMixer(Mixer):
    """GDAS (Dong & Yang, CVPR 2019; AutoDL-Projects' ``search_model_gdas.py``): per forward pass and edge,
    one op sampled by Gumbel-max from softmax(alpha); its weight is the one-hot sample with the gradient of
    the relaxed sample softmax((log softmax(alpha) + g) / tau) (straight-through), and only it is computed.
    A draw whose noise or probabilities are not finite is drawn again, as in their code.

    ``unsampled_gradient``: as their NAS-Bench-201 cell does, add each unsampled op's weight (zero in value)
    to the edge, so that every alpha of the edge gets a gradient; their DARTS-space cell does not."""

    def __init__(self, tau: float, unsampled_gradient: bool) -> None:
        self.tau, self.unsampled_gradient = tau, unsampled_gradient

    def sample(self, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(straight-through one-hot weights [E, K], sampled index [E])."""
        log_p = torch.log_softmax(alpha, dim=-1)
        while True:
            noise = gumbel(alpha)
            probs = torch.softmax((log_p + noise) / self.tau, dim=-1)
            if torch.isfinite(noise).all() and torch.isfinite(probs).all():
                break
        index = probs.argmax(dim=-1)
        one_hot = torch.zeros_like(probs).scatter_(-1, index[:, None], 1.0)
        return one_hot - probs.detach() + probs, index

    def __call__(self, net: Supernet, cell: str) -> CellMix:
        hard, index = self.sample(net.alpha(cell))
        bias = (hard * (index[:, None] != torch.arange(hard.shape[1], device=hard.device))).sum(dim=-1)
        active = [(k,) for k in index.tolist()]
        return CellMix(hard, active=active, bias=bias if self.unsampled_gradient else None)


class GumbelSoftMixer(Mixer):
    """SNAS (Xie et al., ICLR 2019; SNAS-Series' ``model_search.py``): per forward pass and edge, a relaxed
    Gumbel-softmax sample softmax((alpha + g) / tau) weighs every op, all of them computed."""

    def __init__(self, tau: float) -> None:
        self.tau = tau

    def cell_parameters(self, cell: str, spec: CellSpec, alpha: torch.Tensor) -> dict[str, torch.Tensor]:
        alpha.normal_(1.0, 0.01)  # their code: alpha ~ N(1, 0.01) (the softmax ignores the mean)
        return {}

    def __call__(self, net: Supernet, cell: str) -> CellMix:
        alpha = net.alpha(cell)
        return CellMix(torch.softmax((alpha + gumbel(alpha)) / self.tau, dim=-1))


class DirichletMixer(Mixer):
    """DrNAS (Chen et al., ICLR 2021; its ``utils.process_step_vector``): per forward pass and edge, mixing
    weights sampled from Dirichlet(elu(alpha) + 1) by the reparameterised (pathwise) sampler, every op
    computed; the genotype is derived from the Dirichlet mean (the same argmax as softmax(alpha))."""

    @staticmethod
    def concentration(alpha: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.elu(alpha) + 1.0

    def __call__(self, net: Supernet, cell: str) -> CellMix:
        return CellMix(torch.distributions.Dirichlet(self.concentration(net.alpha(cell))).rsample())

    def strengths(self, net: Supernet) -> dict[str, torch.Tensor]:
        out = {}
        for cell in net.cell_specs:
            beta = self.concentration(net.alpha(cell).detach())
            out[cell] = beta / beta.sum(dim=-1, keepdim=True)
        return out
