"""Sampling relaxations of DARTS: GDAS, SNAS and DrNAS. Each is first-order DARTS (``darts.py``) with its
own mixer (``mixers.py``) and, where its paper has them, a temperature schedule and a regulariser.

- ``gdas`` (Dong & Yang, "Searching for a Robust Neural Architecture in Four GPU Hours", CVPR 2019):
  a hard Gumbel-max sample per edge with a straight-through gradient, only the sampled op computed, the
  temperature annealed linearly from 10 to 0.1 over the epochs; the weights are updated before alpha.
- ``snas`` (Xie et al., "SNAS: Stochastic Neural Architecture Search", ICLR 2019): a relaxed (soft)
  Gumbel-softmax sample of every edge, the temperature annealed linearly from 1 to 0.03. On the DARTS
  space alpha and the weights are trained as SNAS' code trains them: one level, from one loss on the same
  batch, alpha's gradient clipped to norm 10. Elsewhere, as DrNAS' NAS-Bench-201 code runs SNAS, on the
  two splits like DARTS (``docs/fidelity.md``).
- ``drnas`` (Chen et al., "DrNAS: Dirichlet Neural Architecture Search", ICLR 2021): mixing weights
  sampled from Dirichlet(elu(alpha) + 1); its anchor regulariser is, in its code, Adam's L2 term on
  alpha (weight 1e-3, the suite's ``arch_weight_decay``), or with ``reg_type=kl`` a KL term towards
  Dirichlet(1). Its progressive variant (partial channels and pruning on the DARTS space) is not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from nasbench.bounds import NON_NEGATIVE, POSITIVE, Bounds, check_order
from nasbench.config import RunConfig
from nasbench.errors import UserError
from nasbench.searchers.darts import DartsConfig, DartsSearcher
from nasbench.searchers.mixers import DirichletMixer, GumbelHardMixer, GumbelSoftMixer
from nasbench.searchers.regularizers import dirichlet_kl_to_uniform
from nasbench.spaces.base import SearchSpace


def linear_schedule(epoch: int, epochs: int, start: float, end: float) -> float:
    """``start`` at epoch 0, ``end`` at the last epoch, linear in between (GDAS' and SNAS' temperatures)."""
    return start if epochs <= 1 else start + (end - start) * epoch / (epochs - 1)


@dataclass(frozen=True)
class AnnealedConfig(DartsConfig):
    """A sampler's temperature, positive and annealed linearly per epoch from tau_max down to tau_min. Each
    sampler's config sets its own paper's schedule; the constant 1 here is no searcher's default."""

    tau_max: float = 1.0
    tau_min: float = 1.0

    bounds: ClassVar[dict[str, Bounds]] = {**DartsConfig.bounds, "tau_max": POSITIVE, "tau_min": POSITIVE}

    def check(self) -> None:
        super().check()
        check_order(self, "tau_min", "tau_max", "the temperature anneals from tau_max down")


class AnnealedSampler(DartsSearcher):
    """A sampler whose mixer's temperature ``tau`` follows its config's schedule, set at each epoch's start
    and recorded with the epoch."""

    mixer: GumbelHardMixer | GumbelSoftMixer

    def start_epoch(self, epoch: int) -> None:
        super().start_epoch(epoch)
        c = self.cfg.searcher_cfg
        self.mixer.tau = linear_schedule(epoch, self.cfg.train.epochs, c.tau_max, c.tau_min)

    def epoch_extras(self) -> dict[str, Any]:
        return {**super().epoch_extras(), "tau": self.mixer.tau}


@dataclass(frozen=True)
class GdasConfig(AnnealedConfig):
    tau_max: float = 10.0  # AutoDL-Projects' GDAS scripts: --tau_max 10 --tau_min 0.1, linear per epoch
    tau_min: float = 0.1
    # the zero-valued weights of the unsampled ops added to each edge, so every alpha gets a gradient:
    # their NAS-Bench-201 cell does (forward_gdas), their DARTS-space cell does not; None: as their code
    # does for the space's family
    unsampled_gradient: bool | None = None


