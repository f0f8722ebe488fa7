"""SDARTS' perturbation of the mixing weights before each weight step (Chen & Hsieh, "Stabilizing
Differentiable Architecture Search via Perturbation-based Regularization", ICML 2020; its
``attacker/perturb.py``), as functions of the weights.

Their code perturbs the mixing weights p (softmax(alpha), on the simplex), trains the weights one step at
the perturbed p, then restores alpha; the architecture step sees no perturbation. After every change p is
projected back: each edge's row clamped to [0, 1] and renormalised.

- RS: p + U(-eps, eps) elementwise.
- ADV: a random start as RS, then ``steps`` sign-gradient ascent steps of size 2 eps / steps on the training
  loss, each projected onto the L-infinity ball of radius eps around p and onto the simplex; the attack is
  dropped when it did not raise the loss. Their attack runs the supernet in eval mode.

eps is annealed linearly from 0.03 towards 0.3: eps_t = 0.03 + 0.27 t / epochs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

PERTURBATIONS = ("none", "random", "adversarial")
Weights = dict[str, torch.Tensor]  # cell -> [n_edges, n_ops]


def clip_to_simplex(p: torch.Tensor) -> torch.Tensor:
    """Each row clamped to [0, 1] and divided by its sum; a row clamped to all zeros keeps its largest entry."""
    clamped = p.clamp(0.0, 1.0)
    empty = clamped.sum(dim=-1) == 0
    if bool(empty.any()):
        clamped = clamped.clone()
        clamped[empty, p[empty].argmax(dim=-1)] = 1.0
    return clamped / clamped.sum(dim=-1, keepdim=True)


def uniform_noise(like: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.empty_like(like).uniform_(-eps, eps)


def random_perturbation(weights: Weights, eps: float) -> Weights:
    return {cell: clip_to_simplex(p + uniform_noise(p, eps)) for cell, p in weights.items()}


def adversarial_perturbation(
    loss_at: Callable[[Weights], torch.Tensor], weights: Weights, eps: float, steps: int
) -> Weights:
    """PGD on ``loss_at`` (the training loss at given mixing weights) from a random start in the eps-ball."""
    start = {cell: p.detach() for cell, p in weights.items()}
    with torch.no_grad():
        before = float(loss_at(start))
    p = random_perturbation(start, eps)
    for _ in range(steps):
        p = {cell: w.detach().requires_grad_() for cell, w in p.items()}
        grads = torch.autograd.grad(loss_at(p), list(p.values()))
        with torch.no_grad():
            p = {
                cell: clip_to_simplex(start[cell] + (w + 2 * eps / steps * g.sign() - start[cell]).clamp(-eps, eps))
                for (cell, w), g in zip(p.items(), grads)
            }
    with torch.no_grad():
        after = float(loss_at(p))
    return start if before > after else {cell: w.detach() for cell, w in p.items()}


def epsilon(epoch: int, epochs: int, start: float, end: float) -> float:
    """SDARTS' schedule: ``start`` at epoch 0, rising linearly by (end - start) / epochs per epoch."""
    return start + (end - start) * epoch / epochs
