"""Random search: the baseline of the DARTS paper (Liu et al., "DARTS: Differentiable Architecture Search",
ICLR 2019, sec. 3.3 and Tables 1-2).

Sample N genotypes uniformly from the space's discrete cells (``space.sample_genotype``), train each
from scratch on the weight split, score each on the architecture split, return the best. The paper trained each of its
24 CIFAR-10 cells (8 PTB cells) with the full evaluation protocol; here the run's step budget is shared
out instead, so that random search costs what any other searcher costs under the same settings:

- the run's epochs x steps per epoch (``--epochs``, ``steps_per_epoch``) are divided evenly among the N
  samples (shares differ by at most one step); the samples train one after another, so one runner step
  is one SGD step of the sample in training, and a sample may span epochs;
- each sample's weights are new (the space's discrete network at the search network's shape) and train
  with the ``train`` section's SGD settings (lr cosine-annealed from ``w_lr`` to ``w_lr_min`` over the
  sample's own steps, momentum, weight decay, gradient clipping);
- when a sample's share is used up it is scored at once on the architecture split (the first
  ``eval_batches`` batches, unaugmented: the same images for every sample);
- ``score()`` reports the best sample so far, ``derive()`` returns it, and each epoch's record lists the
  samples finished in that epoch with their scores (``samples``);
- with ``--set oracle=true`` on a space with a ground-truth table (NAS-Bench-201) the samples are scored
  by the table instead of trained, each marked ``oracle`` in the record.

Published results (DARTS Tables 1 and 2, verified against Li & Talwalkar 2019, Tables 2 and 5, which
reprint them): CIFAR-10 3.29 +/- 0.15 % test error, 3.2M params, 4 GPU days; PTB 61.8 valid / 59.4 test
perplexity, 23M params, 2 GPU days. They are the "Random search baseline" rows of ``nasbench.published``.

``GenotypeSampler`` and ``rank_key`` are shared with random search with weight sharing (``randomws``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, ClassVar

import torch
from torch import nn

from nasbench.bounds import AT_LEAST_ONE, Bounds
from nasbench.config import RunConfig
from nasbench.data.streams import SearchData, capped_steps, epoch_steps
from nasbench.errors import UserError
from nasbench.genotype import Genotype
from nasbench.searchers.base import Searcher, batch_lr, cosine_lr, network_scores, weight_sgd
from nasbench.spaces.base import Batch, Network, SearchSpace

SAMPLER_STREAM = 7_919  # keeps the sampler's generator apart from the data streams' (seed, epoch, stream)


class GenotypeSampler:
    """Genotypes drawn uniformly by the space, from a generator of the searcher's own (saved with its state)."""

    def __init__(self, space: SearchSpace, space_cfg: Any, seed: int, ops: Sequence[str] | None = None) -> None:
        self.space, self.space_cfg, self.ops = space, space_cfg, ops  # ops None: the space's default draw
        self.generator = torch.Generator().manual_seed(seed * 1_000_003 + SAMPLER_STREAM)
        self.drawn = 0

    def sample(self) -> Genotype:
        self.drawn += 1
        return self.space.sample_genotype(self.space_cfg, self.generator, self.ops)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "drawn": self.drawn}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.drawn = state["drawn"]


def rank_key(scores: dict[str, float], metric: str) -> tuple[float, ...]:
    """Sort key, best first: higher accuracy (then lower loss) for ``acc`` spaces, lower loss for ``ppl``;
    scores from a ground-truth table (``true_test_acc``) rank by that."""
    if "true_test_acc" in scores:
        return (-scores["true_test_acc"],)
    if metric == "acc":
        return (-scores["val_acc"], scores["val_loss"])
    return (scores["val_loss"],)


@dataclass(frozen=True)
class RandomConfig:
    samples: int = 24  # DARTS sec. 3.3 / Table 1: 24 cells for CIFAR-10 (8 for PTB: preset_overrides)
    # Score each sample by the space's ground-truth table instead of training it (NAS-Bench-201): the
    # benchmark's random-search baseline at zero training cost. Ranks by true *test* accuracy, an
    # optimistic bound (the benchmark's own random search ranks by validation accuracy).
    oracle: bool = False

    bounds: ClassVar[dict[str, Bounds]] = {"samples": AT_LEAST_ONE}


@dataclass
class Sample:
    """One sampled genotype and, once trained, its score on the architecture split."""

    index: int
    genotype: Genotype
    steps: int  # its share of the run's steps
    epoch: int = -1  # the epoch in which it finished
    scores: dict[str, float] | None = None


