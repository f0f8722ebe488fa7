"""PC-DARTS (Xu et al., "PC-DARTS: Partial Channel Connections for Memory-Efficient Architecture Search", ICLR 2020).

First-order DARTS with partial channel connections (sec. 3.2: 1/K of the channels go through the mixed
operation, the rest bypass it; ``nasbench.spaces.mixing.PartialChannels``, in every space with channels
or hidden units) and edge normalisation (sec. 3.3: a weight beta per incoming edge, softmax-normalised
per node; the genotype ranks edges by softmax(alpha) x softmax(beta); ``mixers.EdgeNormalizedMixer``).
The architecture is frozen during the first epochs (sec. 4.2), which fetch no architecture-split batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from nasbench.bounds import AT_LEAST_ONE, NON_NEGATIVE, Bounds
from nasbench.config import RunConfig
from nasbench.data.streams import SearchData
from nasbench.errors import UserError
from nasbench.searchers.darts import DartsConfig, DartsSearcher
from nasbench.searchers.mixers import EdgeNormalizedMixer
from nasbench.spaces.base import SearchSpace
from nasbench.spaces.mixing import Mixer

PAPER_WARMUP_EPOCHS, PAPER_EPOCHS = 15, 50  # sec. 4.2: architecture frozen for the first 15 of 50 epochs


@dataclass(frozen=True)
class PcDartsConfig(DartsConfig):
    partial_channels: int = 4  # sec. 4.2 (CIFAR-10): K = 4, a quarter of the channels is mixed
    # sec. 4.2: only the weights are trained in the first 15 of 50 epochs; None: the same share of the run's
    # epochs (see proportional_warmup), so that --epochs N keeps the paper's proportion
    warmup_epochs: int | None = None

    bounds: ClassVar[dict[str, Bounds]] = {
        **DartsConfig.bounds,
        "partial_channels": AT_LEAST_ONE,  # 1 mixes every channel
        "warmup_epochs": NON_NEGATIVE,
    }


# The paper's CIFAR-10 search protocol (sec. 4.2; the released code's defaults agree). The rest (SGD momentum
# 0.9, weight decay 3e-4, cosine schedule to 0.001, gradient clip 5, 16 channels, 8 cells) is DARTS'.
PAPER_CNN: dict[str, dict[str, Any]] = {
    "train": {
        "epochs": PAPER_EPOCHS,
        "batch_size": 256,  # sec. 4.2: batch 256, made affordable by the partial channels
        "w_lr": 0.1,  # sec. 4.2: initial weight learning rate 0.1
        "arch_lr": 6e-4,  # sec. 4.2: Adam on alpha and beta, lr 6e-4, betas (0.5, 0.999), weight decay 1e-3
        "arch_beta1": 0.5,
        "arch_beta2": 0.999,
        "arch_weight_decay": 1e-3,
    }
}


def proportional_warmup(epochs: int) -> int:
    """The paper's warm-up share (15 of 50 epochs) of a shorter search, leaving at least one epoch that
    trains the architecture."""
    return max(0, min(epochs - 1, round(epochs * PAPER_WARMUP_EPOCHS / PAPER_EPOCHS)))


class PcDarts(DartsSearcher):
    label = "PC-DARTS"
    summary = "PC-DARTS: partial channel connections and edge normalisation (Xu et al., ICLR 2020)"
    config_cls = PcDartsConfig

    def __init__(self, space: SearchSpace, cfg: RunConfig, data: SearchData, device: torch.device) -> None:
        epochs = cfg.train.epochs
        if self.warmup(cfg) >= epochs:
            raise UserError(
                f"pcdarts: warmup_epochs={self.warmup(cfg)} leaves none of the {epochs} epochs to train the "
                f"architecture; use --set warmup_epochs=N with N < {epochs} (the paper freezes 15 of 50)"
            )
        super().__init__(space, cfg, data, device)

    @staticmethod
    def warmup(cfg: RunConfig) -> int:
        """Epochs with the architecture frozen: as set, or the paper's share of the run's epochs."""
        set_value = cfg.searcher_cfg.warmup_epochs
        return proportional_warmup(cfg.train.epochs) if set_value is None else set_value

    @classmethod
    def preset_overrides(cls, space: SearchSpace, preset: str) -> dict[str, dict[str, Any]]:
        if preset == "paper":
            return PAPER_CNN if space.family == "darts-cifar10" else {}
        channels = space.presets[preset].get("space", {}).get("channels")
        step = 2 * PcDartsConfig.partial_channels  # K mixed groups, each of an even width (stride-2 edges)
        if preset == "tiny" and channels is not None and channels % step:
            return {"space": {"channels": step * -(-channels // step)}}  # the toy width rounded up for K = 4
        return {}  # short presets keep the space's budget and optimisers

    def make_mixer(self) -> Mixer:
        return EdgeNormalizedMixer()

    def partial_channels(self) -> int:
        return int(self.cfg.searcher_cfg.partial_channels)

    def arch_steps(self, epoch: int) -> bool:
        return epoch >= self.warmup(self.cfg)
