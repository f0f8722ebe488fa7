"""The DARTS recurrent language model (Liu et al. 2019, sec. 2.1 and 3.1.2), shared by the supernet and the
discrete network of a genotype, and the discrete network itself.

A tied embedding/decoder around one recurrent cell. The cell turns x_t and h_{t-1} into node 0 by a
highway update, s_0 = h + c * (tanh(W_h [x, h]) - h) with c = sigmoid(W_c [x, h]); each later node j
applies the same kind of update to an earlier node i with its own matrix and an activation; the cell's
output h_t is the mean of the intermediate nodes. Dropouts are those of the reference code: ``dropoute``
drops words from the embedding, ``dropouti`` the embedded input (locked over time), ``dropoutx`` and
``dropouth`` the cell's input and states (one mask per window), ``dropout`` the output (locked).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nasbench.data.ptb import TextBatch
from nasbench.genotype import Genotype
from nasbench.spaces.base import Network

INIT_RANGE = 0.04  # reference code: weights uniform in [-0.04, 0.04], decoder bias zero
EVAL_UNITS = 850  # DARTS sec. A.2 (PTB evaluation): embedding and hidden size 850
CELL = "recurrent"
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "identity": lambda x: x,
}


@dataclass(frozen=True)
class Regime:
    """Dropout rates and activation regularisers; defaults are DARTS' search and evaluation (reference code)."""

    dropout: float = 0.75  # output of the cell (locked over time)
    dropouth: float = 0.25  # the cell's states before each node's matrix
    dropoutx: float = 0.75  # the cell's input x_t
    dropouti: float = 0.2  # the embedded words (locked over time)
    dropoute: float = 0.0  # whole words of the embedding matrix
    ar_alpha: float = 0.0  # activation regularisation: alpha * mean(dropped output^2)
    tar_beta: float = 1e-3  # temporal activation regularisation: beta * mean((h_t - h_{t-1})^2)


def keep_mask(shape: tuple[int, ...], p: float, like: torch.Tensor) -> torch.Tensor:
    """Bernoulli(1 - p) / (1 - p): inverted dropout as a mask to reuse (e.g. at every time step)."""
    return torch.empty(shape, dtype=like.dtype, device=like.device).bernoulli_(1.0 - p) / (1.0 - p)