class RandomSearch(Searcher):
    label = "Random search"
    summary = "Random search: N uniform samples trained from scratch, best on the held-out split (Liu et al., 2019)"
    config_cls = RandomConfig

    @classmethod
    def preset_overrides(cls, space: SearchSpace, preset: str) -> dict[str, dict[str, Any]]:
        if preset == "tiny":
            return {"searcher": {"samples": 2}}
        if preset == "small":  # 4 samples of 20 steps each under the cnn space's small preset
            return {"searcher": {"samples": 4}}
        if space.dataset == "ptb":
            return {"searcher": {"samples": 8}}  # DARTS sec. 3.3 / Table 2: 8 cells for PTB
        return {}

    def __init__(self, space: SearchSpace, cfg: RunConfig, data: SearchData, device: torch.device) -> None:
        super().__init__(space, cfg, data, device)
        n, t = cfg.searcher_cfg.samples, cfg.train
        # as many as the runner takes (no val batches fetched); PTB walked whole varies by epoch
        self.total_steps = sum(capped_steps(epoch_steps(data.train, e), t.steps_per_epoch) for e in range(t.epochs))
        if self.total_steps < n and not cfg.searcher_cfg.oracle:
            raise UserError(
                f"random search with samples={n} needs at least {n} training steps, the run has "
                f"{self.total_steps} over {t.epochs} epochs; lower searcher.samples or raise --epochs / "
                "steps_per_epoch"
            )
        self.sampler = GenotypeSampler(space, cfg.space_cfg, cfg.seed)
        self.samples: list[Sample] = []
        self.step_count = 0  # steps done over the whole run
        self.epoch = 0
        self.net: Network | None = None
        self.opt: torch.optim.SGD | None = None
        if cfg.searcher_cfg.oracle:
            self._score_by_table(n)
        else:
            self._start_sample(self.sampler.sample())

    def _score_by_table(self, n: int) -> None:
        """All N samples scored at once by the space's ground truth; no network is built or trained."""
        for index in range(n):
            genotype = self.sampler.sample()
            truth = self.space.ground_truth(genotype)
            if truth is None:
                raise UserError(
                    f"searcher oracle=true needs a space with a ground-truth table (nb201); {self.space.name!r} "
                    "has none: leave oracle off to train each sample"
                )
            self.samples.append(Sample(index, genotype, steps=0, epoch=0, scores={**truth, "oracle": 1.0}))

    def share_end(self, index: int) -> int:
        """The run step at which sample ``index``'s share ends: N shares differing by at most one step."""
        return (index + 1) * self.total_steps // self.cfg.searcher_cfg.samples

    def _start_sample(self, genotype: Genotype) -> None:
        index = len(self.samples)
        start = index * self.total_steps // self.cfg.searcher_cfg.samples
        self.samples.append(Sample(index, genotype, self.share_end(index) - start))
        t = self.cfg.train
        self.net = self.space.network(genotype, self.cfg.space_cfg, self.data).to(self.device)  # fresh weights
        self.opt = weight_sgd(self.net.parameters(), t, t.w_lr)

    @property
    def current(self) -> Sample | None:
        return self.samples[-1] if self.samples and self.samples[-1].scores is None else None

    def uses_val_batches(self, epoch: int) -> bool:
        return False

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def step(self, train: Batch, val: Batch | None) -> dict[str, torch.Tensor]:
        if self.cfg.searcher_cfg.oracle:
            return {}  # every sample was scored by the table: there is nothing to train
        sample = self.current
        if sample is None or self.net is None or self.opt is None:
            raise RuntimeError(f"random search: all {len(self.samples)} samples are done after {self.step_count} steps")
        t = self.cfg.train
        done = sample.steps - (self.share_end(sample.index) - self.step_count)  # this sample's steps so far
        for group in self.opt.param_groups:
            group["lr"] = cosine_lr(done, sample.steps, t.w_lr, t.w_lr_min)
        with batch_lr(self.opt, train):
            self.opt.zero_grad(set_to_none=True)
            loss = self.net.loss(train)
            loss.backward()
            nn.utils.clip_grad_norm_(self.net.parameters(), t.grad_clip)
            self.opt.step()
        self.step_count += 1
        if self.step_count == self.share_end(sample.index):
            self._finish(sample)
        return {"train_loss": loss.detach()}

    def _finish(self, sample: Sample) -> None:
        assert self.net is not None
        sample.scores, sample.epoch = self.evaluate(self.net), self.epoch
        self.net = self.opt = None
        if len(self.samples) < self.cfg.searcher_cfg.samples:
            self._start_sample(self.sampler.sample())

    def evaluate(self, net: Network) -> dict[str, float]:
        """A trained sample's score on the architecture split: the same first ``eval_batches`` batches each time."""
        return network_scores(net, islice(self.data.score.epoch(0), self.cfg.train.eval_batches or None))

    def best(self) -> Sample | None:
        scored = [s for s in self.samples if s.scores is not None]
        return min(scored, key=lambda s: rank_key(s.scores or {}, self.space.metric), default=None)

    def score(self, batches: Iterable[Batch]) -> dict[str, float]:
        """The best sample's score so far (measured when it finished); empty before the first finishes."""
        best = self.best()
        return dict(best.scores or {}) if best is not None else {}

    def derive(self) -> Genotype:
        best = self.best() or self.samples[-1]
        return best.genotype

    def epoch_extras(self) -> dict[str, Any]:
        fmt = self.space.format_genotype
        done = [s for s in self.samples if s.scores is not None and s.epoch == self.epoch]
        return {
            "samples": [
                {"index": s.index, "genotype": fmt(s.genotype), "steps": s.steps, **(s.scores or {})} for s in done
            ]
        }

    def state_dict(self) -> dict[str, Any]:
        fmt = self.space.format_genotype
        return {
            "samples": [(s.index, fmt(s.genotype), s.steps, s.epoch, s.scores) for s in self.samples],
            "step_count": self.step_count,
            "epoch": self.epoch,
            "sampler": self.sampler.state_dict(),
            "net": self.net.state_dict() if self.net is not None else None,
            "opt": self.opt.state_dict() if self.opt is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        parse = self.space.parse_genotype
        self.samples = [Sample(i, parse(g), steps, epoch, scores) for i, g, steps, epoch, scores in state["samples"]]
        self.step_count, self.epoch = state["step_count"], state["epoch"]
        self.sampler.load_state_dict(state["sampler"])
        self.net = self.opt = None
        current = self.samples.pop() if self.current is not None else None
        if current is not None:
            self._start_sample(current.genotype)  # rebuilt at the same index, then its saved weights
            assert self.net is not None and self.opt is not None
            self.net.load_state_dict(state["net"])
            self.opt.load_state_dict(state["opt"])
