"""DARTS (Liu et al., "DARTS: Differentiable Architecture Search", ICLR 2019).

Alternating bilevel optimisation (sec. 2.3, alg. 1): per step, one Adam step on the architecture
parameters alpha from an architecture-split batch, then one SGD step on the weights w from a
weight-split batch. ``darts1`` uses the first-order approximation (xi = 0 in eq. 6): the architecture
gradient is that of the validation loss at the current weights. ``darts2`` differentiates through one
virtual weight step (eqs. 6-8; the maths are in ``hypergradient.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from nasbench.config import RunConfig
from nasbench.data.streams import SearchData
from nasbench.errors import UserError
from nasbench.genotype import Genotype
from nasbench.searchers.base import Searcher, batch_lr, cosine_lr
from nasbench.searchers.hypergradient import (
    EPS_SCALE,
    clip_coefficient,
    hessian_vector_product,
    unrolled_arch_gradient,
    virtual_sgd_step,
)
from nasbench.spaces.base import Batch, Network, SearchSpace, SupernetOptions
from nasbench.spaces.mixing import Mixer


@dataclass(frozen=True)
class DartsConfig:
    """First-order DARTS has no settings of its own beyond the shared protocol (``train`` section)."""


class DartsSearcher(Searcher):
    summary = "DARTS, first-order approximation (xi = 0) (Liu et al., ICLR 2019)"
    config_cls = DartsConfig

    def __init__(self, space: SearchSpace, cfg: RunConfig, data: SearchData, device: torch.device) -> None:
        super().__init__(space, cfg, data, device)
        t = cfg.train
        self.mixer = self.make_mixer()
        options = SupernetOptions(partial_channels=self.partial_channels(), mixer=self.mixer)
        self.model = space.supernet(cfg.space_cfg, data, options).to(device)
        self.weights = self.model.weight_parameters()
        self.alphas = self.model.arch_parameters()
        self.w_opt = torch.optim.SGD(self.weights, lr=t.w_lr, momentum=t.w_momentum, weight_decay=t.w_weight_decay)
        self.a_opt = torch.optim.Adam(
            self.alphas, lr=t.arch_lr, betas=(t.arch_beta1, t.arch_beta2), weight_decay=t.arch_weight_decay
        )

    def make_mixer(self) -> Mixer:
        """How this method turns alpha into each edge's mixing (DARTS: softmax, every op computed)."""
        return Mixer()

    def partial_channels(self) -> int:
        """K: the mixed ops see 1/K of the channels (PC-DARTS); 1: all of them."""
        return 1

    @property
    def w_lr(self) -> float:
        return float(self.w_opt.param_groups[0]["lr"])

    def start_epoch(self, epoch: int) -> None:
        t = self.cfg.train
        for group in self.w_opt.param_groups:
            group["lr"] = cosine_lr(epoch, t.epochs, t.w_lr, t.w_lr_min)

    def step(self, train: Batch, val: Batch | None) -> dict[str, torch.Tensor]:
        """One architecture step (when there is a ``val`` batch) and one weight step, in DARTS' order (alg. 1:
        alpha first) or, with ``train.weight_step_first``, the weights first (GDAS' and NAS-Bench-201's code)."""
        assert self.model is not None
        stats: dict[str, torch.Tensor] = {}
        with batch_lr(self.w_opt, train):  # the whole step: second order's virtual step uses this lr too
            if self.cfg.train.weight_step_first:
                self.weight_step(train, stats)
            if val is not None:
                self.a_opt.zero_grad(set_to_none=True)
                stats["arch_loss"] = self.arch_gradient(train, val)
                penalty = self.arch_penalty()
                if penalty is not None:  # a regulariser on alpha alone: its gradient is added as it is
                    stats["arch_penalty"] = penalty.detach()
                    for alpha, grad in zip(self.alphas, self.alpha_grads(penalty)):
                        alpha.grad = grad if alpha.grad is None else alpha.grad + grad
                self.a_opt.step()
            if not self.cfg.train.weight_step_first:
                self.weight_step(train, stats)
        return stats

    def weight_step(self, train: Batch, stats: dict[str, torch.Tensor]) -> None:
        self.w_opt.zero_grad(set_to_none=True)
        stats["train_loss"] = self.weight_gradient(train)
        nn.utils.clip_grad_norm_(self.weights, self.cfg.train.grad_clip)
        self.w_opt.step()

    def arch_penalty(self) -> torch.Tensor | None:
        """A term added to the architecture loss that depends on the architecture parameters alone (a
        regulariser, e.g. DrNAS' KL anchor); None: none (DARTS)."""
        return None

    def alpha_grads(self, loss: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.autograd.grad(loss, self.alphas, allow_unused=True, materialize_grads=True))

    def weight_gradient(self, train: Batch) -> torch.Tensor:
        """Set the weights' ``.grad`` to grad_w L_train(w, alpha), alpha as just updated; return the loss."""
        assert self.model is not None
        loss = self.model.loss(train)
        loss.backward()
        return loss.detach()

    def arch_gradient(self, train: Batch, val: Batch) -> torch.Tensor:
        """Set ``alpha.grad`` to the architecture gradient; return the validation loss.

        First order: d L_val(w, alpha) / d alpha. Only alpha's gradient is asked for, so the backward
        pass skips every weight gradient it would otherwise compute and discard.
        """
        assert self.model is not None
        loss = self.model.loss(val)
        for alpha, grad in zip(self.alphas, torch.autograd.grad(loss, self.alphas)):
            alpha.grad = grad
        return loss.detach()

    def derive(self) -> Genotype:
        assert self.model is not None
        return self.model.derive(self.model.mixer.strengths(self.model))

    def state_dict(self) -> dict[str, Any]:
        assert self.model is not None
        return {"model": self.model.state_dict(), "w_opt": self.w_opt.state_dict(), "a_opt": self.a_opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.model is not None
        self.model.load_state_dict(state["model"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])


@dataclass(frozen=True)
class SecondOrderConfig(DartsConfig):
    # sec. 2.3, after eq. 8: eps = 0.01 / ||v||. Piecewise-linear nets (ReLU, max-pool) make the central
    # difference a secant across kinks at this eps; the exactness tests shrink it on the CNN.
    fd_eps_scale: float = EPS_SCALE
    # Not in the paper: the real weight step reuses the training gradient that the virtual step takes,
    # which is taken at alpha before this step's architecture update (alg. 1 takes it after). One forward
    # and one backward pass fewer per step; the architecture gradient is unchanged.
    share_train_grad: bool = False

    def check(self) -> None:
        if not self.fd_eps_scale > 0:
            raise UserError(f"fd_eps_scale={self.fd_eps_scale}: the finite-difference step must be positive")


class _LossOf(nn.Module):
    """``Network.loss`` as ``forward``, so that ``torch.func.functional_call`` can substitute weights."""

    def __init__(self, net: Network) -> None:
        super().__init__()
        self.net = net

    def forward(self, batch: Batch) -> torch.Tensor:
        return self.net.loss(batch)


class SecondOrderDarts(DartsSearcher):
    """Second-order DARTS (Liu et al. 2019, eqs. 6-8): the architecture gradient looks one weight step ahead.

    Per step: a virtual SGD step w' from the training gradient, as the real step would take it (the
    optimizer's current lr as xi, its momentum buffer and weight decay, the gradient-norm clip), the
    validation gradient at w', and the Hessian-vector term by a central difference around w. Weights are
    substituted functionally (no second supernet is copied); the real weights, the optimizer state, the
    carried state (``frozen_state``) and the random state are untouched by the extra passes. Batch-norm
    running statistics (read only by ``score``) do see the extra training passes, as in the reference code.
    Passes per step: 5 forward, 5 backward (darts1: 2 and 2), or 4 and 4 with ``share_train_grad``; the two
    finite-difference backward passes ask for alpha's gradient only and so skip the weight-gradient
    kernels. Under ``train.autocast`` the finite-difference passes still run in float32: a difference of
    two bfloat16 gradients (8 bits of mantissa) taken 2 eps apart would be rounding noise.
    """

    summary = "DARTS, second-order (unrolled) architecture gradient (Liu et al., ICLR 2019)"
    config_cls = SecondOrderConfig

    def __init__(self, space: SearchSpace, cfg: RunConfig, data: SearchData, device: torch.device) -> None:
        super().__init__(space, cfg, data, device)
        assert self.model is not None
        arch = {id(a) for a in self.alphas}
        self.weight_names = [f"net.{n}" for n, p in self.model.named_parameters() if id(p) not in arch]
        assert len(self.weight_names) == len(self.weights)
        self.loss_of = _LossOf(self.model)
        self.shared: tuple[list[torch.Tensor], torch.Tensor] | None = None  # see share_train_grad

    def loss_at(self, weights: Sequence[torch.Tensor], batch: Batch) -> torch.Tensor:
        """The supernet's loss with ``weights`` in place of its own (alpha stays the supernet's)."""
        return functional_call(self.loss_of, dict(zip(self.weight_names, weights)), (batch,))

    @contextlib.contextmanager
    def seeded_rng(self, seed: int) -> Iterator[None]:
        """Run with the random state of ``seed`` (CPU and this CUDA device); leave the live state as it was."""
        cuda = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.random.default_generator.manual_seed(seed)  # the CPU generator only
            if cuda:
                with torch.cuda.device(self.device):
                    torch.cuda.manual_seed(seed)
            yield

    def train_alpha_grad(self, weights: list[torch.Tensor], train: Batch, seed: int, state: Any) -> list[torch.Tensor]:
        """grad_alpha L_train(weights, alpha) in float32, from the carried ``state`` the virtual step's pass
        started from; an extra pass, so the carried state is left as it was."""
        assert self.model is not None
        float32 = torch.autocast(self.device.type, enabled=False)
        with self.model.frozen_state(), self.seeded_rng(seed), float32:
            self.model.restore_state(state)
            loss = self.loss_at(weights, train)
        return list(torch.autograd.grad(loss, self.alphas, allow_unused=True, materialize_grads=True))

    def weight_gradient(self, train: Batch) -> torch.Tensor:
        if self.shared is None:
            return super().weight_gradient(train)
        (grads, loss), self.shared = self.shared, None
        for w, g in zip(self.weights, grads):
            w.grad = g
        return loss

    def arch_gradient(self, train: Batch, val: Batch) -> torch.Tensor:
        """Set ``alpha.grad`` to eq. 7's unrolled gradient; return L_val(w', alpha)."""
        assert self.model is not None
        group = self.w_opt.param_groups[0]
        assert group["dampening"] == 0 and not group["nesterov"], "virtual_sgd_step mirrors plain momentum SGD"
        xi = float(group["lr"])
        # The three extra passes on the training batch draw the same dropout masks (common random numbers), so
        # that they evaluate one function of w: otherwise mask noise / (2 eps) swamps the difference. Their seed
        # is the one draw they take from the live random state, which the passes themselves leave alone.
        seed = int(torch.randint(2**62, (1,)))
        share = self.cfg.searcher_cfg.share_train_grad
        state = self.model.carried_state()
        # Shared, this is the step's real training pass and advances the carried state; otherwise the real
        # weight step makes its own pass later.
        with contextlib.nullcontext() if share else self.model.frozen_state(), self.seeded_rng(seed):
            train_loss = self.model.loss(train)
        raw = torch.autograd.grad(train_loss, self.weights, allow_unused=True, materialize_grads=True)
        if share:
            self.shared = (list(raw), train_loss.detach())
        clip = clip_coefficient(raw, self.cfg.train.grad_clip)  # as the real step clips
        grads = [g * clip for g in raw]
        buffers = [self.w_opt.state.get(w, {}).get("momentum_buffer") for w in self.weights]
        virtual = virtual_sgd_step(self.weights, grads, buffers, xi, group["momentum"], group["weight_decay"])
        virtual = [w.requires_grad_() for w in virtual]
        # The validation pass at w' is this step's real architecture evaluation (darts1 makes it at w):
        # like the reference code, it advances the validation split's carried state.
        val_loss = self.loss_at(virtual, val)
        n = len(self.alphas)
        val_grads = torch.autograd.grad(val_loss, [*self.alphas, *virtual], allow_unused=True, materialize_grads=True)
        del virtual
        direct, v = val_grads[:n], val_grads[n:]
        scale = self.cfg.searcher_cfg.fd_eps_scale
        hvp = hessian_vector_product(lambda ws: self.train_alpha_grad(ws, train, seed, state), self.weights, v, scale)
        for alpha, grad in zip(self.alphas, unrolled_arch_gradient(direct, hvp, clip * xi)):
            alpha.grad = grad
        return val_loss.detach()
