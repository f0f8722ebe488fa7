"""What every search space provides, and the supernet contract the searchers rely on.

A searcher sees a space only through ``SearchSpace`` and the ``Supernet`` it builds; a space knows
nothing of searchers.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from nasbench.data.streams import SearchData
from nasbench.genotype import Genotype
from nasbench.spaces.checkpointing import checkpointed
from nasbench.spaces.mixing import CellMix, CellSpec, Mixer

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
    """A network holding every candidate operation, mixed by architecture parameters through its ``mixer``.

    A space builds one with the cells it declares (``cell_specs``: per cell type, its edges and ops) and
    creates each cell's alpha [n_edges, n_ops] with ``add_cell_parameters``; architecture parameters are
    ``nn.Parameter``s, so they sit in ``state_dict`` beside the weights, but only ``arch_parameters`` returns
    them. In every forward pass the space asks ``mixing(cell)`` once per cell type for the ``CellMix`` its
    edges follow; the searcher decides what that is by the mixer it gives the supernet (``SupernetOptions``).
    A space that runs each cell through ``run_cell`` offers ``SupernetOptions.checkpoint_cells``.
    """

    checkpoint_cells = False  # recompute each cell's activations in the backward pass instead of keeping them

    def __init__(self, mixer: Mixer | None = None) -> None:
        super().__init__()
        self._arch_names: list[str] = []
        self.cell_specs: dict[str, CellSpec] = {}
        self.mixer = mixer or Mixer()

    def run_cell(self, cell: nn.Module, *args: Any) -> Any:
        """``cell(*args)``; checkpointed (``nasbench.spaces.checkpointing``) where ``checkpoint_cells`` is on and
        a backward pass may follow."""
        if self.checkpoint_cells and torch.is_grad_enabled():
            return checkpointed(cell, *args)
        return cell(*args)

    def add_arch_parameter(self, name: str, value: torch.Tensor) -> None:
        self.register_parameter(name, nn.Parameter(value))
        self._arch_names.append(name)

    def add_cell_parameters(self, cell: str, spec: CellSpec) -> None:
        """Declare a cell type: its alpha, 1e-3 * N(0, 1) as in the reference code, then the mixer's own."""
        self.cell_specs[cell] = spec
        alpha = 1e-3 * torch.randn(spec.n_edges, len(spec.ops))
        extra = self.mixer.cell_parameters(cell, spec, alpha)
        self.add_arch_parameter(f"alpha_{cell}", alpha)
        for name, value in extra.items():
            self.add_arch_parameter(name, value)
        if spec.allowed is not None:  # -inf where an edge may not mix an op: its weight is 0 in any relaxation
            mask = torch.full((spec.n_edges, len(spec.ops)), float("-inf"))
            for row, columns in enumerate(spec.allowed):
                mask[row, list(columns)] = 0.0
            self.register_buffer(f"mask_{cell}", mask, persistent=False)

    def alpha(self, cell: str) -> torch.Tensor:
        """The cell's architecture parameters [n_edges, n_ops]; with -inf on the ops an edge may not mix."""
        alpha = getattr(self, f"alpha_{cell}")
        return alpha if self.cell_specs[cell].allowed is None else alpha + getattr(self, f"mask_{cell}")

    def arch_parameters(self) -> list[nn.Parameter]:
        return [getattr(self, name) for name in self._arch_names]

    def named_arch_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        for name in self._arch_names:
            yield name, getattr(self, name)

    def weight_parameters(self) -> list[nn.Parameter]:
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    @contextlib.contextmanager
    def differentiating(self, params: Sequence[torch.Tensor]) -> Iterator[None]:
        """Within the context, of this supernet's parameters only ``params`` require grad (the others as they
        were afterwards). A forward pass then keeps no tensor and a backward pass computes no gradient that
        only the others would need: the weights' convolution inputs and gradients in a pass for alpha alone,
        the mixing terms in a pass for the weights alone. Gradients of ``params`` are bit for bit the same.
        Forward and backward pass both belong inside (a checkpointed cell recomputes its forward pass in the
        backward one)."""
        keep = {id(p) for p in params}
        frozen = [p for p in self.parameters() if p.requires_grad and id(p) not in keep]
        for p in frozen:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in frozen:
                p.requires_grad_(True)

    def mixing(self, cell: str) -> CellMix:
        """This forward pass's mixing of ``cell``'s edges, as the mixer decides."""
        return self.mixer(self, cell)

    @contextlib.contextmanager
    def mixed_by(self, mixer: Mixer) -> Iterator[None]:
        """Use ``mixer`` within the context (e.g. one genotype's single path), then the supernet's own again."""
        own, self.mixer = self.mixer, mixer
        try:
            yield
        finally:
            self.mixer = own

    @abstractmethod
    def derive(self, strengths: dict[str, torch.Tensor]) -> Genotype:
        """The space's derivation rule: the genotype that per-cell op strengths [n_edges, n_ops] select."""


