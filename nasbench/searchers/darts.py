"""DARTS (Liu et al., "DARTS: Differentiable Architecture Search", ICLR 2019).

Alternating bilevel optimisation (sec. 2.3, alg. 1): per step, one Adam step on the architecture
parameters alpha from an architecture-split batch, then one SGD step on the weights w from a
weight-split batch. ``darts1`` uses the first-order approximation (xi = 0 in eq. 6): the architecture
gradient is that of the validation loss at the current weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from nasbench.config import RunConfig
from nasbench.data.streams import SearchData
from nasbench.genotype import Genotype
from nasbench.searchers.base import Searcher, cosine_lr
from nasbench.spaces.base import Batch, SearchSpace, SupernetOptions


@dataclass(frozen=True)
class DartsConfig:
    """First-order DARTS has no settings of its own beyond the shared protocol (``train`` section)."""


class DartsSearcher(Searcher):
    summary = "DARTS, first-order approximation (xi = 0) (Liu et al., ICLR 2019)"
    config_cls = DartsConfig

    def __init__(self, space: SearchSpace, cfg: RunConfig, data: SearchData, device: torch.device) -> None:
        super().__init__(space, cfg, data, device)
        t = cfg.train
        self.model = space.supernet(cfg.space_cfg, data, self.supernet_options()).to(device)
        self.weights = self.model.weight_parameters()
        self.alphas = self.model.arch_parameters()
        self.w_opt = torch.optim.SGD(self.weights, lr=t.w_lr, momentum=t.w_momentum, weight_decay=t.w_weight_decay)
        self.a_opt = torch.optim.Adam(
            self.alphas, lr=t.arch_lr, betas=(t.arch_beta1, t.arch_beta2), weight_decay=t.arch_weight_decay
        )

    def supernet_options(self) -> SupernetOptions:
        return SupernetOptions()

    @property
    def w_lr(self) -> float:
        return float(self.w_opt.param_groups[0]["lr"])

    def start_epoch(self, epoch: int) -> None:
        t = self.cfg.train
        for group in self.w_opt.param_groups:
            group["lr"] = cosine_lr(epoch, t.epochs, t.w_lr, t.w_lr_min)

    def step(self, train: Batch, val: Batch | None) -> dict[str, torch.Tensor]:
        assert self.model is not None
        stats: dict[str, torch.Tensor] = {}
        if val is not None:
            self.a_opt.zero_grad(set_to_none=True)
            stats["arch_loss"] = self.arch_gradient(train, val)
            self.a_opt.step()
        self.w_opt.zero_grad(set_to_none=True)
        loss = self.model.loss(train)
        loss.backward()
        nn.utils.clip_grad_norm_(self.weights, self.cfg.train.grad_clip)
        self.w_opt.step()
        stats["train_loss"] = loss.detach()
        return stats

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
        return self.model.derive()

    def state_dict(self) -> dict[str, Any]:
        assert self.model is not None
        return {"model": self.model.state_dict(), "w_opt": self.w_opt.state_dict(), "a_opt": self.a_opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert self.model is not None
        self.model.load_state_dict(state["model"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.a_opt.load_state_dict(state["a_opt"])