def highway(state: torch.Tensor, ch: torch.Tensor, act: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """state + sigmoid(c) * (act(h) - state) for ch = [c, h] on the last dimension (state: [..., D])."""
    c, h = ch.chunk(2, dim=-1)
    return state + torch.sigmoid(c) * (act(h) - state)


class RecurrentCell(nn.Module, ABC):
    """Runs a cell over a window. Subclasses give ``nodes``: node 0 -> the cell output h_t."""

    def __init__(self, units: int) -> None:
        super().__init__()
        self.units = units
        self.w0 = nn.Parameter(torch.empty(2 * units, 2 * units).uniform_(-INIT_RANGE, INIT_RANGE))

    def first_node(
        self, x: torch.Tensor, h: torch.Tensor, x_mask: torch.Tensor | None, h_mask: torch.Tensor | None
    ) -> torch.Tensor:
        # x, h: [B, D] -> s_0 [B, D]
        xh = torch.cat([x if x_mask is None else x * x_mask, h if h_mask is None else h * h_mask], dim=-1)
        return highway(h, xh @ self.w0, torch.tanh)

    def prepare(self, *mixing: Any) -> tuple[Any, ...]:
        """What ``nodes`` gets from the supernet's mixing, computed once per window."""
        return mixing

    @abstractmethod
    def nodes(self, s0: torch.Tensor, h_mask: torch.Tensor | None, *mixing: Any) -> torch.Tensor:
        """s_0 [B, D] -> h_t [B, D]; ``mixing``: what ``prepare`` made of the supernet's (nothing for a genotype)."""

    def forward(
        self,
        x: torch.Tensor,
        h: torch.Tensor,
        x_mask: torch.Tensor | None,
        h_mask: torch.Tensor | None,
        *mixing: Any,
    ) -> torch.Tensor:
        # x: [T, B, D] inputs, h: [B, D] carried state -> [T, B, D] outputs h_1 .. h_T
        mixing = self.prepare(*mixing)
        outputs = []
        for x_t in x:
            h = self.nodes(self.first_node(x_t, h, x_mask, h_mask), h_mask, *mixing)
            outputs.append(h)
        return torch.stack(outputs)


class GenotypeCell(RecurrentCell):
    """The discrete cell: node ``e.dst`` = highway(node ``e.src``) with activation ``e.op``, one edge a node."""

    def __init__(self, genotype: Genotype, units: int) -> None:
        super().__init__(units)
        self.edges = genotype.cell(CELL)
        self.concat = genotype.concat_of(CELL)
        self.ws = nn.ParameterList(
            nn.Parameter(torch.empty(units, 2 * units).uniform_(-INIT_RANGE, INIT_RANGE)) for _ in self.edges
        )

    def nodes(self, s0: torch.Tensor, h_mask: torch.Tensor | None, *mixing: Any) -> torch.Tensor:
        states = [s0]  # [B, D] each
        for edge, w in zip(self.edges, self.ws):
            prev = states[edge.src]
            states.append(highway(prev, (prev if h_mask is None else prev * h_mask) @ w, ACTIVATIONS[edge.op]))
        return torch.stack([states[n] for n in self.concat]).mean(dim=0)


class LanguageModel(Network):
    """Embedding -> cell -> tied decoder, with a hidden state carried per data split between windows.

    ``loss`` and ``evaluate`` take a ``nasbench.data.ptb.TextBatch``: the window continues the state left
    by the previous window of the same split (detached: no backpropagation across windows), except
    the first window of an epoch, which starts from zeros.
    """

    def __init__(self, vocab_size: int, cell: RecurrentCell, regime: Regime) -> None:
        super().__init__()
        units = cell.units
        self.encoder = nn.Embedding(vocab_size, units)
        nn.init.uniform_(self.encoder.weight, -INIT_RANGE, INIT_RANGE)
        self.decoder_bias = nn.Parameter(torch.zeros(vocab_size))  # the decoder's weight is the embedding's
        self.cell, self.regime = cell, regime
        self.hidden: dict[str, torch.Tensor] = {}  # split -> [B, D], detached

    def cell_inputs(self) -> tuple[Any, ...]:
        """Extra inputs of the cell for one window (the supernet's mixing)."""
        return ()

    def forward(self, inputs: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # inputs: [T, B] token ids, h: [B, D] -> raw cell outputs [T, B, D], dropped outputs [T, B, D]
        r, weight = self.regime, self.encoder.weight
        if self.training and r.dropoute > 0:
            weight = weight * keep_mask((weight.shape[0], 1), r.dropoute, weight)
        emb = F.embedding(inputs, weight)
        batch, units = emb.shape[1], self.cell.units
        x_mask = h_mask = None
        if self.training:
            emb = emb * keep_mask((1, batch, units), r.dropouti, emb)
            x_mask, h_mask = keep_mask((batch, units), r.dropoutx, emb), keep_mask((batch, units), r.dropouth, emb)
        raw = self.cell(emb, h, x_mask, h_mask, *self.cell_inputs())
        dropped = raw * keep_mask((1, batch, units), r.dropout, raw) if self.training else raw
        return raw, dropped

    def _run(self, batch: TextBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits [T * B, V], raw and dropped outputs [T, B, D]; advances the split's hidden state."""
        inputs, split = batch.inputs, batch.split
        h = self.hidden.get(split)
        if batch.first or h is None or h.shape[0] != inputs.shape[1]:
            h = self.encoder.weight.new_zeros(inputs.shape[1], self.cell.units)
        raw, dropped = self(inputs, h)
        self.hidden[split] = raw[-1].detach()
        logits = F.linear(dropped.reshape(-1, self.cell.units), self.encoder.weight, self.decoder_bias)
        return logits, raw, dropped

    def loss(self, batch: TextBatch) -> torch.Tensor:
        logits, raw, dropped = self._run(batch)
        loss = F.cross_entropy(logits, batch.targets.reshape(-1))
        if batch.regularize:
            r = self.regime
            if r.ar_alpha > 0:
                loss = loss + r.ar_alpha * dropped.pow(2).mean()
            if r.tar_beta > 0:
                loss = loss + r.tar_beta * (raw[1:] - raw[:-1]).pow(2).mean()
        return loss

    @torch.no_grad()
    def evaluate(self, batch: TextBatch) -> dict[str, torch.Tensor]:
        logits, _, _ = self._run(batch)
        targets = batch.targets.reshape(-1)
        return {
            "loss_sum": F.cross_entropy(logits, targets, reduction="sum"),
            "count": torch.tensor(targets.numel(), device=targets.device),
        }

    def carried_state(self) -> dict[str, torch.Tensor]:
        return dict(self.hidden)

    def restore_state(self, state: dict[str, torch.Tensor]) -> None:
        self.hidden = dict(state)


class RnnNetwork(LanguageModel):
    """The discrete recurrent network of a genotype."""

    def __init__(self, genotype: Genotype, vocab_size: int, units: int, regime: Regime) -> None:
        super().__init__(vocab_size, GenotypeCell(genotype, units), regime)


def evaluation_network(genotype: Genotype, vocab_size: int) -> RnnNetwork:
    """The paper's PTB evaluation model (sec. A.2; reference code's train.py): 850 units, search dropouts."""
    return RnnNetwork(genotype, vocab_size, EVAL_UNITS, Regime())
