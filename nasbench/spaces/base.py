"""What every search space provides, and the supernet contract the searchers rely on.

A searcher sees a space only through ``SearchSpace`` and the ``Supernet`` it builds; a space knows
nothing of searchers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from nasbench.data.streams import SearchData
from nasbench.genotype import Genotype

Batch = Any  # a space's batch: (images, labels) for CIFAR-10, (inputs, targets) windows for PTB


class Supernet(nn.Module, ABC):
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
    def loss(self, batch: Batch) -> torch.Tensor:
        """Mean training loss of the batch under the current mixture (a scalar with a graph)."""

    @abstractmethod
    def evaluate(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Sums over the batch, without gradients: ``loss_sum``, ``count`` and, for classifiers, ``correct``."""

    @abstractmethod
    def arch_weights(self) -> dict[str, torch.Tensor]:
        """Normalised mixing weights per cell type, [n_edges, n_ops] (detached)."""

    @abstractmethod
    def derive(self) -> Genotype:
        """The discrete genotype that the current architecture parameters select."""


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
    presets: ClassVar[dict[str, dict[str, dict[str, Any]]]]  # preset -> {"train": {...}, "space": {...}}
    published: ClassVar[dict[str, Genotype]] = {}

    @abstractmethod
    def load_data(
        self, path: str | None, cfg: Any, device: torch.device, seed: int, download: bool = False
    ) -> SearchData:
        """The search splits (weights, architecture) of this space's data set; ``path=None``: built-in."""

    @abstractmethod
    def supernet(self, cfg: Any, data: SearchData, options: SupernetOptions) -> Supernet: ...

    @abstractmethod
    def network(self, genotype: Genotype, cfg: Any, data: SearchData) -> nn.Module:
        """The discrete network of ``genotype`` at the search network's shape (for training from scratch)."""

    @abstractmethod
    def sample_genotype(self, cfg: Any, generator: torch.Generator) -> Genotype:
        """A genotype drawn uniformly from the space (``none`` never chosen)."""

    @abstractmethod
    def format_genotype(self, genotype: Genotype) -> str: ...

    @abstractmethod
    def parse_genotype(self, text: str) -> Genotype: ...

    def genotype(self, name_or_text: str) -> Genotype:
        """A published genotype by name (e.g. ``DARTS_V2``), or one given as text."""
        if name_or_text in self.published:
            return self.published[name_or_text]
        return self.parse_genotype(name_or_text)
