"""The searchers' mixers: how each method turns architecture parameters into a supernet's ``CellMix``.

Every mixer works on any space, through the ``CellSpec`` each supernet declares; none of them knows a
space. DARTS' softmax relaxation is the base ``Mixer`` (``nasbench.spaces.mixing``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
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
    trains and scores the shared weights this way.

    ``every_op``: compute every op of every edge and weigh it 1 on the path, 0 elsewhere (Li & Talwalkar's
    code on the DARTS space): the same output and gradients, but every batch norm sees the batch and, in
    training, updates its running statistics."""

    def __init__(self, net: Supernet, genotype: Genotype, every_op: bool = False) -> None:
        self.every_op = every_op
        self.one_hot: dict[str, torch.Tensor] = {}
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
            if every_op:
                one_hot = torch.zeros(spec.n_edges, len(spec.ops), device=next(net.parameters()).device)
                for row, cols in enumerate(active):
                    one_hot[row, list(cols)] = 1.0
                self.one_hot[cell] = one_hot

    def __call__(self, net: Supernet, cell: str) -> CellMix:
        if self.every_op:
            return CellMix(self.one_hot[cell])
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

    def expected(self, net: Supernet, cell: str) -> CellMix:
        return Mixer.__call__(self, net, cell)  # softmax(alpha), every op


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

    def expected(self, net: Supernet, cell: str) -> CellMix:
        return Mixer.__call__(self, net, cell)  # softmax(alpha): the sample's limit as tau goes to 0


class DirichletMixer(Mixer):
    """DrNAS (Chen et al., ICLR 2021; its ``utils.process_step_vector``): per forward pass and edge, mixing
    weights sampled from Dirichlet(elu(alpha) + 1) by the reparameterised (pathwise) sampler, every op
    computed; the genotype is derived from the Dirichlet mean (the same argmax as softmax(alpha))."""

    @staticmethod
    def concentration(alpha: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.elu(alpha) + 1.0

    def __call__(self, net: Supernet, cell: str) -> CellMix:
        beta = self.concentration(net.alpha(cell))  # 0 where an edge may not mix an op
        allowed = beta > 0
        sample = torch.distributions.Dirichlet(torch.where(allowed, beta, torch.ones_like(beta))).rsample()
        if bool(allowed.all()):
            return CellMix(sample)
        sample = sample * allowed  # as DrNAS prunes: sampled over all ops, masked, renormalised
        return CellMix(sample / sample.sum(dim=-1, keepdim=True))

    def mean(self, alpha: torch.Tensor) -> torch.Tensor:
        beta = self.concentration(alpha)
        return beta / beta.sum(dim=-1, keepdim=True)

    def strengths(self, net: Supernet) -> dict[str, torch.Tensor]:
        return {cell: self.mean(net.alpha(cell).detach()) for cell in net.cell_specs}

    def expected(self, net: Supernet, cell: str) -> CellMix:
        return CellMix(self.mean(net.alpha(cell)))


class SigmoidMixer(Mixer):
    """FairDARTS (Chu et al., ECCV 2020; ``fairdarts/model_search.py``): each op weighted by sigmoid(alpha),
    independently of the others (no softmax, no competition), alpha starting at zero (every weight 0.5)."""

    def cell_parameters(self, cell: str, spec: CellSpec, alpha: torch.Tensor) -> dict[str, torch.Tensor]:
        alpha.zero_()
        return {}

    def __call__(self, net: Supernet, cell: str) -> CellMix:
        return CellMix(torch.sigmoid(net.alpha(cell)))

    def strengths(self, net: Supernet) -> dict[str, torch.Tensor]:
        return {cell: torch.sigmoid(net.alpha(cell).detach()) for cell in net.cell_specs}


class AuxSkipMixer(Mixer):
    """DARTS- (Chu et al., ICLR 2021): ``base``'s mix with an auxiliary skip connection of weight ``beta`` on
    every edge, outside the architecture parameters and left out of the derivation (``CellMix.aux_skip``; the
    supernet is built with ``SupernetOptions(aux_skip=True)``, so that strided edges have their own)."""

    def __init__(self, base: Mixer, beta: float) -> None:
        self.base, self.beta = base, beta

    def cell_parameters(self, cell: str, spec: CellSpec, alpha: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.base.cell_parameters(cell, spec, alpha)

    def __call__(self, net: Supernet, cell: str) -> CellMix:
        return replace(self.base(net, cell), aux_skip=self.beta)

    def strengths(self, net: Supernet) -> dict[str, torch.Tensor]:
        return self.base.strengths(net)

    def expected(self, net: Supernet, cell: str) -> CellMix:
        return replace(self.base.expected(net, cell), aux_skip=self.beta)


class ExpectedMixer(Mixer):
    """``base``'s deterministic mix (``Mixer.expected``): what the suite's own measurements (the Hessian
    eigenvalue) see, so that a sampling method is measured on its expected supernet, not on one draw."""

    def __init__(self, base: Mixer) -> None:
        self.base = base

    def __call__(self, net: Supernet, cell: str) -> CellMix:
        return self.base.expected(net, cell)


class ReweightedMixer(Mixer):
    """``base``'s mix with its op weights replaced by given ones per cell (SDARTS' perturbed weights for the
    weight step); which ops are computed, edge factors and biases stay the base's."""

    def __init__(self, base: Mixer, weights: dict[str, torch.Tensor]) -> None:
        self.base, self.weights = base, weights

    def __call__(self, net: Supernet, cell: str) -> CellMix:
        mix = self.base(net, cell)
        return replace(mix, weights=self.weights[cell])
