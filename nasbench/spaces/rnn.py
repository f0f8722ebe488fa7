"""The DARTS recurrent cell space on Penn Treebank (Liu et al., "DARTS: Differentiable Architecture Search",
ICLR 2019, sec. 2.1 and 3.1.2).

Node 0 of the cell is the highway update of x_t and h_{t-1}; each of the 8 intermediate nodes mixes every
earlier node, each edge a softmax(alpha)-weighted sum of the highway update under the activations
``tanh``, ``relu``, ``sigmoid``, ``identity`` (``none`` adds zero): 1 + 2 + ... + 8 = 36 edges. During the
search every node passes through a batch norm without affine parameters (sec. 3.1.2). A genotype keeps
one predecessor per node, with its best activation other than ``none`` (sec. 2.4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from nasbench.bounds import AT_LEAST_ONE, FRACTION, NON_NEGATIVE, Bounds
from nasbench.data import builtin_path
from nasbench.data.ptb import TextStream, batchify, check_tar_window, load_corpus
from nasbench.data.streams import SearchData
from nasbench.errors import UserError
from nasbench.genotype import Edge, Genotype, derive_top_k, edge_index, format_darts, parse_darts
from nasbench.spaces.base import SearchSpace, Supernet, SupernetOptions
from nasbench.spaces.mixing import CellMix, CellSpec, PartialChannels
from nasbench.spaces.rnn_network import (
    ACTIVATIONS,
    CELL,
    INIT_RANGE,
    LanguageModel,
    RecurrentCell,
    Regime,
    RnnNetwork,
    highway,
)

RNN_OP_NAMES = ("none", "tanh", "relu", "sigmoid", "identity")
N_INPUTS = 1  # node 0: the highway update of x_t and h_{t-1}


@dataclass(frozen=True)
class RnnConfig:
    """Search-network shape and regularisation; defaults are DARTS' PTB search (sec. A.1.2, reference code)."""

    units: int = 300  # A.1.2: embedding and hidden size 300 (tied decoder: the two are equal)
    nodes: int = 8  # sec. 3.1.2: 8 intermediate nodes
    bptt: int = 35  # A.1.2: BPTT length 35
    eval_batch_size: int = 10  # reference code: the architecture split is scored at batch size 10
    dropout: float = 0.75  # A.1.2 / reference code: output 0.75, hidden 0.25, input 0.75, embedding 0.2
    dropouth: float = 0.25
    dropoutx: float = 0.75
    dropouti: float = 0.2
    dropoute: float = 0.0  # reference code: no word dropout in the search
    ar_alpha: float = 0.0  # reference code: activation regularisation off
    tar_beta: float = 1e-3  # reference code: temporal activation regularisation 1e-3
    # reference code: every epoch walks the whole training text (its window count varies with the drawn
    # lengths), each architecture window starting where the weight window does, modulo valid.txt's length;
    # false: a fixed number of windows, the architecture windows consecutive (the suite's rule before)
    whole_text: bool = True

    # what a record written before a setting existed ran with (nasbench.report reads missing settings so)
    legacy_settings: ClassVar[dict[str, Any]] = {"whole_text": False}

    bounds: ClassVar[dict[str, Bounds]] = {
        **dict.fromkeys(("units", "nodes", "eval_batch_size"), AT_LEAST_ONE),
        "bptt": Bounds(2.0),
        **dict.fromkeys(("dropout", "dropouth", "dropoutx", "dropouti", "dropoute"), FRACTION),
        **dict.fromkeys(("ar_alpha", "tar_beta"), NON_NEGATIVE),
    }

    def check(self) -> None:
        check_tar_window(self.bptt, self.tar_beta)

    def regime(self) -> Regime:
        return Regime(**{f.name: getattr(self, f.name) for f in fields(Regime)})


