"""What every search space provides, and the supernet contract the searchers rely on.

A searcher sees a space only through ``SearchSpace`` and the ``Supernet`` it builds; a space knows
nothing of searchers.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from nasbench.data.streams import SearchData
from nasbench.genotype import Genotype

Batch = Any  # a space's batch: (images, labels) for CIFAR-10, (inputs, targets) windows for PTB


class Network(nn.Module, ABC):
    """What searchers train and score: a supernet, or the discrete network of one genotype."""

    @abstractmethod
    def loss(self, batch: Batch) -> torch.Tensor:
        """Mean training loss of the batch (a scalar with a graph).

        A network with carried state (the RNN's hidden state) advances it here, per data split.
        """

    @abstractmethod
    def evaluate(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Sums over the batch, without gradients: ``loss_sum``, ``count`` and, for classifiers, ``correct``."""

    def carried_state(self) -> Any:
        """A snapshot of the state ``loss`` carries from batch to batch (the RNN's hidden state per split),
        for ``restore_state``; None for stateless networks."""
        return None

    def restore_state(self, state: Any) -> None:
        """Put back a ``carried_state`` snapshot. Stateless networks have nothing to restore."""

    @contextlib.contextmanager
    def frozen_state(self) -> Iterator[None]:
        """Within this context ``loss`` leaves any carried state as it was: for the extra loss evaluations
        of second-order DARTS and of the Hessian, which must not move the state that the real steps carry."""
        saved = self.carried_state()
        try:
            yield
        finally:
            self.restore_state(saved)


def classification_scores(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """``Network.evaluate`` sums for a classifier: logits [B, classes], labels [B]."""
    return {
        "loss_sum": F.cross_entropy(logits, labels, reduction="sum"),
        "correct": (logits.argmax(dim=1) == labels).sum(),
        "count": torch.tensor(len(labels), device=labels.device),
    }


class ImageClassifier(Network):
    """``loss`` and ``evaluate`` for a network whose ``forward`` maps images [B, 3, H, W] to logits [B, classes];
    a supernet mixes it in before ``Supernet``."""

    def loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        images, labels = batch
        return F.cross_entropy(self(images), labels)

    @torch.no_grad()
    def evaluate(self, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, torch.Tensor]:
        images, labels = batch
        return classification_scores(self(images), labels)


class Supernet(Network):
    """A network holding every candidate operation, mixed by architecture parameters.

    Architecture parameters are ``nn.Parameter``s registered with ``add_arch_parameter`` so that they
    sit in ``state_dict`` beside the weights, but are returned only by ``arch_parameters``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._arch_names: list[str] = []

    def add_arch_parameter(self, name: str, value: torch.Tensor) -> None:
        self.register_parameter(name, nn.Parameter(value))
        self._arch_names.append(name)

    def arch_parameters(self) -> list[nn.Parameter]:
        return [getattr(self, name) for name in self._arch_names]

    def named_arch_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        for name in self._arch_names:
            yield name, getattr(self, name)

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    @abstractmethod
    def arch_weights(self) -> dict[str, torch.Tensor]:
        """Normalised mixing weights per cell type, [n_edges, n_ops] (detached)."""

    @abstractmethod
    def derive(self) -> Genotype:
        """The discrete genotype that the current architecture parameters select."""

    def use_genotype(self, genotype: Genotype | None) -> None:
        """From now on compute only ``genotype``'s path (``None``: the alpha mixture again).

        On the path every edge of the genotype applies its one op with weight 1 and each node sums its
        genotype inputs; edges and ops outside the genotype are not computed, and the architecture
        parameters are not used (so get no gradient), which keeps memory at that of one discrete network.
        Random search with weight sharing trains and scores the shared weights this way."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot compute a single genotype's path yet (Supernet.use_genotype)"
        )

    @contextlib.contextmanager
    def single_path(self, genotype: Genotype) -> Iterator[None]:
        """``use_genotype(genotype)`` within the context, then the mixture again."""
        self.use_genotype(genotype)
        try:
            yield
        finally:
            self.use_genotype(None)


@dataclass(frozen=True)
class SupernetOptions:
    """Switches a searcher may turn on in any space's mixed operations."""

    partial_channels: int = 1  # PC-DARTS: 1/K of the channels (or hidden units) go through the mixed op
    edge_normalization: bool = False  # PC-DARTS: a softmax-normalised weight per incoming edge


class SearchSpace(ABC):
    """A search space: its operations, data, supernet, discrete networks, and genotype rules."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one line for ``nasbench list``: what it is and which paper
    dataset: ClassVar[str]  # "cifar10" or "ptb"
    metric: ClassVar[str]  # "acc" (higher is better) or "ppl" (lower is better)
    ops: ClassVar[tuple[str, ...]]
    config_cls: ClassVar[type]
    # preset -> {"train": {...}, "space": {...}}; every space has "paper", "small" (the CPU default,
    # under 10 minutes on 2 cores) and "tiny" (seconds; the contract tests use it)
    presets: ClassVar[dict[str, dict[str, dict[str, Any]]]]
    published: ClassVar[dict[str, Genotype]] = {}

    @abstractmethod
    def load_data(
        self, path: str | None, cfg: Any, device: torch.device, seed: int, download: bool = False
    ) -> SearchData:
        """The search splits (weights, architecture) of this space's data set; ``path=None``: built-in."""

    @abstractmethod
    def supernet(self, cfg: Any, data: SearchData, options: SupernetOptions) -> Supernet: ...

    @abstractmethod
    def network(self, genotype: Genotype, cfg: Any, data: SearchData) -> Network:
        """The discrete network of ``genotype`` at the search network's shape (for training from scratch).

        A searcher trains and scores it through ``loss`` and ``evaluate`` exactly as it would a supernet."""

    @abstractmethod
    def sample_genotype(self, cfg: Any, generator: torch.Generator) -> Genotype:
        """A genotype drawn uniformly from the space's discrete cells: in the DARTS spaces ``none`` is never
        an edge of a derived cell and is never chosen; in NAS-Bench-201 it is one of the five ops of a cell."""

    @abstractmethod
    def format_genotype(self, genotype: Genotype) -> str: ...

    @abstractmethod
    def parse_genotype(self, text: str) -> Genotype: ...

    def ground_truth(self, genotype: Genotype) -> dict[str, float] | None:
        """Known true scores of a genotype, keys starting with ``true_`` (NAS-Bench-201's look-up of
        ``true_test_acc``); the runner records them per epoch and in ``metrics``. None: not known."""
        return None

    def genotype(self, name_or_text: str) -> Genotype:
        """A published genotype by name (e.g. ``DARTS_V2``), or one given as text."""
        if name_or_text in self.published:
            return self.published[name_or_text]
        return self.parse_genotype(name_or_text)
