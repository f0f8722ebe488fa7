"""The mixing hook between a supernet and a searcher, and the partial-channel mechanics every space shares.

A supernet computes, once per forward pass and cell type, a ``CellMix`` by calling its ``mixer`` (set by
the searcher): each edge's op weights, which ops to compute, an optional per-edge factor and bias. The
space implements one mixing path that follows a ``CellMix``, whatever produced it:

- DARTS: softmax(alpha) weights, every op computed (``SoftmaxMixer``, the default);
- GDAS: one-hot weights with the softmax's gradient, only the sampled op computed;
- single-path training: weights None (1 for each computed op), one op per edge of a genotype;
- PC-DARTS: softmax(alpha) weights and a per-edge factor, in a supernet built with partial channels.

The mixers themselves (everything specific to a method) live in ``nasbench.searchers.mixers``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from nasbench.spaces.base import Supernet


@dataclass(frozen=True)
class CellSpec:
    """A cell type's edges and ops: row ``r`` of its architecture parameters is edge ``pairs[r]``."""

    ops: tuple[str, ...]
    pairs: tuple[tuple[int, int], ...]  # (src, dst) per edge; dst-major, sources ascending
    # per edge, the op columns it may mix (a reduced space such as RobustDARTS' S1); None: every column
    allowed: tuple[tuple[int, ...], ...] | None = None

    @property
    def n_edges(self) -> int:
        return len(self.pairs)

    @property
    def destinations(self) -> list[int]:
        return [dst for _, dst in self.pairs]


@dataclass
class CellMix:
    """How the edges of one cell type mix their ops in one forward pass.

    ``weights`` [n_edges, n_ops] (columns in ``CellSpec.ops`` order), or None: weight 1 on each computed op
    and no architecture parameter involved. ``active``: per edge, the op columns to compute (others add
    nothing); None: every op. ``none`` is never computed (it adds zeros). ``edge_scale`` [n_edges]: a factor
    on each edge's whole output. ``bias`` [n_edges]: a scalar added to each edge's output, computed or not
    (GDAS adds the weights of its unsampled ops this way: zero in value, but they carry the gradient).
    ``aux_skip``: the weight of an auxiliary skip connection on every edge, outside the ops and the
    architecture parameters (DARTS-): the identity, or on a strided edge a reduction of its own, which a
    supernet builds when asked to (``SupernetOptions.aux_skip``); 0: none."""

    weights: torch.Tensor | None
    active: Sequence[Sequence[int]] | None = None
    edge_scale: torch.Tensor | None = None
    bias: torch.Tensor | None = None
    aux_skip: float = 0.0

    def row(self, r: int) -> tuple[torch.Tensor | None, Sequence[int] | None]:
        """Edge ``r``'s weights [n_ops] (or None) and active columns (or None)."""
        return (None if self.weights is None else self.weights[r]), (None if self.active is None else self.active[r])

    def aux_skip_folded(self, column: int) -> CellMix:
        """This mix with ``aux_skip`` added to the weight of op ``column``, computed on every edge: the
        auxiliary skip of a space whose op ``column`` is the identity on every edge, with no weights."""
        if not self.aux_skip:
            return self
        if self.weights is None:
            raise ValueError("an auxiliary skip needs op weights; this mix has none (a single path)")
        weights = self.weights.clone()
        weights[:, column] += self.aux_skip
        active = None if self.active is None else [tuple(sorted({*a, column})) for a in self.active]
        return replace(self, weights=weights, active=active, aux_skip=0.0)


