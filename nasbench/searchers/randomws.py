"""Random search with weight sharing (Li and Talwalkar, "Random Search and Reproducibility for Neural
Architecture Search", UAI 2019, sec. 3; settings from its released code, searchers/random_weight_share.py).

Training: every step draws one genotype uniformly and takes one SGD step of the supernet's shared weights
along that genotype's single path (``mixers.PathMixer``: the other edges and ops are not computed), with the
``train`` section's weight optimiser (lr cosine-annealed per epoch as in DARTS). On CIFAR-10 the draw
includes ``none``, as their code draws from all ops (their appendix A.2: the zero op is included in
search and evaluation); on PTB it does not, as theirs does not. Their code computes every op with 0/1
weights, so the weights off the path get zero gradients, and with them weight decay and momentum; here
they get the same zero gradients. Computing every op also lets each batch norm off the path update its
running statistics, which the selection's scores (in eval mode) read: ``train_all_ops`` does as their
code does, and is on on the DARTS CNN space. NAS-Bench-201's RSPS computes the sampled op alone, and the
RNN cell's one batch norm is on every path (the two give the same result there), so elsewhere only the
path is computed.

Selection, in the last epoch's ``score()`` (so its cost is in the run's cost): draw ``candidates``
genotypes, score each with the shared weights on the first ``candidate_batches`` batches of the
architecture split (the same batches for all), re-score the best ``finalists`` on the runner's whole
scoring split (``eval_batches``), and return the best of those. The released code screens rounds of 1000
candidates on 10 fresh minibatches each and keeps each round's best of 10 re-scored ones; here one
pool with fixed batches, so that all candidates are compared on the same images.

Before the selection, ``derive()`` returns a fixed "probe" genotype drawn at the start and ``score()``
scores the shared weights along it: a learning curve of the shared weights on one architecture
(the record marks such epochs ``"scored": "probe"``). ``model`` stays None: there are no architecture
parameters to train, so alpha-based metrics (entropy, Hessian) do not apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any, ClassVar

import torch
from torch import nn

from nasbench.bounds import AT_LEAST_ONE, Bounds
from nasbench.config import RunConfig
from nasbench.data.streams import SearchData
from nasbench.errors import UserError
from nasbench.genotype import Genotype
from nasbench.searchers.base import Searcher, batch_lr, cosine_lr, network_scores, weight_sgd
from nasbench.searchers.mixers import PathMixer
from nasbench.searchers.random import GenotypeSampler, rank_key
from nasbench.spaces.base import Batch, SearchSpace, SupernetOptions


@dataclass(frozen=True)
class RandomWsConfig:
    candidates: int = 1000  # released code: 1000 genotypes per selection round (Table 6: 1000-11000 in all)
    candidate_batches: int = 10  # released code: each candidate scored on 10 held-out minibatches
    finalists: int = 10  # released code: the best 10 re-scored on the whole held-out split
    # train every op with 0/1 weights, so that every batch norm tracks its statistics (their DARTS-space
    # code; on by default there, see preset_overrides); False: only the path is computed (NAS-Bench-201's
    # RSPS), the same weights step for step, with the statistics off the path left where they were
    train_all_ops: bool = False

    bounds: ClassVar[dict[str, Bounds]] = dict.fromkeys(("candidates", "candidate_batches", "finalists"), AT_LEAST_ONE)

    def check(self) -> None:
        if self.finalists > self.candidates:
            raise UserError(f"finalists={self.finalists} is more than candidates={self.candidates}")


class RandomWeightSharing(Searcher):
    label = "Random search with weight sharing"
    summary = "Random search with weight sharing: one random path per step, then rank samples (Li & Talwalkar, 2019)"
    config_cls = RandomWsConfig

    @classmethod
    def preset_overrides(cls, space: SearchSpace, preset: str) -> dict[str, dict[str, Any]]:
        overrides = cls.preset_sizes(space, preset)
        if space.family == "darts-cifar10":  # every preset: their code computes every op there
            overrides["searcher"] = {**overrides.get("searcher", {}), "train_all_ops": True}
        return overrides

    @staticmethod
    def preset_sizes(space: SearchSpace, preset: str) -> dict[str, dict[str, Any]]:
        if preset == "tiny":
            return {"searcher": {"candidates": 4, "candidate_batches": 1, "finalists": 2}}
        if preset == "small":
            return {"searcher": {"candidates": 50, "candidate_batches": 2, "finalists": 5}}
        if preset == "paper" and space.family == "darts-cifar10":
            # Table 6, "Random (5)": 150 epochs, gradient clipping 1, 24 initial channels, 5000 genotypes
            # (5 rounds of 1000 in the released code, each keeping 10 finalists)
            return {
                "train": {"epochs": 150, "grad_clip": 1.0},
                "space": {"channels": 24},
                "searcher": {"candidates": 5000, "finalists": 50},
            }
        if preset == "paper" and space.family == "darts-ptb":
            # Table 3, "Random (4)": batch 64, gradient clipping 0.1, 2000 genotypes (2 rounds of 1000)
            return {"train": {"batch_size": 64, "grad_clip": 0.1}, "searcher": {"candidates": 2000, "finalists": 20}}
        return {}

    def __init__(self, space: SearchSpace, cfg: RunConfig, data: SearchData, device: torch.device) -> None:
        super().__init__(space, cfg, data, device)
        t = cfg.train
        options = SupernetOptions(checkpoint_cells=t.checkpoint_cells, recompute_depthwise=t.recompute_depthwise)
        self.supernet = space.supernet(cfg.space_cfg, data, options).to(device)
        self.weights = self.supernet.weight_parameters()
        self.w_opt = weight_sgd(self.weights, t, t.w_lr)
        drawn_ops = space.ops if space.dataset == "cifar10" else None  # CIFAR-10: none included, as their code
        self.sampler = GenotypeSampler(space, cfg.space_cfg, cfg.seed, drawn_ops)
        self.probe = self.sampler.sample()
        self.epoch = 0
        self.selection: list[dict[str, Any]] | None = None  # finalists, best first, once selected

    def uses_val_batches(self, epoch: int) -> bool:
        return False

    def start_epoch(self, epoch: int) -> None:
        t = self.cfg.train
        self.epoch = epoch
        for group in self.w_opt.param_groups:
            group["lr"] = cosine_lr(epoch, t.epochs, t.w_lr, t.w_lr_min)

    def step(self, train: Batch, val: Batch | None) -> dict[str, torch.Tensor]:
        genotype = self.sampler.sample()
        mixer = PathMixer(self.supernet, genotype, every_op=self.cfg.searcher_cfg.train_all_ops)
        with batch_lr(self.w_opt, train), self.supernet.mixed_by(mixer):
            self.w_opt.zero_grad(set_to_none=False)
            loss = self.supernet.loss(train)
            loss.backward()
            for w in self.weights:  # off the path: a zero gradient, so that SGD applies decay and momentum
                if w.grad is None:
                    w.grad = torch.zeros_like(w)
            nn.utils.clip_grad_norm_(self.weights, self.cfg.train.grad_clip)
            self.w_opt.step()
        return {"train_loss": loss.detach()}

    def shared_score(self, genotype: Genotype, batches: Iterable[Batch]) -> dict[str, float]:
        """The shared weights' score of ``genotype``'s path on ``batches``."""
        with self.supernet.mixed_by(PathMixer(self.supernet, genotype)):
            return network_scores(self.supernet, batches)

    def select(self, batches: Iterable[Batch]) -> list[dict[str, Any]]:
        """Screen ``candidates`` samples on a few batches, re-score the best on ``batches``; finalists, best first."""
        c, metric = self.cfg.searcher_cfg, self.space.metric
        screen_batches = list(islice(self.data.score.epoch(0), c.candidate_batches))
        screened = []
        for _ in range(c.candidates):
            genotype = self.sampler.sample()
            screened.append((genotype, self.shared_score(genotype, screen_batches)))
        screened.sort(key=lambda pair: rank_key(pair[1], metric))
        full_batches = list(batches)
        finalists = [
            {"genotype": g, "screen": s, "full": self.shared_score(g, full_batches)} for g, s in screened[: c.finalists]
        ]
        return sorted(finalists, key=lambda f: rank_key(f["full"], metric))

    def score(self, batches: Iterable[Batch]) -> dict[str, float]:
        if self.epoch == self.cfg.train.epochs - 1:
            self.selection = self.select(batches)
            return dict(self.selection[0]["full"])
        return self.shared_score(self.probe, batches)

    def derive(self) -> Genotype:
        return self.selection[0]["genotype"] if self.selection else self.probe

    def epoch_extras(self) -> dict[str, Any]:
        if not self.selection or self.epoch != self.cfg.train.epochs - 1:
            return {"scored": "probe"}
        fmt = self.space.format_genotype
        finalists = [{"genotype": fmt(f["genotype"]), "screen": f["screen"], **f["full"]} for f in self.selection]
        return {"scored": "selection", "screened": self.cfg.searcher_cfg.candidates, "finalists": finalists}

    def state_dict(self) -> dict[str, Any]:
        fmt = self.space.format_genotype
        selection = [{**f, "genotype": fmt(f["genotype"])} for f in self.selection or []]
        return {
            "supernet": self.supernet.state_dict(),
            "w_opt": self.w_opt.state_dict(),
            "sampler": self.sampler.state_dict(),
            "probe": fmt(self.probe),
            "epoch": self.epoch,
            "selection": selection if self.selection is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        parse = self.space.parse_genotype
        self.supernet.load_state_dict(state["supernet"])
        self.w_opt.load_state_dict(state["w_opt"])
        self.sampler.load_state_dict(state["sampler"])
        self.probe, self.epoch = parse(state["probe"]), state["epoch"]
        selection = state["selection"]
        self.selection = None if selection is None else [{**f, "genotype": parse(f["genotype"])} for f in selection]