@dataclass(frozen=True)
class SupernetOptions:
    """What a searcher chooses when a supernet is built."""

    partial_channels: int = 1  # PC-DARTS: 1/K of the channels (or hidden units) go through the mixed ops
    mixer: Mixer = field(default_factory=Mixer)  # how alpha becomes each edge's mixing (default: DARTS' softmax)
    # DARTS-: every edge also carries a skip connection outside its ops (``CellMix.aux_skip`` weighs it); a
    # space builds the modules it needs for that (on the DARTS space's strided edges, a reduction of its own)
    aux_skip: bool = False
    # Per-cell activation checkpointing (``Supernet.run_cell``): less memory, one more forward pass per step
    checkpoint_cells: bool = False
    # Depthwise convolutions followed by a 1x1 one keep their input, not their output, for the backward pass
    # (``nasbench.spaces.separable_conv.ConvChain``; a space without them ignores it)
    recompute_depthwise: bool = True


class SearchSpace(ABC):
    """A search space: its operations, data, supernet, discrete networks, and genotype rules, and the facts
    generic code needs about it (which ops are skips and which parameter-free, its primary cell, the
    published protocol it follows, how a genotype of it is evaluated)."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one line for ``nasbench list``: what it is and which paper
    dataset: ClassVar[str]  # "cifar10" or "ptb"
    # which published search protocol the space is: searchers key their papers' settings by it
    # ("darts-cifar10", "darts-ptb", "nas-bench-201"), never by a space's name
    family: ClassVar[str]
    metric: ClassVar[str]  # "acc" (higher is better) or "ppl" (lower is better)
    ops: ClassVar[tuple[str, ...]]
    skip_ops: ClassVar[tuple[str, ...]]  # the ops a collapse drifts to (skip connections)
    param_free_ops: ClassVar[tuple[str, ...]]  # ops without weights, ``none`` included
    primary_cell: ClassVar[str]  # the cell whose skip connections count as the collapse signal
    inputs_per_node: ClassVar[int | None]  # incoming edges a derived node keeps (None: every edge)
    derive_excludes: ClassVar[tuple[str, ...]]  # ops the space's derivation rule never keeps on an edge
    none_edges: ClassVar[bool]  # whether a genotype's edge may be ``none`` (dropped)
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
    def sample_genotype(self, cfg: Any, generator: torch.Generator, ops: Sequence[str] | None = None) -> Genotype:
        """A genotype drawn uniformly from the space's discrete cells, each edge's op from ``ops`` (default:
        the ops a derived cell may hold: in the DARTS spaces every op but ``none``; in NAS-Bench-201 all five)."""

    @abstractmethod
    def format_genotype(self, genotype: Genotype) -> str: ...

    @abstractmethod
    def parse_genotype(self, text: str) -> Genotype: ...

    def eval_tasks(self) -> dict[str, type]:
        """Data set name -> the ``nasbench.eval.trainer.EvalTask`` that trains a genotype of this space from
        scratch on it (for ``nasbench eval --dataset``): the space's own data set first, then the ones its cells
        are transferred to (ImageNet, WikiText-2). Empty where genotypes are scored by ``ground_truth`` alone."""
        return {}

    def transfer_tasks(self) -> dict[str, type]:
        """The evaluations of ``eval_tasks`` on data sets other than the space's own (its first)."""
        return dict(list(self.eval_tasks().items())[1:])

    def ground_truth(self, genotype: Genotype) -> dict[str, float] | None:
        """Known true scores of a genotype, keys starting with ``true_`` (NAS-Bench-201's look-up of
        ``true_test_acc``); the runner records them per epoch and in ``metrics``. None: not known."""
        return None

    def genotype(self, name_or_text: str) -> Genotype:
        """A published genotype by name (e.g. ``DARTS_V2``), or one given as text."""
        if name_or_text in self.published:
            return self.published[name_or_text]
        return self.parse_genotype(name_or_text)
