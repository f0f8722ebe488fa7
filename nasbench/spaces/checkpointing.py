"""Activation checkpointing of one cell: its activations are recomputed in the backward pass, not kept.

``torch.utils.checkpoint`` (non-reentrant, which also supports double backward and the Hessian-vector
products of the collapse metrics) runs the cell's forward pass a second time when the backward pass needs
it. That second run would move batch-norm running statistics a second time; here each batch norm's
momentum is 0 while a cell is recomputed (its statistics stay exactly as they are: x * 1 + 0 * y) and its
batch counter is put back, so that a checkpointed search keeps exactly the statistics of a plain one. The
running statistics are not rewritten afterwards: a second-order backward pass holds them and would refuse
a tensor changed in place. The random state is replayed by ``torch.utils.checkpoint`` itself.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint


class _StatisticsLeftAlone:
    """Within the context, the batch norms of ``module`` do not move their running statistics. Reusable: a
    checkpoint may recompute a cell more than once (each backward pass through it)."""

    def __init__(self, module: nn.Module) -> None:
        self.norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self.saved: list[tuple[float | None, torch.Tensor | None, torch.Tensor | None]] = []

    def __enter__(self) -> None:
        self.saved = []
        for norm in self.norms:
            counter = norm.num_batches_tracked
            self.saved.append((norm.momentum, counter, None if counter is None else counter.clone()))
            norm.momentum = 0.0

    def __exit__(self, *exc: object) -> None:
        with torch.no_grad():
            for norm, (momentum, counter, count) in zip(self.norms, self.saved, strict=True):
                norm.momentum = momentum
                if counter is not None and count is not None:
                    counter.copy_(count)  # a plain counter: no backward pass holds it


def checkpointed(module: nn.Module, *args: Any) -> Any:
    """``module(*args)``, keeping none of its intermediate activations for the backward pass."""
    return checkpoint(
        module,
        *args,
        use_reentrant=False,
        context_fn=lambda: (contextlib.nullcontext(), _StatisticsLeftAlone(module)),
    )
