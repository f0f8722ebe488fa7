"""Fixes for DARTS' collapse, each first-order DARTS with one piece of ``DartsConfig`` (``darts.py``) turned on
by default, and their papers' settings. The pieces combine with any supernet searcher as settings
(``--searcher pcdarts --set regularizer=beta``, ``--searcher gdas --set derive=pt``).

- ``betadarts`` (Ye et al., "beta-DARTS", CVPR 2022): the beta-continuous regulariser, weight 0 rising to 50.
- ``sdarts-rs``, ``sdarts-adv`` (Chen & Hsieh, ICML 2020): the weight step's mixing weights perturbed,
  uniformly or by PGD, eps from 0.03 towards 0.3.
- ``darts-minus`` (Chu et al., "DARTS-", ICLR 2021): an auxiliary skip on every edge, weight 1 decayed to 0.
- ``fairdarts`` (Chu et al., "Fair DARTS", ECCV 2020): sigmoid weights, the zero-one loss (weight 10),
  threshold 0.85 at derivation.
- ``darts-pt`` (Wang et al., "Rethinking Architecture Selection in Differentiable NAS", ICLR 2021):
  DARTS' search, then the perturbation-based projection.
- ``rdarts-l2`` (Zela et al., "Understanding and Robustifying DARTS", ICLR 2020, sec. 5): the weights'
  L2 regularisation raised; the factor is a setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nasbench.searchers.darts import DartsConfig, DartsSearcher
from nasbench.searchers.mixers import SigmoidMixer
from nasbench.spaces.base import SearchSpace
from nasbench.spaces.mixing import Mixer


@dataclass(frozen=True)
class BetaDartsConfig(DartsConfig):
    regularizer: str = "beta"  # their architect.py: mean over edges of logsumexp(alpha), weight 50 * epoch / 100


class BetaDarts(DartsSearcher):
    label = "beta-DARTS"
    summary = "beta-DARTS: the beta-continuous regulariser on the architecture loss (Ye et al., CVPR 2022)"
    config_cls = BetaDartsConfig

    @classmethod
    def preset_overrides(cls, space: SearchSpace, preset: str) -> dict[str, dict[str, Any]]:
        if preset == "paper" and space.family == "nas-bench-201":
            return {"train": {"epochs": 100}}  # their nasbench201/train_search.py: 100 epochs
        return {}


@dataclass(frozen=True)
class SdartsRsConfig(DartsConfig):
    perturb: str = "random"  # SmoothDARTS' Random_alpha: U(-eps, eps) on softmax(alpha), before each weight step


class SdartsRs(DartsSearcher):
    weights_first_on_nb201 = False  # SmoothDARTS' nasbench201/train_search.py: the architecture step first
    label = "SDARTS-RS"
    summary = "SDARTS-RS: the weight step sees randomly perturbed mixing weights (Chen & Hsieh, ICML 2020)"
    config_cls = SdartsRsConfig


@dataclass(frozen=True)
class SdartsAdvConfig(DartsConfig):
    perturb: str = "adversarial"  # SmoothDARTS' Linf_PGD_alpha: 7 steps, random start


class SdartsAdv(DartsSearcher):
    weights_first_on_nb201 = False  # SmoothDARTS' nasbench201/train_search.py: the architecture step first
    label = "SDARTS-ADV"
    summary = "SDARTS-ADV: the weight step sees adversarially perturbed mixing weights (Chen & Hsieh, ICML 2020)"
    config_cls = SdartsAdvConfig


@dataclass(frozen=True)
class DartsMinusConfig(DartsConfig):
    aux_skip: float = 1.0  # DARTS-' scripts: --skip_beta 1 --decay linear (1 at epoch 0, towards 0 at the end)


class DartsMinus(DartsSearcher):
    label = "DARTS-"
    summary = "DARTS-: an auxiliary skip on every edge, its weight decayed to zero (Chu et al., ICLR 2021)"
    config_cls = DartsMinusConfig


@dataclass(frozen=True)
class FairDartsConfig(DartsConfig):
    regularizer: str = "zero-one"  # separate_loss.py: -mean((sigmoid(alpha) - 0.5)^2), --aux_loss_weight 10
    derive: str = "threshold"  # utils.parse, threshold_sparse, --op_threshold 0.85


class FairDarts(DartsSearcher):
    label = "FairDARTS"
    summary = "FairDARTS: independent sigmoid weights, the zero-one loss, threshold derivation (Chu et al., ECCV 2020)"
    config_cls = FairDartsConfig

    @classmethod
    def preset_overrides(cls, space: SearchSpace, preset: str) -> dict[str, dict[str, Any]]:
        if preset == "paper" and space.family == "darts-cifar10":
            # their README's search: batch 128, weight lr 0.005 (cosine to 0.001); Adam 3e-3, betas (0.9, 0.999)
            return {"train": {"batch_size": 128, "w_lr": 0.005, "arch_lr": 3e-3, "arch_beta1": 0.9}}
        return {}

    def make_mixer(self) -> Mixer:
        return SigmoidMixer()


@dataclass(frozen=True)
class DartsPtConfig(DartsConfig):
    derive: str = "pt"  # their scripts: --proj_intv 5 tuning epochs between decisions, lr 0.025 / 10


class DartsPt(DartsSearcher):
    label = "DARTS+PT"
    summary = "DARTS-PT: DARTS, then the op an edge's accuracy depends on most, edge by edge (Wang et al., ICLR 2021)"
    config_cls = DartsPtConfig

    @classmethod
    def preset_overrides(cls, space: SearchSpace, preset: str) -> dict[str, dict[str, Any]]:
        if preset == "paper" and space.family == "nas-bench-201":
            return {"train": {"epochs": 100}}  # darts-201.sh: the supernet trained 100 epochs, then projected
        if preset == "paper" and space.family == "darts-cifar10":
            return {"searcher": {"pt_lr_min": 0.001}}  # their DARTS-space tuning anneals to 0.001 (cosine)
        return {}


@dataclass(frozen=True)
class RdartsL2Config(DartsConfig):
    # RobustDARTS' search scripts run 3e-4 x {1, 3, 9, 27, 81} and pick per space and data set by validation;
    # this default is the top of that grid (2.43e-2 on the DARTS space), our choice, not theirs
    l2_factor: float = 81.0


class RdartsL2(DartsSearcher):
    label = "R-DARTS (L2)"
    summary = "R-DARTS(L2): DARTS with the weights' L2 regularisation raised (Zela et al., ICLR 2020)"
    config_cls = RdartsL2Config
