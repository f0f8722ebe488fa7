"""DARTS (Liu et al., "DARTS: Differentiable Architecture Search", ICLR 2019).

Alternating bilevel optimisation (sec. 2.3, alg. 1): per step, one Adam step on the architecture
parameters alpha from an architecture-split batch, then one SGD step on the weights w from a
weight-split batch. ``darts1`` uses the first-order approximation (xi = 0 in eq. 6): the architecture
gradient is that of the validation loss at the current weights (``darts2``: ``second_order.py``).

Every supernet searcher is built on ``DartsSearcher`` and inherits the pieces of ``DartsConfig``, each off by
default, so that they combine with any method: a regulariser on the architecture loss, a perturbation of the
mixing weights before each weight step, an auxiliary skip on every edge, a larger weight decay, and a
derivation rule other than the space's (``anticollapse.py`` names the methods built from them).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from nasbench.bounds import AT_LEAST_ONE, NON_NEGATIVE, OPEN_UNIT, POSITIVE, Bounds, check_order
from nasbench.config import RunConfig
from nasbench.data.streams import SearchData
from nasbench.errors import UserError
from nasbench.genotype import Genotype
from nasbench.searchers.base import Searcher, batch_lr, cosine_lr, weight_sgd
from nasbench.searchers.mixers import AuxSkipMixer, ReweightedMixer
from nasbench.searchers.perturbation import PERTURBATIONS, adversarial_perturbation, epsilon, random_perturbation
from nasbench.searchers.projection import DERIVATIONS, ProjectedMixer, Projection, PtSchedule, threshold_genotype
from nasbench.searchers.regularizers import REGULARIZERS, regularizer, regularizer_weight
from nasbench.spaces.base import Batch, SearchSpace, SupernetOptions
from nasbench.spaces.mixing import Mixer


@dataclass(frozen=True)
class DartsConfig:
    """The pieces any supernet searcher combines with its own method; DARTS uses none of them."""

    regularizer: str = "none"  # on the architecture loss: "beta" (beta-DARTS) or "zero-one" (FairDARTS)
    regularizer_weight: float | None = None  # None: the method's (beta: rises from 0 to 50; zero-one: 10)
    perturb: str = "none"  # the weight step's mixing weights: "random" (SDARTS-RS), "adversarial" (SDARTS-ADV)
    perturb_eps_start: float = 0.03  # SDARTS: eps from 0.03 at epoch 0, linearly towards 0.3
    perturb_eps_end: float = 0.3
    perturb_steps: int = 7  # SDARTS-ADV: PGD steps of size 2 eps / steps
    aux_skip: float = 0.0  # DARTS-: an auxiliary skip of this weight at epoch 0, decayed linearly towards 0
    l2_factor: float = 1.0  # R-DARTS(L2): the weights' decay (train.w_weight_decay) multiplied by this
    derive: str = "space"  # "space": the space's rule; "threshold" (FairDARTS); "pt" (DARTS-PT)
    derive_threshold: float = 0.85  # FairDARTS: an edge's op is kept only if its weight reaches this
    pt_interval: int = 5  # DARTS-PT: tuning epochs between decisions (their scripts: 5)
    pt_lr: float = 0.0025  # DARTS-PT: the tuning's weight lr (0.025 / 10)
    pt_lr_min: float | None = None  # None: constant (their NAS-Bench-201 code); cosine to this otherwise
    # one-level optimisation: alpha and the weights from one loss on the same weight-split batch, one backward
    # pass, both stepped (SNAS' code; DARTS' one-level baseline, sec. 3.3); the architecture split is then
    # used only to score the search
    one_level: bool = False
    arch_grad_clip: float = 0.0  # clip alpha's gradient to this norm before its step (SNAS' code: 10); 0: no clip

    bounds: ClassVar[dict[str, Bounds]] = {
        **dict.fromkeys(
            ("regularizer_weight", "perturb_eps_start", "perturb_eps_end", "aux_skip", "arch_grad_clip"), NON_NEGATIVE
        ),
        **dict.fromkeys(("perturb_steps", "pt_interval"), AT_LEAST_ONE),
        **dict.fromkeys(("l2_factor", "pt_lr"), POSITIVE),
        "pt_lr_min": NON_NEGATIVE,
        "derive_threshold": OPEN_UNIT,
    }

    def check(self) -> None:
        choices = {"regularizer": REGULARIZERS, "perturb": PERTURBATIONS, "derive": DERIVATIONS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise UserError(f"{name}={getattr(self, name)!r}: use one of {', '.join(allowed)}")
        check_order(self, "perturb_eps_start", "perturb_eps_end", "eps rises from the first to the second")
        check_order(self, "pt_lr_min", "pt_lr", "the tuning anneals down to it")
        if self.one_level and self.perturb != "none":
            raise UserError(f"one_level with perturb={self.perturb}: the perturbation needs a weight step of its own")


class DartsSearcher(Searcher):
    label = "DARTS (first order)"
    summary = "DARTS, first-order approximation (xi = 0) (Liu et al., ICLR 2019)"
    config_cls = DartsConfig
    # Whether the method's own NAS-Bench-201 code takes the weight step before the architecture step, which
    # the `paper` preset of that space then follows: NAS-Bench-201's DARTS-V1.py does; DARTS-V2.py, and
    # beta-DARTS', SDARTS' and DARTS-PT's nasbench201/train_search.py, take DARTS' order.
    weights_first_on_nb201: ClassVar[bool] = True

    @classmethod
    def preset_overrides(cls, space: SearchSpace, preset: str) -> dict[str, dict[str, Any]]:
        if preset == "paper" and space.family == "nas-bench-201" and cls.weights_first_on_nb201:
            return {"train": {"weight_step_first": True}}
        return {}

    def __init__(self, space: SearchSpace, cfg: RunConfig, data: SearchData, device: torch.device) -> None:
        super().__init__(space, cfg, data, device)
        t, c = cfg.train, cfg.searcher_cfg
        self.mixer = self.make_mixer()  # the method's relaxation; the supernet's mixer adds the pieces around it
        mixer: Mixer = self.mixer
        if c.aux_skip > 0:
            self.aux_skip = AuxSkipMixer(mixer, c.aux_skip)
            mixer = self.aux_skip
        self.projection = Projection() if c.derive == "pt" else None
        if self.projection is not None:
            mixer = ProjectedMixer(mixer, self.projection)
        options = SupernetOptions(
            partial_channels=self.partial_channels(),
            mixer=mixer,
            aux_skip=c.aux_skip > 0,
            checkpoint_cells=t.checkpoint_cells,
            recompute_depthwise=t.recompute_depthwise,
        )
        self.model = space.supernet(cfg.space_cfg, data, options).to(device)
        self.weights = self.model.weight_parameters()
        self.alphas = self.model.arch_parameters()
        self.w_opt = self.weight_optimizer(t.w_lr)
        self.a_opt = torch.optim.Adam(
            self.alphas, lr=t.arch_lr, betas=(t.arch_beta1, t.arch_beta2), weight_decay=t.arch_weight_decay
        )
        self.pt = PtSchedule(self, seed=cfg.seed) if self.projection is not None else None
        self.eps, self.regularizer_weight = c.perturb_eps_start, 0.0  # set per epoch by start_epoch
        self.epoch = 0

    def weight_optimizer(self, lr: float) -> torch.optim.SGD:
        t = self.cfg.train
        return weight_sgd(self.weights, t, lr, t.w_weight_decay * self.cfg.searcher_cfg.l2_factor)

    def epochs(self) -> int:
        return self.cfg.train.epochs + (self.pt.epochs if self.pt is not None else 0)

    def make_mixer(self) -> Mixer:
        """How this method turns alpha into each edge's mixing (DARTS: softmax, every op computed)."""
        return Mixer()

    def partial_channels(self) -> int:
        """K: the mixed ops see 1/K of the channels (PC-DARTS); 1: all of them."""
        return 1

    @property
    def w_lr(self) -> float:
        return float(self.w_opt.param_groups[0]["lr"])

    def arch_steps(self, epoch: int) -> bool:
        """Whether this epoch takes architecture steps (PC-DARTS: not during its warm-up)."""
        return True

    def uses_val_batches(self, epoch: int) -> bool:
        return self.arch_steps(epoch) and not self.cfg.searcher_cfg.one_level

    def start_epoch(self, epoch: int) -> None:
        t, c = self.cfg.train, self.cfg.searcher_cfg
        self.epoch = epoch
        if epoch >= t.epochs and self.pt is not None:  # DARTS-PT's projection after the search
            self.pt.start_epoch(epoch - t.epochs)
            return
        for group in self.w_opt.param_groups:
            group["lr"] = cosine_lr(epoch, t.epochs, t.w_lr, t.w_lr_min)
        if c.aux_skip > 0:
            self.aux_skip.beta = c.aux_skip * (1.0 - epoch / t.epochs)  # DARTS-: linear decay
        self.eps = epsilon(epoch, t.epochs, c.perturb_eps_start, c.perturb_eps_end)
        self.regularizer_weight = 0.0
        if c.regularizer != "none":
            self.regularizer_weight = regularizer_weight(c.regularizer, c.regularizer_weight, epoch, t.epochs)

    def step(self, train: Batch, val: Batch | None) -> dict[str, torch.Tensor]:
        """One architecture step (when there is a ``val`` batch) and one weight step, in DARTS' order (alg. 1:
        alpha first) or, with ``train.weight_step_first``, the weights first (GDAS' and NAS-Bench-201's code)."""
        assert self.model is not None
        stats: dict[str, torch.Tensor] = {}
        if self.cfg.searcher_cfg.one_level:
            with batch_lr(self.w_opt, train):
                self.one_level_step(train, stats)
            return stats
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
                self.arch_step()
            if not self.cfg.train.weight_step_first:
                self.weight_step(train, stats)
        return stats

    def arch_step(self) -> None:
        clip = self.cfg.searcher_cfg.arch_grad_clip
        if clip > 0:
            nn.utils.clip_grad_norm_(self.alphas, clip)
        self.a_opt.step()

    def one_level_step(self, train: Batch, stats: dict[str, torch.Tensor]) -> None:
        """``one_level``: the training loss (and any penalty on alpha) differentiated once, for the weights and
        alpha together; the weights' gradient clipped as in a weight step, then both stepped."""
        assert self.model is not None
        self.w_opt.zero_grad(set_to_none=True)
        self.a_opt.zero_grad(set_to_none=True)
        loss = self.model.loss(train)
        stats["train_loss"] = stats["arch_loss"] = loss.detach()
        arch = self.arch_steps(self.epoch)
        penalty = self.arch_penalty() if arch else None
        if penalty is not None:
            stats["arch_penalty"] = penalty.detach()
        (loss if penalty is None else loss + penalty).backward()
        nn.utils.clip_grad_norm_(self.weights, self.cfg.train.grad_clip)
        if arch:
            self.arch_step()
        self.w_opt.step()

    def weight_step(self, train: Batch, stats: dict[str, torch.Tensor]) -> None:
        assert self.model is not None
        with contextlib.ExitStack() as stack:
            if self.cfg.searcher_cfg.perturb != "none":
                stack.enter_context(self.model.mixed_by(ReweightedMixer(self.model.mixer, self.perturbed(train))))
            self.w_opt.zero_grad(set_to_none=True)
            stats["train_loss"] = self.weight_gradient(train)
            nn.utils.clip_grad_norm_(self.weights, self.cfg.train.grad_clip)
            self.w_opt.step()

    def perturbed(self, train: Batch) -> dict[str, torch.Tensor]:
        """SDARTS: the mixing weights of this weight step, perturbed within ``self.eps`` (``perturbation.py``)."""
        assert self.model is not None
        model, mixer = self.model, self.model.mixer
        weights = {}
        for cell in model.cell_specs:
            mix = mixer(model, cell)
            assert mix.weights is not None, "perturbation needs mixing weights"
            weights[cell] = mix.weights.detach()
        if self.cfg.searcher_cfg.perturb == "random":
            return random_perturbation(weights, self.eps)

        def loss_at(p: dict[str, torch.Tensor]) -> torch.Tensor:  # in eval mode, as their attack runs
            with model.mixed_by(ReweightedMixer(mixer, p)), model.frozen_state():
                return model.loss(train)

        model.eval()
        try:
            with model.differentiating([]):  # the attack differentiates the mixing weights alone
                return adversarial_perturbation(loss_at, weights, self.eps, self.cfg.searcher_cfg.perturb_steps)
        finally:
            model.train()

    def arch_penalty(self) -> torch.Tensor | None:
        """A term added to the architecture loss that depends on the architecture parameters alone (the
        ``regularizer`` piece; DrNAS adds its KL anchor); None: none (DARTS)."""
        name = self.cfg.searcher_cfg.regularizer
        if name == "none" or self.regularizer_weight == 0:
            return None
        assert self.model is not None
        alphas = [self.model.alpha(cell) for cell in self.model.cell_specs]
        return self.regularizer_weight * regularizer(name, alphas)

    def alpha_grads(self, loss: torch.Tensor) -> list[torch.Tensor]:
        return list(torch.autograd.grad(loss, self.alphas, allow_unused=True, materialize_grads=True))

    def weight_gradient(self, train: Batch) -> torch.Tensor:
        """Set the weights' ``.grad`` to grad_w L_train(w, alpha), alpha as just updated; return the loss."""
        assert self.model is not None
        with self.model.differentiating(self.weights):
            loss = self.model.loss(train)
            loss.backward()
        return loss.detach()

    def arch_gradient(self, train: Batch, val: Batch) -> torch.Tensor:
        """Set ``alpha.grad`` to the architecture gradient; return the validation loss.

        First order: d L_val(w, alpha) / d alpha, with the weights out of the graph (``differentiating``).
        """
        assert self.model is not None
        with self.model.differentiating(self.alphas):
            loss = self.model.loss(val)
            grads = torch.autograd.grad(loss, self.alphas)
        for alpha, grad in zip(self.alphas, grads):
            alpha.grad = grad
        return loss.detach()

    def derive(self) -> Genotype:
        """The space's rule on the architecture weights (DARTS-PT's, once projected), or FairDARTS' threshold."""
        assert self.model is not None
        strengths = self.model.mixer.strengths(self.model)
        genotype = self.model.derive(strengths)
        c = self.cfg.searcher_cfg
        if c.derive == "threshold":
            genotype = threshold_genotype(genotype, strengths, self.model, c.derive_threshold, self.space.none_edges)
        return genotype

    def epoch_extras(self) -> dict[str, Any]:
        extras = super().epoch_extras()
        if self.pt is not None and self.pt.decisions:
            extras["pt_decisions"] = self.pt.decisions
        return extras

    def state_dict(self) -> dict[str, Any]:
        assert self.model is not None
        state = {"model": self.model.state_dict(), "w_opt": self.w_opt.state_dict(), "a_opt": self.a_opt.state_dict()}
        if self.pt is not None:
            state["pt"] = self.pt.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.model is not None
        self.model.load_state_dict(state["model"])
        if self.pt is not None and "pt" in state:  # absent: a search re-derived by DARTS-PT (``nasbench derive``)
            self.pt.load_state_dict(state["pt"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
