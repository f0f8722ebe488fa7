"""Batch streams: deterministic per (seed, epoch), so that a resumed run sees the batches it would have."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch


class BatchStream(Protocol):
    def __len__(self) -> int:
        """Batches per epoch."""
        ...

    def epoch(self, epoch: int) -> Iterator[Any]:
        """The batches of one epoch, in an order fixed by the run's seed and the epoch number."""
        ...

    @property
    def samples_per_batch(self) -> int: ...


@dataclass
class SearchData:
    """The two search splits of a data set and what a space needs to know about it."""

    description: str  # said in the output and kept in the record, e.g. "CIFAR-10 built-in slice ..."
    source: str  # the folder it was read from
    train: BatchStream  # trains the weights
    val: BatchStream  # trains the architecture
    score: BatchStream  # the architecture split again, unaugmented and in order: scores each epoch
    info: dict[str, Any] = field(default_factory=dict)  # e.g. num_classes, vocab_size


def capped_steps(available: int, cap: int) -> int:
    """Steps in an epoch: ``available`` batches, at most ``cap`` of them (``cap`` 0: the whole pass)."""
    return min(available, cap) if cap > 0 else available


def epoch_generator(seed: int, epoch: int, stream: int, device: torch.device) -> torch.Generator:
    """A generator private to one stream and epoch, independent of the global RNG."""
    gen = torch.Generator(device=device)
    gen.manual_seed((seed * 1_000_003 + epoch * 1_009 + stream) % (2**63))
    return gen


def epoch_steps(stream: Any, epoch: int) -> int:
    """Batches ``stream`` gives in ``epoch``: its ``steps(epoch)`` where the count varies by epoch (PTB walked
    whole), else its length."""
    steps = getattr(stream, "steps", None)
    return int(steps(epoch)) if steps is not None else len(stream)
