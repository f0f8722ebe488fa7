"""Size of a network: parameters (millions) and multiply-adds, counted with torch's own FLOP counter.

``torch.utils.flop_counter.FlopCounterMode`` counts 2 FLOPs per multiply-add of convolutions and matrix
products (not of BN, activations or pooling, as the papers' counts). Its backward count of grouped
(depthwise) convolutions is wrong in torch 2.x (counted as dense: ~C times too much at C groups), so a
backward is estimated here as twice the forward instead, and the result says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

BACKWARD_METHOD = "backward estimated as 2x forward (torch's counter overcounts grouped-conv backward)"


def params_m(model: nn.Module, exclude: Sequence[str] = ("auxiliary",)) -> float:
    """Parameters in millions, without those under a submodule named in ``exclude`` (the papers count
    the evaluation network without its auxiliary head)."""
    total = sum(
        p.numel() for name, p in model.named_parameters() if not any(part in exclude for part in name.split("."))
    )
    return total / 1e6


def forward_mult_adds(forward: Callable[[], Any]) -> int:
    """Multiply-adds of one call of ``forward`` (a forward pass, run without gradients): FLOPs / 2."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        forward()
    return counter.get_total_flops() // 2


def count_mult_adds(model: nn.Module, inputs: tuple[Any, ...], backward: bool = False) -> dict[str, Any]:
    """Multiply-adds of one forward ``model(*inputs)`` (no gradients; the caller picks train/eval mode).

    With ``backward``, also ``backward_mult_adds`` = 2 x forward (the gradients w.r.t. inputs and weights
    each cost about one forward) and ``backward_method`` saying so."""
    out: dict[str, Any] = {"forward_mult_adds": forward_mult_adds(lambda: model(*inputs))}
    if backward:
        out["backward_mult_adds"] = 2 * out["forward_mult_adds"]
        out["backward_method"] = BACKWARD_METHOD
    return out