class Gdas(AnnealedSampler):
    label = "GDAS"
    summary = "GDAS: one Gumbel-sampled op per edge, straight-through gradient (Dong & Yang, CVPR 2019)"
    config_cls = GdasConfig

    @classmethod
    def preset_overrides(cls, space: SearchSpace, preset: str) -> dict[str, dict[str, Any]]:
        order: dict[str, dict[str, Any]] = {"train": {"weight_step_first": True}}  # their training loop
        if preset != "paper":
            return order
        if space.family == "nas-bench-201":  # GDAS.config: 250 epochs, weight decay 5e-4, batch 64
            return {"train": {**order["train"], "epochs": 250, "w_weight_decay": 5e-4}}
        if space.family == "darts-cifar10":  # GDAS-NASNet-CIFAR.config: 250 epochs, batch 256, 6 cells
            return {
                "train": {**order["train"], "epochs": 250, "batch_size": 256, "w_weight_decay": 5e-4},
                "space": {"layers": 6},
            }
        return order

    mixer: GumbelHardMixer

    def make_mixer(self) -> GumbelHardMixer:
        c = self.cfg.searcher_cfg
        unsampled = c.unsampled_gradient
        if unsampled is None:
            unsampled = self.space.family == "nas-bench-201"
        return GumbelHardMixer(c.tau_max, unsampled)


@dataclass(frozen=True)
class SnasConfig(AnnealedConfig):
    tau_max: float = 1.0  # SNAS-Series: --temp 1 --temp_min 0.03, linear per epoch (over a fixed 150 there)
    tau_min: float = 0.03


class Snas(AnnealedSampler):
    label = "SNAS"
    summary = "SNAS: a relaxed Gumbel-softmax sample mixes every edge (Xie et al., ICLR 2019)"
    config_cls = SnasConfig

    @classmethod
    def preset_overrides(cls, space: SearchSpace, preset: str) -> dict[str, dict[str, Any]]:
        if space.family != "darts-cifar10":
            return {}
        # every preset: SNAS-Series' train_search.py steps both from one backward pass of the training loss and
        # clips alpha's gradient to norm 10 (clip_grad_norm_(arch_parameters(), 10.))
        overrides: dict[str, dict[str, Any]] = {"searcher": {"one_level": True, "arch_grad_clip": 10.0}}
        if preset == "paper":
            overrides["train"] = {"epochs": 150}  # their README: 150 epochs, 8 cells, 16 channels, batch 64
        return overrides

    mixer: GumbelSoftMixer

    def make_mixer(self) -> GumbelSoftMixer:
        return GumbelSoftMixer(self.cfg.searcher_cfg.tau_max)


@dataclass(frozen=True)
class DrnasConfig(DartsConfig):
    # DrNAS' code: reg_type "l2" (default) is the anchor as Adam's weight decay on alpha, its reg_scale 1e-3
    # (the suite's arch_weight_decay, 1e-3 by default); "kl" adds kl_scale * KL(Dir || Dir(1)) to the
    # architecture loss instead, with no weight decay on alpha (arch_weight_decay=0)
    reg_type: str = "l2"
    kl_scale: float = 1e-3

    bounds: ClassVar[dict[str, Bounds]] = {**DartsConfig.bounds, "kl_scale": NON_NEGATIVE}

    def check(self) -> None:
        super().check()
        if self.reg_type not in ("l2", "kl"):
            raise UserError(f"reg_type={self.reg_type!r}: use l2 (the anchor as weight decay) or kl")


class DrNas(DartsSearcher):
    label = "DrNAS"
    summary = "DrNAS: mixing weights sampled from a learned Dirichlet per edge (Chen et al., ICLR 2021)"
    config_cls = DrnasConfig

    @classmethod
    def preset_overrides(cls, space: SearchSpace, preset: str) -> dict[str, dict[str, Any]]:
        if preset != "paper":
            return {}
        if space.family == "nas-bench-201":  # 201-space/train_search.py: 100 epochs, weight decay 3e-4
            return {"train": {"epochs": 100, "w_weight_decay": 3e-4}}
        if space.family == "darts-cifar10":  # DARTS-space/train_search.py's optimisers (no progressive stage)
            return {"train": {"epochs": 50, "w_lr": 0.1, "w_lr_min": 0.0, "arch_lr": 6e-4}}
        return {}

    @classmethod
    def check_config(cls, cfg: RunConfig) -> None:
        if cfg.searcher_cfg.reg_type == "kl" and cfg.train.arch_weight_decay != 0:
            raise UserError(
                "drnas reg_type=kl replaces the L2 anchor (the weight decay on alpha) with the KL term, as its "
                f"code does: add --set arch_weight_decay=0 (it is {cfg.train.arch_weight_decay})"
            )

    def make_mixer(self) -> DirichletMixer:
        return DirichletMixer()

    def arch_penalty(self) -> torch.Tensor | None:
        c, base = self.cfg.searcher_cfg, super().arch_penalty()
        if c.reg_type != "kl" or self.model is None:
            return base
        concentrations = [DirichletMixer.concentration(self.model.alpha(cell)) for cell in self.model.cell_specs]
        kl = c.kl_scale * sum(dirichlet_kl_to_uniform(beta) for beta in concentrations)
        return kl if base is None else base + kl
