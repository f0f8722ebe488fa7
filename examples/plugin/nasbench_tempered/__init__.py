"""An example nasbench searcher plugin: first-order DARTS whose mixing is softmax(alpha / T), computing
only each edge's ``top_ops`` strongest ops. It is the whole plugin: a config, a mixer and a searcher."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nasbench.errors import UserError
from nasbench.searchers.darts import DartsConfig, DartsSearcher
from nasbench.spaces.base import Supernet
from nasbench.spaces.mixing import CellMix, Mixer


@dataclass(frozen=True)
class TemperedConfig(DartsConfig):  # the settings of DARTS (and its pieces), and two of its own
    temperature: float = 4.0
    top_ops: int = 2

    def check(self) -> None:
        super().check()
        if self.temperature <= 0 or self.top_ops < 1:
            raise UserError(f"temperature={self.temperature}, top_ops={self.top_ops}: need T > 0 and top_ops >= 1")


class TemperedMixer(Mixer):
    """softmax(alpha / T) per edge; only the ``top_ops`` strongest ops are computed (the others add nothing)."""

    def __init__(self, temperature: float, top_ops: int) -> None:
        self.temperature, self.top_ops = temperature, top_ops

    def __call__(self, net: Supernet, cell: str) -> CellMix:
        weights = torch.softmax(net.alpha(cell) / self.temperature, dim=-1)
        k = min(self.top_ops, weights.shape[-1])
        active = [tuple(row.topk(k).indices.tolist()) for row in weights.detach()]
        return CellMix(weights, active=active)

    def strengths(self, net: Supernet) -> dict[str, torch.Tensor]:
        return {cell: torch.softmax(net.alpha(cell).detach() / self.temperature, -1) for cell in net.cell_specs}


class TemperedDarts(DartsSearcher):
    summary = "example plugin: DARTS with softmax(alpha / T), each edge's strongest ops only"
    label = "Tempered DARTS"
    config_cls = TemperedConfig

    def make_mixer(self) -> Mixer:
        c = self.cfg.searcher_cfg
        return TemperedMixer(c.temperature, c.top_ops)
