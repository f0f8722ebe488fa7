"""Second-order DARTS (Liu et al. 2019, sec. 2.3, eqs. 6-8): the architecture gradient looks one virtual weight
step ahead; the maths are pure functions in ``hypergradient.py``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from torch.func import functional_call

from nasbench.bounds import POSITIVE, Bounds
from nasbench.config import RunConfig
from nasbench.data.streams import SearchData
from nasbench.errors import UserError
from nasbench.searchers.darts import DartsConfig, DartsSearcher
from nasbench.searchers.hypergradient import (
    EPS_SCALE,
    clip_coefficient,
    forward_mode_hvp,
    hessian_vector_product,
    unrolled_arch_gradient,
    virtual_sgd_step,
)
from nasbench.spaces.base import Batch, Network, SearchSpace


@dataclass(frozen=True)
class SecondOrderConfig(DartsConfig):
    # sec. 2.3, after eq. 8: eps = 0.01 / ||v||. Piecewise-linear nets (ReLU, max-pool) make the central
    # difference a secant across kinks at this eps; the exactness tests shrink it on the CNN.
    fd_eps_scale: float = EPS_SCALE
    # Not in the paper: the real weight step reuses the training gradient that the virtual step takes,
    # which is taken at alpha before this step's architecture update (alg. 1 takes it after). One forward
    # and one backward pass fewer per step; the architecture gradient is unchanged.
    share_train_grad: bool = False
    # Which gradients the reference code clips to the weights' clip norm around the virtual step (None: as the
    # space's own reference does). "off": neither (quark0/darts cnn/architect.py, and NAS-Bench-201's
    # DARTS-V2.py); "step+v": the virtual step's training gradient, then v, the validation gradient at w',
    # before the finite difference (quark0/darts rnn/architect.py); "step": the virtual step's gradient only,
    # as the real step clips it (this suite's rule before the setting existed).
    virtual_clip: str | None = None
    # How the Hessian-vector term is computed: "difference", the paper's central difference (eq. 8, two more
    # passes at w +- eps v); "forward", exactly, by forward-mode differentiation of the architecture gradient
    # along v (one pass carrying v as a tangent; not in the paper).
    hvp: str = "difference"

    bounds: ClassVar[dict[str, Bounds]] = {**DartsConfig.bounds, "fd_eps_scale": POSITIVE}
    # what a record written before a setting existed ran with (nasbench.report reads missing settings so)
    legacy_settings: ClassVar[dict[str, Any]] = {"virtual_clip": "step"}

    def check(self) -> None:
        super().check()
        if self.one_level:
            raise UserError("one_level takes no second-order architecture gradient: use it with darts1 (first order)")
        if self.virtual_clip is not None and self.virtual_clip not in VIRTUAL_CLIPS:
            raise UserError(f"virtual_clip={self.virtual_clip!r}: use one of {', '.join(VIRTUAL_CLIPS)}")
        if self.hvp not in HVPS:
            raise UserError(f"hvp={self.hvp!r}: use one of {', '.join(HVPS)}")


VIRTUAL_CLIPS = ("off", "step", "step+v")
HVPS = ("difference", "forward")
REFERENCE_CLIP = {"darts-ptb": "step+v"}  # space family -> its reference code's rule; elsewhere "off"


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
    optimizer's current lr as xi, its momentum buffer and weight decay; the gradient-norm clip where the
    space's reference code applies it, ``virtual_clip``), the validation gradient at w', and the
    Hessian-vector term by a central difference around w. Weights are substituted functionally (no second
    supernet is copied); the real weights, the optimizer state, the carried state (``frozen_state``) and the
    random state are untouched by the extra passes. Batch-norm running statistics (read only by ``score``)
    see the extra training passes, as in the reference code, but not the validation pass at w', which the
    reference makes on a throw-away copy of the network.
    Passes per step: 5 forward, 5 backward (darts1: 2 and 2), or 4 and 4 with ``share_train_grad``; the two
    finite-difference backward passes ask for alpha's gradient only and so skip the weight-gradient
    kernels. ``hvp="forward"`` replaces those two by one pass whose forward and backward also carry the
    tangent v. Under ``train.autocast`` the Hessian-vector passes still run in float32: a difference of
    two bfloat16 gradients (8 bits of mantissa) taken 2 eps apart would be rounding noise.
    """

    label = "DARTS (second order)"
    summary = "DARTS, second-order (unrolled) architecture gradient (Liu et al., ICLR 2019)"
    config_cls = SecondOrderConfig
    weights_first_on_nb201 = False  # NAS-Bench-201's DARTS-V2.py: the architecture step first, as DARTS

    def __init__(self, space: SearchSpace, cfg: RunConfig, data: SearchData, device: torch.device) -> None:
        if cfg.train.checkpoint_cells:
            # a checkpointed cell recomputes its forward pass in the backward pass with the supernet's own
            # weights, after functional_call has put them back: the virtual step's gradients would be wrong
            raise UserError(
                f"checkpoint_cells=true does not combine with {cfg.searcher}'s substituted weights (second-order "
                "DARTS); drop the setting, or use a first-order searcher such as darts1"
            )
        super().__init__(space, cfg, data, device)
        assert self.model is not None
        arch = {id(a) for a in self.alphas}
        self.weight_names = [f"net.{n}" for n, p in self.model.named_parameters() if id(p) not in arch]
        assert len(self.weight_names) == len(self.weights)
        self.loss_of = _LossOf(self.model)
        self.shared: tuple[list[torch.Tensor], torch.Tensor] | None = None  # see share_train_grad

    def loss_at(self, weights: Sequence[torch.Tensor], batch: Batch, own_buffers: bool = False) -> torch.Tensor:
        """The supernet's loss with ``weights`` in place of its own (alpha stays the supernet's). With
        ``own_buffers``, on copies of the buffers, so that batch-norm running statistics stay as they were."""
        values = dict(zip(self.weight_names, weights))
        if own_buffers:
            values.update({name: b.clone() for name, b in self.loss_of.named_buffers()})
        return functional_call(self.loss_of, values, (batch,))

    def clip_rule(self) -> str:
        """``virtual_clip`` as set, else the rule of the space's reference code."""
        chosen = self.cfg.searcher_cfg.virtual_clip
        return chosen if chosen is not None else REFERENCE_CLIP.get(self.space.family, "off")

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
        with (
            contextlib.nullcontext() if share else self.model.frozen_state(),
            self.seeded_rng(seed),
            self.model.differentiating(self.weights),
        ):
            train_loss = self.model.loss(train)
            raw = torch.autograd.grad(train_loss, self.weights, allow_unused=True, materialize_grads=True)
        if share:
            self.shared = (list(raw), train_loss.detach())
        rule, max_norm = self.clip_rule(), self.cfg.train.grad_clip
        clip = clip_coefficient(raw, max_norm) if rule != "off" else torch.ones((), device=self.device)
        grads = [g * clip for g in raw]
        buffers = [self.w_opt.state.get(w, {}).get("momentum_buffer") for w in self.weights]
        virtual = virtual_sgd_step(self.weights, grads, buffers, xi, group["momentum"], group["weight_decay"])
        virtual = [w.requires_grad_() for w in virtual]
        # The validation pass at w' is this step's real architecture evaluation (darts1 makes it at w):
        # like the reference code, it advances the validation split's carried state; on its own buffers,
        # as the reference's copy of the network keeps the live batch-norm statistics out of it.
        val_loss = self.loss_at(virtual, val, own_buffers=True)
        n = len(self.alphas)
        val_grads = torch.autograd.grad(val_loss, [*self.alphas, *virtual], allow_unused=True, materialize_grads=True)
        del virtual
        direct, v = val_grads[:n], val_grads[n:]
        if rule == "step+v":
            v_clip = clip_coefficient(v, max_norm)
            v = tuple(g * v_clip for g in v)
        c = self.cfg.searcher_cfg

        def grad_alpha_at(ws: list[torch.Tensor]) -> list[torch.Tensor]:
            return self.train_alpha_grad(ws, train, seed, state)

        if c.hvp == "forward":
            hvp = forward_mode_hvp(grad_alpha_at, self.weights, v)
        else:
            hvp = hessian_vector_product(grad_alpha_at, self.weights, v, c.fd_eps_scale)
        for alpha, grad in zip(self.alphas, unrolled_arch_gradient(direct, hvp, clip * xi)):
            alpha.grad = grad
        return val_loss.detach()