class SearchCell(RecurrentCell):
    """The mixed cell. In a supernet built with partial channels (PC-DARTS on hidden units, K > 1) each edge
    mixes only the first D/K units of its source node and passes the rest on unchanged; a shuffle of the
    node's units then lets other units through the mixture at the next node."""

    def __init__(self, units: int, nodes: int, partial: int) -> None:
        super().__init__(units)
        self.n_nodes = nodes
        self.channels = PartialChannels(units, partial, dim=-1)
        m = self.channels.mixed
        self.ws = nn.ParameterList(
            nn.Parameter(torch.empty(m, 2 * m).uniform_(-INIT_RANGE, INIT_RANGE)) for _ in range(nodes)
        )
        self.bn = nn.BatchNorm1d(units, affine=False)  # sec. 3.1.2; one shared by all nodes (reference code)
        acts = [op for op in RNN_OP_NAMES if op != "none"]
        self.acts = [ACTIVATIONS[op] for op in acts]
        self.act_columns = [RNN_OP_NAMES.index(op) for op in acts]

    def prepare(self, *mixing: Any) -> tuple[Any, ...]:
        """The window's ``CellMix`` -> what ``nodes`` uses. When every op is computed with weights (the
        mixture), per-edge factors batched over each node's sources, once per window: activation weights
        [4, 36, 1, 1], their total [36, 1, 1], edge factors [36, 1, 1] or None. Otherwise the mix itself."""
        mix = mixing[0].aux_skip_folded(RNN_OP_NAMES.index("identity"))  # a highway with no weights of its own
        if mix.active is not None or mix.weights is None:
            return None, None, None, mix
        w_act = mix.weights[:, self.act_columns]
        edge = None if mix.edge_scale is None else mix.edge_scale[:, None, None]
        return w_act.t()[:, :, None, None], w_act.sum(dim=1)[:, None, None], edge, mix

    def nodes(self, s0: torch.Tensor, h_mask: torch.Tensor | None, *mixing: Any) -> torch.Tensor:
        # s0: [B, D]; mixing: see prepare
        w_act, kept, edge_weights, mix = mixing
        states = self.bn(s0)[None]  # [1, B, D]: node 0
        row = 0
        for j in range(self.n_nodes):
            n = j + 1  # node j + 1 has an edge from each of nodes 0 .. j
            if w_act is not None:
                mixed = self._mixture(states, h_mask, j, w_act[:, row : row + n], kept[row : row + n])
                rest = None if self.channels.k == 1 else self.channels.rest(states)
                if edge_weights is not None:
                    mixed = mixed * edge_weights[row : row + n]
                    rest = None if rest is None else rest * edge_weights[row : row + n]
                node = self.channels.node([mixed.sum(dim=0)], [] if rest is None else [rest.sum(dim=0)])
                if mix.bias is not None:
                    node = node + mix.bias[row : row + n].sum()
            else:
                node = self._selected(states, h_mask, j, mix, row)
            states = torch.cat([states, self.bn(node)[None]])
            row += n
        return states[1:].mean(dim=0)

    def _update(self, src: torch.Tensor, h_mask: torch.Tensor | None, j: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixed units of sources ``src`` [n, B, D] and their [c, h] products with node j + 1's matrix."""
        m = self.channels.mixed
        return src[..., :m], (src if h_mask is None else src * h_mask)[..., :m] @ self.ws[j]  # [n, B, m], [n, B, 2m]

    def _mixture(
        self, src: torch.Tensor, h_mask: torch.Tensor | None, j: int, w_act: torch.Tensor, kept: torch.Tensor
    ) -> torch.Tensor:
        """Edges from nodes ``src`` [n, B, D] into node j + 1 -> their mixed units [n, B, D/K]: the highway
        update's sum over the activations weighted by ``w_act`` [4, n, 1, 1] (total ``kept``)."""
        base, ch = self._update(src, h_mask, j)
        c, h = ch.chunk(2, dim=-1)
        acted = (w_act * torch.stack([fn(h) for fn in self.acts])).sum(dim=0)  # [n, B, m]
        # sum_k w_k * highway_k(base) = kept * base + c * (sum_k w_k act_k(h) - kept * base)
        return kept * base + torch.sigmoid(c) * (acted - kept * base)

    def _selected(
        self, states: torch.Tensor, h_mask: torch.Tensor | None, j: int, mix: CellMix, row: int
    ) -> torch.Tensor:
        """Node j + 1 from the edges and activations ``mix.active`` names (weight 1 where ``mix.weights`` is
        None); edges with no computed activation add nothing."""
        mixed: list[torch.Tensor] = []
        bypassed: list[torch.Tensor] = []
        for src in range(j + 1):
            weights, active = mix.row(row + src)
            cols = [c for c in (self.act_columns if active is None else active) if c in self.act_columns]
            if not cols:
                continue
            base, ch = self._update(states[src], h_mask, j)
            if weights is None and len(cols) == 1:
                out = highway(base, ch, ACTIVATIONS[RNN_OP_NAMES[cols[0]]])
            else:
                w = [torch.ones((), device=base.device) if weights is None else weights[c] for c in cols]
                c, h = ch.chunk(2, dim=-1)
                kept = sum(w)
                acted = sum(wk * ACTIVATIONS[RNN_OP_NAMES[col]](h) for wk, col in zip(w, cols))
                out = kept * base + torch.sigmoid(c) * (acted - kept * base)
            scale = None if mix.edge_scale is None else mix.edge_scale[row + src]
            self.channels.add_edge(mixed, bypassed, out, states[src], scale)
        node = self.channels.node(mixed, bypassed) if mixed else torch.zeros_like(states[0])
        if mix.bias is not None:  # each incoming edge's scalar, broadcast onto the node
            node = node + mix.bias[row : row + j + 1].sum()
        return node


class RnnSupernet(LanguageModel, Supernet):
    def __init__(self, cfg: RnnConfig, vocab_size: int, options: SupernetOptions) -> None:
        if options.checkpoint_cells:
            raise UserError(
                "checkpoint_cells=true: the rnn supernet runs its cell once per time step, which is not "
                "checkpointed; drop the setting on this space"
            )
        k = options.partial_channels
        if k < 1 or cfg.units % k:
            raise UserError(
                f"partial_channels K={k} needs the hidden units ({cfg.units}) to be a multiple of K; "
                "change space.units or the searcher's partial_channels"
            )
        super().__init__(vocab_size, SearchCell(cfg.units, cfg.nodes, k), cfg.regime())
        self.cfg, self.mixer = cfg, options.mixer
        self.add_cell_parameters(CELL, CellSpec(RNN_OP_NAMES, tuple(edge_index(N_INPUTS, cfg.nodes))))

    def cell_inputs(self) -> tuple[Any, ...]:
        return (self.mixing(CELL),)

    def derive(self, strengths: dict[str, torch.Tensor]) -> Genotype:
        """DARTS' recurrent rule (sec. 2.4): per node the strongest incoming edge, with its best op but none."""
        edges = derive_top_k(strengths[CELL], RNN_OP_NAMES, N_INPUTS, self.cfg.nodes, k=1)
        return Genotype.of({CELL: edges}, {CELL: range(N_INPUTS, N_INPUTS + self.cfg.nodes)})


def _published(text: str) -> Genotype:
    return parse_darts(text, (CELL,), per_node=1, n_inputs=N_INPUTS)


PUBLISHED = {
    # Liu et al. 2019, fig. 6 (first-order search) and the released code's DARTS_V1 / DARTS_V2 (= DARTS).
    "DARTS_V1": _published(
        "Genotype(recurrent=[('relu', 0), ('relu', 1), ('tanh', 2), ('relu', 3), ('relu', 4), ('identity', 1), "
        "('relu', 5), ('relu', 1)], concat=range(1, 9))"
    ),
    "DARTS_V2": _published(
        "Genotype(recurrent=[('sigmoid', 0), ('relu', 1), ('relu', 1), ('identity', 1), ('tanh', 2), "
        "('sigmoid', 5), ('tanh', 3), ('relu', 5)], concat=range(1, 9))"
    ),
}


# A.1.2: SGD lr 20 (no momentum, no schedule: w_lr_min = w_lr keeps the cosine flat), weight decay
# 5e-7, clip 0.25, batch 256; Adam lr 3e-3, weight decay 1e-3 on alpha (reference code: betas
# (0.9, 0.999)); 50 epochs. train_portion is unused: the weights train on train.txt and the
# architecture on valid.txt, as in the reference code.
PAPER_TRAIN = {
    "epochs": 50,
    "batch_size": 256,
    "w_lr": 20.0,
    "w_lr_min": 20.0,
    "w_momentum": 0.0,
    "w_weight_decay": 5e-7,
    "grad_clip": 0.25,
    "arch_lr": 3e-3,
    "arch_beta1": 0.9,
    "arch_beta2": 0.999,
    "arch_weight_decay": 1e-3,
}


class RnnSpace(SearchSpace):
    name = "rnn"
    summary = "DARTS recurrent cell space on PTB: 5 ops, 1 input + 8 nodes, 36 edges (Liu et al., ICLR 2019)"
    dataset = "ptb"
    family = "darts-ptb"
    metric = "ppl"
    ops = RNN_OP_NAMES
    skip_ops = ("identity",)
    param_free_ops = ("none",)  # every other edge has its own matrix (identity too: it acts on W h)
    primary_cell = CELL
    inputs_per_node = 1  # sec. 2.4: each node keeps its strongest input
    derive_excludes = ("none",)
    none_edges = False  # every node of a recurrent cell needs its one input
    config_cls = RnnConfig
    published = PUBLISHED
    presets = {
        "paper": {"train": PAPER_TRAIN, "space": {}},
        # A 2-core CPU budget on the built-in slice: 64 units, batch 64, 5 epochs, each one pass over the
        # slice's training text (32 windows), scored on the first 10 windows of the architecture split.
        "small": {
            "train": {**PAPER_TRAIN, "epochs": 5, "batch_size": 64, "eval_batches": 10},
            "space": {"units": 64},
        },
        # Seconds, for tests: 8 units, short windows, two steps per epoch.
        "tiny": {
            "train": {**PAPER_TRAIN, "epochs": 2, "batch_size": 4, "steps_per_epoch": 2, "eval_batches": 2},
            "space": {"units": 8, "bptt": 5, "eval_batch_size": 4},
        },
    }

    def load_data(
        self, path: str | None, cfg: Any, device: torch.device, seed: int, download: bool = False
    ) -> SearchData:
        if download:
            raise UserError("--download is not available for PTB: download train/valid/test.txt and pass --data")
        root = Path(path) if path else builtin_path("ptb-mini")
        corpus = load_corpus(root)
        space, b = cfg.space_cfg, cfg.train.batch_size
        train = batchify(corpus.train, b).to(device)  # [rows, B]
        search = batchify(corpus.valid, b).to(device)
        scored = batchify(corpus.valid, space.eval_batch_size).to(device)
        train_stream = TextStream(train, space.bptt, seed, 0, "train", variable=True, whole_text=space.whole_text)
        if space.whole_text:
            val = TextStream(search, space.bptt, seed, stream=1, split="val", follow=train_stream)
        else:
            val = TextStream(search, space.bptt, seed, stream=1, split="val", windows=len(train_stream))
        what = "PTB built-in slice" if not path else f"PTB from {root}"
        unk = corpus.unk_mapped
        return SearchData(
            description=(
                f"{what}: {len(corpus.train)} train.txt tokens train the weights, {len(corpus.valid)} "
                f"valid.txt tokens the architecture; vocabulary {len(corpus.words)} words of train.txt "
                f"({unk['valid']} valid / {unk['test']} test words outside it read as <unk>)"
            ),
            source=str(root),
            train=train_stream,
            val=val,
            score=TextStream(scored, space.bptt, seed, stream=2, split="score"),
            info={"vocab_size": len(corpus.words)},
        )

    def supernet(self, cfg: RnnConfig, data: SearchData, options: SupernetOptions) -> RnnSupernet:
        return RnnSupernet(cfg, data.info["vocab_size"], options)

    def network(self, genotype: Genotype, cfg: RnnConfig, data: SearchData) -> RnnNetwork:
        return RnnNetwork(genotype, data.info["vocab_size"], cfg.units, cfg.regime())

    def sample_genotype(self, cfg: RnnConfig, generator: torch.Generator, ops: Sequence[str] | None = None) -> Genotype:
        """Per node one predecessor and one activation, uniformly from ``ops`` (default: all but ``none``)."""
        choices = list(ops) if ops is not None else [op for op in RNN_OP_NAMES if op != "none"]
        edges = []
        for dst in range(N_INPUTS, N_INPUTS + cfg.nodes):
            src = int(torch.randint(dst, (1,), generator=generator))
            edges.append(Edge(choices[int(torch.randint(len(choices), (1,), generator=generator))], src, dst))
        return Genotype.of({CELL: edges}, {CELL: range(N_INPUTS, N_INPUTS + cfg.nodes)})

    def eval_tasks(self) -> dict[str, type]:
        from nasbench.eval.rnn import RnnEvalTask, WikiText2EvalTask

        return {"ptb": RnnEvalTask, "wikitext2": WikiText2EvalTask}

    def format_genotype(self, genotype: Genotype) -> str:
        return format_darts(genotype)

    def parse_genotype(self, text: str) -> Genotype:
        genotype = _published(text)
        edges = genotype.cell(CELL)
        unknown = {e.op for e in edges} - set(RNN_OP_NAMES)
        if unknown:
            raise UserError(f"genotype uses ops outside the rnn space: {sorted(unknown)}")
        bad = [e for e in edges if e.op == "none" or not 0 <= e.src < e.dst]
        if bad:
            raise UserError(
                f"genotype edges {bad}: each node takes an earlier node (src < dst) with an op other than none"
            )
        outside = [n for n in genotype.concat_of(CELL) if not 0 <= n <= len(edges)]
        if outside or not genotype.concat_of(CELL):
            raise UserError(f"genotype concat {list(genotype.concat_of(CELL))}: nodes must lie in 0..{len(edges)}")
        return genotype
