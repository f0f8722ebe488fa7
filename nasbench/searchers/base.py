"""The Searcher contract: the runner drives every searcher through these methods and nothing else."""

from __future__ import annotations

import contextlib
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import torch

from nasbench.config import RunConfig, TrainConfig
from nasbench.data.streams import SearchData
from nasbench.genotype import Genotype
from nasbench.spaces.base import Batch, Network, SearchSpace, Supernet


class Searcher(ABC):
    """One search method. The runner calls, per epoch: ``start_epoch``, then ``step`` for each pair of a
    weight-split batch and (when ``uses_val_batches``) an architecture-split batch, then ``score`` and
    ``derive``. ``state_dict`` must hold everything a resumed run needs to continue identically."""

    summary: ClassVar[str]  # one line for ``nasbench list``: what it is and which paper
    label: ClassVar[str] = ""  # the method's name in a paper's table (default: its registry name)
    config_cls: ClassVar[type]

    def __init__(self, space: SearchSpace, cfg: RunConfig, data: SearchData, device: torch.device) -> None:
        self.space, self.cfg, self.data, self.device = space, cfg, data, device
        self.model: Supernet | None = None

    @classmethod
    def preset_overrides(cls, space: SearchSpace, preset: str) -> dict[str, dict[str, Any]]:
        """Per-section overrides this searcher adds to a space's preset (e.g. PC-DARTS' batch 256 on the DARTS
        CIFAR-10 protocol); keyed by what the space is (``space.family``, ``space.dataset``), not its name."""
        return {}

    @classmethod
    def check_config(cls, cfg: RunConfig) -> None:
        """Refuse (``UserError``) a combination of settings across sections that cannot work, before anything
        is built; each section's own ranges are checked by its ``check``."""

    def epochs(self) -> int:
        """Epochs the run takes: the ``train`` section's, plus any phase the method adds after them (DARTS-PT)."""
        return int(self.cfg.train.epochs)

    def start_epoch(self, epoch: int) -> None:
        """Called before the epoch's first step (learning-rate schedules, warm-up switches)."""

    def uses_val_batches(self, epoch: int) -> bool:
        """Whether this epoch's steps need an architecture-split batch (none is fetched otherwise)."""
        return True

    @abstractmethod
    def step(self, train: Batch, val: Batch | None) -> dict[str, torch.Tensor]:
        """One search step. Returns detached scalar tensors (no host sync), e.g. ``train_loss``."""

    @abstractmethod
    def derive(self) -> Genotype:
        """The architecture the search currently returns."""

    def score(self, batches: Iterable[Batch]) -> dict[str, float]:
        """The supernet's loss and metric on the architecture split (eval mode, no gradients)."""
        assert self.model is not None, "searchers without a supernet override score()"
        return network_scores(self.model, batches)

    def arch_weights(self) -> dict[str, torch.Tensor] | None:
        """The architecture weights per cell [n_edges, n_ops] (detached) that the genotype is derived from and
        the record keeps, or None for a searcher without architecture parameters."""
        if self.model is None:
            return None
        return self.model.mixer.strengths(self.model)

    def epoch_extras(self) -> dict[str, Any]:
        """Extra per-epoch record content; by default the architecture weights per cell, with the op names
        and the (src, dst) edge of each row, so that a record explains itself."""
        weights = self.arch_weights()
        if weights is None or self.model is None:
            return {}
        specs = self.model.cell_specs
        return {
            "arch_weights": {k: v.cpu().tolist() for k, v in weights.items()},
            "arch_layout": {
                k: {"ops": list(specs[k].ops), "edges": [list(p) for p in specs[k].pairs]} for k in weights
            },
        }

    @abstractmethod
    def state_dict(self) -> dict[str, Any]: ...

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def network_scores(network: Network, batches: Iterable[Batch]) -> dict[str, float]:
    """``network``'s loss and metric over ``batches`` (eval mode, no gradients; train mode afterwards)."""
    network.eval()
    totals: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for batch in batches:
            for key, value in network.evaluate(batch).items():
                totals[key] = totals[key] + value if key in totals else value
    network.train()
    return summarize_scores({k: float(v) for k, v in totals.items()})


def summarize_scores(totals: dict[str, float]) -> dict[str, float]:
    """Sums from ``Supernet.evaluate`` -> ``val_loss`` and ``val_acc`` (%) or ``val_ppl``."""
    count = max(totals.get("count", 0.0), 1.0)
    val_loss = totals.get("loss_sum", float("nan")) / count
    out = {"val_loss": val_loss}
    if "correct" in totals:
        out["val_acc"] = 100.0 * totals["correct"] / count
    else:
        out["val_ppl"] = math.exp(min(val_loss, 700.0))
    return out


@contextlib.contextmanager
def batch_lr(optimizer: torch.optim.Optimizer, batch: Batch) -> Iterator[None]:
    """Scale ``optimizer``'s learning rates by the batch's ``lr_scale`` within the context (no change for
    batches without one). PTB windows of variable length ask for lr * seq_len / bptt (DARTS' RNN search)."""
    scale = float(getattr(batch, "lr_scale", 1.0))
    base = [group["lr"] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["lr"] *= scale
    try:
        yield
    finally:
        for group, lr in zip(optimizer.param_groups, base):
            group["lr"] = lr


def weight_sgd(
    params: Iterable[torch.Tensor], t: TrainConfig, lr: float, weight_decay: float | None = None
) -> torch.optim.SGD:
    """The weights' SGD of the ``train`` section (momentum, Nesterov or not, weight decay) at ``lr``."""
    decay = t.w_weight_decay if weight_decay is None else weight_decay
    return torch.optim.SGD(params, lr=lr, momentum=t.w_momentum, nesterov=t.w_nesterov, weight_decay=decay)


def cosine_lr(epoch: int, epochs: int, lr: float, lr_min: float) -> float:
    """Cosine annealing from ``lr`` at epoch 0 towards ``lr_min`` at ``epochs`` (stateless, so resumable)."""
    return lr_min + 0.5 * (lr - lr_min) * (1.0 + math.cos(math.pi * epoch / epochs))