class Mixer:
    """Turns a supernet's architecture parameters into each cell's ``CellMix``. This base class is DARTS'
    continuous relaxation: softmax(alpha) over the ops of every edge, every op computed."""

    def cell_parameters(self, cell: str, spec: CellSpec, alpha: torch.Tensor) -> dict[str, torch.Tensor]:
        """Called when the supernet is built, right after ``cell``'s ``alpha`` was drawn (1e-3 * N(0, 1)): the
        architecture parameters this mixer adds besides it (e.g. PC-DARTS' beta). A method whose alpha starts
        elsewhere re-initialises ``alpha`` here, in place."""
        return {}

    def __call__(self, net: Supernet, cell: str) -> CellMix:
        return CellMix(torch.softmax(net.alpha(cell), dim=-1))

    def strengths(self, net: Supernet) -> dict[str, torch.Tensor]:
        """Per cell type, detached [n_edges, n_ops]: the weights the genotype is derived from and the record
        keeps (for a sampling method, their expectation or the distribution's parameters' image)."""
        return {cell: torch.softmax(net.alpha(cell).detach(), dim=-1) for cell in net.cell_specs}

    def expected(self, net: Supernet, cell: str) -> CellMix:
        """A deterministic mix of ``cell``: for a sampling method, every op weighted by its expectation; for
        the others, the mix itself (what derivation rules that probe the supernet evaluate)."""
        return self(net, cell)


def channel_shuffle(x: torch.Tensor, groups: int, dim: int = 1) -> torch.Tensor:
    """Along ``dim`` (size C): channel c * groups + g is taken from group g's channel c (ShuffleNet)."""
    dim = dim % x.dim()
    c = x.shape[dim]
    split = (*x.shape[:dim], groups, c // groups, *x.shape[dim + 1 :])
    return x.reshape(split).transpose(dim, dim + 1).reshape(x.shape)


@dataclass(frozen=True)
class PartialChannels:
    """Partial channel connections (PC-DARTS, Xu et al. 2020, sec. 3.2), for any space with channels or
    hidden units: the first C/K channels (along ``dim``) of an edge's input go through its ops, the rest
    bypass them, and a channel shuffle interleaves the two parts. K = 1: every channel is mixed."""

    channels: int
    k: int = 1
    dim: int = 1

    @property
    def mixed(self) -> int:
        return self.channels // self.k

    def _slice(self, x: torch.Tensor, start: int, stop: int | None) -> torch.Tensor:
        # indexing, not narrow: a full-width index is an alias to autograd, which keeps the order in which it
        # sums the gradient contributions of the input (and so every float) as the spaces had it before
        return x[(slice(None),) * (self.dim % x.dim()) + (slice(start, stop),)]

    def part(self, x: torch.Tensor) -> torch.Tensor:
        return self._slice(x, 0, self.mixed)

    def rest(self, x: torch.Tensor) -> torch.Tensor:
        return self._slice(x, self.mixed, None)

    def join(self, out: torch.Tensor, rest: torch.Tensor, shuffle: bool = True) -> torch.Tensor:
        """The mixed part ``out`` and the bypassed ``rest`` (already reshaped as the edge's stride needs),
        concatenated and shuffled: the edge's output."""
        joined = torch.cat([out, rest], dim=self.dim)
        return channel_shuffle(joined, self.k, self.dim) if shuffle else joined

    def add_edge(
        self,
        mixed: list[torch.Tensor],
        bypassed: list[torch.Tensor],
        out: torch.Tensor,
        source: torch.Tensor,
        scale: torch.Tensor | None,
    ) -> None:
        """Add one computed edge of stride 1 to its node's terms for ``node``: its mixed part ``out`` and, with
        K > 1, the bypassed rest of its ``source``, both times the edge's ``scale`` (None: 1)."""
        mixed.append(out if scale is None else scale * out)
        if self.k > 1:
            rest = self.rest(source)
            bypassed.append(rest if scale is None else scale * rest)

    def node(self, mixed: Sequence[torch.Tensor], bypassed: Sequence[torch.Tensor]) -> torch.Tensor:
        """A node from its computed edges (at least one): the sum of their mixed parts and, with K > 1, of
        their bypassed rests, joined once. Concatenation and shuffle are linear, so this is the sum of each
        edge's own ``join``, with one concatenation and one shuffle per node instead of one per edge."""
        out = sum(mixed[1:], mixed[0])
        return out if self.k == 1 else self.join(out, sum(bypassed[1:], bypassed[0]))
