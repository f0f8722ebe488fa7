"""Terms added to the architecture loss, as pure functions of the architecture parameters.

- ``beta_continuous`` (beta-DARTS, Ye et al., CVPR 2022; its ``optimizers/darts/architect.py``, ``mlc_loss``):
  the mean over edges of logsumexp(alpha) over ops. Its gradient is softmax(alpha) / n_edges: every alpha
  is pushed down in proportion to its own mixing weight. Their code weighs it by 50 * epoch / 100.
- ``zero_one`` (FairDARTS, Chu et al., ECCV 2020; ``fairdarts/separate_loss.py``): -mean((sigmoid(alpha) -
  0.5)^2) over every entry, which pushes each sigmoid weight towards 0 or 1; weight 10 from epoch 0.
- ``dirichlet_kl_to_uniform`` (DrNAS' KL anchor): sum over edges of KL(Dirichlet(beta) || Dirichlet(1)).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

REGULARIZERS = ("none", "beta", "zero-one")
DEFAULT_WEIGHTS = {"beta": 50.0, "zero-one": 10.0}  # beta-DARTS: the weight rises to 50; FairDARTS: w01 = 10


def beta_continuous(alphas: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean over the edges of every cell of logsumexp over the edge's ops; alphas: [n_edges, n_ops] each.
    (Their released code applies it to NAS-Bench-201's single alpha; for several cells the suite takes the
    mean over all edges of all cells.)"""
    per_edge = torch.cat([torch.logsumexp(a, dim=-1) for a in alphas])
    return per_edge.mean()


def zero_one(alphas: Sequence[torch.Tensor]) -> torch.Tensor:
    """-mean over every entry of (sigmoid(alpha) - 0.5)^2."""
    weights = torch.cat([torch.sigmoid(a).reshape(-1) for a in alphas])
    return -(weights - 0.5).pow(2).mean()


def dirichlet_kl_to_uniform(concentration: torch.Tensor) -> torch.Tensor:
    """Sum over rows of KL(Dirichlet(row) || Dirichlet(1, ..., 1)); concentration [E, K] > 0."""
    p = torch.distributions.Dirichlet(concentration)
    q = torch.distributions.Dirichlet(torch.ones_like(concentration))
    return torch.distributions.kl_divergence(p, q).sum()


def regularizer_weight(name: str, weight: float | None, epoch: int, epochs: int) -> float:
    """The regulariser's weight in ``epoch`` (from 0): beta-DARTS' rises linearly from 0 (``weight`` x
    epoch / epochs: their NAS-Bench-201 run goes from 0 to 49.5 over 100 epochs); FairDARTS' is constant."""
    w = DEFAULT_WEIGHTS[name] if weight is None else weight
    return w * epoch / epochs if name == "beta" else w


def regularizer(name: str, alphas: Sequence[torch.Tensor]) -> torch.Tensor:
    return beta_continuous(alphas) if name == "beta" else zero_one(alphas)
