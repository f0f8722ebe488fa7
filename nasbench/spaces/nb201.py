"""The NAS-Bench-201 cell space on CIFAR-10, with ground-truth accuracy (Dong and Yang, ICLR 2020).

A cell is a DAG of 4 nodes and 6 edges, one of five operations per edge; every node sums all its
incoming edges (no top-k), so the space holds 5**6 = 15,625 cells, each trained to the end by the
benchmark. A search is scored by a look-up of the derived cell's true test accuracy
(``nasbench.data.nb201_table``). The genotype is written in the benchmark's notation,
``|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|``:
node j's incoming edges as ``op~src``, nodes separated by ``+``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import torch
from torch import nn

from nasbench.bounds import AT_LEAST_ONE, Bounds
from nasbench.data.cifar10 import cifar10_search_data
from nasbench.data.nb201_table import lookup
from nasbench.data.streams import SearchData
from nasbench.errors import UserError
from nasbench.genotype import Edge, Genotype, edge_index
from nasbench.spaces.base import ImageClassifier, SearchSpace, Supernet, SupernetOptions
from nasbench.spaces.mixing import CellMix, CellSpec, PartialChannels
from nasbench.spaces.nb201_network import N_NODES, NB201_OPS, MacroNetwork, Nb201Network, build_op

CELL = "cell"
N_INPUTS = 1  # node 0 is the cell input; nodes 1..3 are computed
PAIRS = edge_index(N_INPUTS, N_NODES - N_INPUTS)  # (src, dst): 1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2
# record keys of the ground truth (test accuracy in %, 200-epoch training)
TRUTH_KEYS = {
    "cifar10": "true_test_acc",
    "cifar100": "true_test_acc_cifar100",
    "imagenet16_120": "true_test_acc_imagenet16_120",
}


@dataclass(frozen=True)
class Nb201Config:
    """Search-network shape; defaults are the benchmark's (sec. 2.1: C = 16 channels, N = 5 cells per stage)."""

    channels: int = 16
    cells_per_stage: int = 5

    bounds: ClassVar[dict[str, Bounds]] = dict.fromkeys(("channels", "cells_per_stage"), AT_LEAST_ONE)


def derive_argmax(weights: torch.Tensor, ops: Sequence[str] = NB201_OPS) -> tuple[Edge, ...]:
    """The NAS-Bench-201 derivation rule: every edge keeps its strongest op, ``none`` included.

    ``weights`` is [6, n_ops] in ``PAIRS`` order (softmax(alpha), or alpha itself: argmax is the same).
    """
    if weights.shape != (len(PAIRS), len(ops)):
        raise ValueError(f"weights of shape {tuple(weights.shape)}, expected ({len(PAIRS)}, {len(ops)})")
    best = weights.detach().float().cpu().argmax(dim=1)
    return tuple(Edge(ops[int(k)], src, dst) for (src, dst), k in zip(PAIRS, best))


def cell_genotype(edges: Sequence[Edge]) -> Genotype:
    return Genotype.of({CELL: edges}, {CELL: (N_NODES - 1,)})


class MixedEdge(nn.Module):
    """One edge: sum over ops of w_o * o(x), as its row of the ``CellMix`` says; ``none`` adds zeros and is not
    computed. In a supernet built with partial channels (PC-DARTS, sec. 3.2) only the first C/K channels go
    through the ops, and the edge returns their mixture alone: the cell adds the bypassed rest and shuffles
    once per node (``PartialChannels.node``).
    """

    def __init__(self, c: int, partial: int) -> None:
        super().__init__()
        self.channels = PartialChannels(c, partial)
        names = [op for op in NB201_OPS if op != "none"]
        self.columns: torch.Tensor
        self.register_buffer("columns", torch.tensor([NB201_OPS.index(op) for op in names]), False)
        self.names = names
        self.ops = nn.ModuleList(build_op(op, self.channels.mixed, affine=False) for op in names)

    def forward(
        self, x: torch.Tensor, weights: torch.Tensor | None, active: Sequence[int] | None
    ) -> torch.Tensor | None:
        # x: [B, C, H, W] -> [B, C/K, H, W]; weights: [5] over all ops including none, or None (weight 1);
        # active: the op columns to compute (None: all). None when no op of the edge is computed.
        part = self.channels.part(x)
        w = None if weights is None else weights[self.columns]
        wanted = None if active is None else set(active)
        terms = [
            op(part) if w is None else w[i] * op(part)
            for i, op in enumerate(self.ops)
            if wanted is None or NB201_OPS.index(self.names[i]) in wanted
        ]
        if not terms:
            return None
        return cast(torch.Tensor, sum(terms))


class SearchCell(nn.Module):
    def __init__(self, c: int, partial: int) -> None:
        super().__init__()
        self.channels = PartialChannels(c, partial)
        self.edges = nn.ModuleList(MixedEdge(c, partial) for _ in PAIRS)

    def forward(self, x: torch.Tensor, mix: CellMix) -> torch.Tensor:
        # x: [B, C, H, W] -> [B, C, H, W]; mix: the CellMix of the 6 edges
        mix = mix.aux_skip_folded(NB201_OPS.index("skip_connect"))  # the identity on every edge of a cell
        states = [x]
        row = 0
        for dst in range(N_INPUTS, N_NODES):
            mixed: list[torch.Tensor] = []
            bypassed: list[torch.Tensor] = []
            for src in range(dst):
                weights, active = mix.row(row)
                y = cast(MixedEdge, self.edges[row])(states[src], weights, active)
                if y is not None:
                    scale = None if mix.edge_scale is None else mix.edge_scale[row]
                    self.channels.add_edge(mixed, bypassed, y, states[src], scale)
                row += 1
            node = self.channels.node(mixed, bypassed) if mixed else torch.zeros_like(x)
            if mix.bias is not None:  # each incoming edge's scalar, broadcast onto the node
                node = node + mix.bias[row - dst : row].sum()
            states.append(node)
        return states[-1]


class Nb201Supernet(ImageClassifier, Supernet):
    def __init__(self, cfg: Nb201Config, num_classes: int, options: SupernetOptions) -> None:
        super().__init__(options.mixer)
        self.checkpoint_cells = options.checkpoint_cells
        k = options.partial_channels
        if k < 1 or cfg.channels % k:
            raise UserError(
                f"partial_channels K={k} needs the channel count ({cfg.channels}) to be a multiple of K; "
                "change space.channels or the searcher's partial_channels"
            )
        self.body = MacroNetwork(cfg.channels, cfg.cells_per_stage, num_classes, lambda c: SearchCell(c, k))
        # one alpha for all cells, as in the benchmark's DARTS
        self.add_cell_parameters(CELL, CellSpec(NB201_OPS, tuple(PAIRS)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, 3, 32, 32] -> logits [B, num_classes]
        return self.body(x, self.mixing(CELL), run_cell=self.run_cell)

    def derive(self, strengths: dict[str, torch.Tensor]) -> Genotype:
        return cell_genotype(derive_argmax(strengths[CELL]))


def format_nb201(genotype: Genotype) -> str:
    """The benchmark's notation: ``|op~src|...|`` per node 1..3, joined by ``+``."""
    by_node: dict[int, list[Edge]] = {dst: [] for dst in range(N_INPUTS, N_NODES)}
    for e in genotype.cell(CELL):
        by_node[e.dst].append(e)
    return "+".join("|" + "|".join(f"{e.op}~{e.src}" for e in by_node[dst]) + "|" for dst in by_node)


def parse_nb201(text: str) -> Genotype:
    """Parse the benchmark's notation; node j must list one edge from each of nodes 0..j-1, in order."""
    nodes = text.strip().split("+")
    hint = "expected |op~0|+|op~0|op~1|+|op~0|op~1|op~2| with ops " + ", ".join(NB201_OPS)
    if len(nodes) != N_NODES - N_INPUTS:
        raise UserError(f"genotype {text!r}: {len(nodes)} nodes, {hint}")
    edges = []
    for dst, node in enumerate(nodes, start=N_INPUTS):
        if not (node.startswith("|") and node.endswith("|")):
            raise UserError(f"genotype {text!r}: node {dst} is not enclosed in '|'; {hint}")
        items = node[1:-1].split("|")
        if len(items) != dst:
            raise UserError(f"genotype {text!r}: node {dst} has {len(items)} edges, needs {dst}; {hint}")
        for src, item in enumerate(items):
            op, _, src_text = item.partition("~")
            if op not in NB201_OPS or src_text != str(src):
                raise UserError(f"genotype {text!r}: edge {item!r} into node {dst} should be op~{src}; {hint}")
            edges.append(Edge(op, src, dst))
    return cell_genotype(edges)


class Nb201Space(SearchSpace):
    name = "nb201"
    summary = "NAS-Bench-201 cell on CIFAR-10: 5 ops, 4 nodes, 6 edges, true test accuracy (Dong & Yang, ICLR 2020)"
    dataset = "cifar10"
    family = "nas-bench-201"
    metric = "acc"
    ops = NB201_OPS
    skip_ops = ("skip_connect",)
    param_free_ops = ("none", "skip_connect", "avg_pool_3x3")
    primary_cell = CELL
    inputs_per_node = None  # every edge of the cell is kept
    derive_excludes = ()  # none is one of the five ops a cell's edge may hold
    none_edges = True
    config_cls = Nb201Config
    presets = {
        # The benchmark's DARTS search (configs/nas-benchmark/algos/DARTS.config of its code): 50 epochs,
        # batch 64, SGD lr 0.025 cosine to 0.001, Nesterov momentum 0.9, weight decay 5e-4; Adam 3e-4, betas
        # (0.5, 0.999), weight decay 1e-3 on alpha; gradient clip 5. Everything but the weight decay and
        # Nesterov is the TrainConfig default. (Its two other differences, docs/fidelity.md: the weight step
        # first, which is weight_step_first=true, and a cosine moved every step.)
        "paper": {"train": {"w_weight_decay": 5e-4, "w_nesterov": True}, "space": {}},
        # A 2-core CPU budget on the built-in slice (about 2.5 CPU-minutes): 8 channels, 2 cells per stage,
        # 5 epochs of 30 steps, each epoch scored on the first 640 architecture-split images.
        "small": {
            "train": {
                "epochs": 5,
                "batch_size": 32,
                "steps_per_epoch": 30,
                "eval_batches": 20,
                "w_weight_decay": 5e-4,
            },
            "space": {"channels": 8, "cells_per_stage": 2},
        },
        # The suite's search-quality protocol on a CPU (results/nb201-cpu/): one darts1 run in under 25
        # minutes on one thread of a 2-core machine, so that two run side by side. Chosen before any study.
        "cpu": {
            "train": {
                # the benchmark's optimisers (SGD 0.025 cosine to 0.001, momentum 0.9, weight decay 5e-4; Adam
                # 3e-4 on alpha): a searcher is compared at the learning rates it was published with. Plain
                # momentum, not the benchmark's Nesterov: the study was fixed before that was a setting
                "w_weight_decay": 5e-4,
                "batch_size": 64,  # the benchmark's batch size
                "epochs": 40,  # the budget: 40 passes over the slice's 2,542 weight-split images, 1,560 steps
                "steps_per_epoch": 0,  # every epoch sees the whole weight split (with --data: 25,000 images)
                "eval_batches": 0,  # and is scored on the whole architecture split
                "hessian_every": 2,  # every 2nd epoch and the last, as RobustDARTS measures it (DARTS-ES)
                # the measurement the study began with (a random start, tol 1e-3, at most 10 products), before
                # the defaults changed: kept so that all its runs measure alike and stay in one row per method
                "hessian_tol": 1e-3,
                "hessian_warm_start": False,
                "hessian_iters": 10,
            },
            # a quarter of the benchmark's width and fewer cells (16 channels, 5 cells per stage there):
            # what fits the budget; the cell, the ops and the macro skeleton are the benchmark's
            "space": {"channels": 8, "cells_per_stage": 2},
        },
        # Seconds, for tests.
        "tiny": {
            "train": {"epochs": 2, "batch_size": 8, "steps_per_epoch": 2, "eval_batches": 2},
            "space": {"channels": 4, "cells_per_stage": 1},
        },
    }

    def load_data(
        self, path: str | None, cfg: Any, device: torch.device, seed: int, download: bool = False
    ) -> SearchData:
        return cifar10_search_data(path, cfg.train, device, seed, download)

    def supernet(self, cfg: Nb201Config, data: SearchData, options: SupernetOptions) -> Nb201Supernet:
        return Nb201Supernet(cfg, data.info["num_classes"], options)

    def network(self, genotype: Genotype, cfg: Nb201Config, data: SearchData) -> Nb201Network:
        return Nb201Network(genotype, cfg.channels, cfg.cells_per_stage, data.info["num_classes"])

    def sample_genotype(
        self, cfg: Nb201Config, generator: torch.Generator, ops: Sequence[str] | None = None
    ) -> Genotype:
        """One op per edge, uniformly over ``ops`` (default all five, ``none`` included: a uniform draw from the
        15,625 cells, as the benchmark's random search samples)."""
        choices = list(ops) if ops is not None else list(NB201_OPS)
        picks = torch.randint(len(choices), (len(PAIRS),), generator=generator)
        return cell_genotype([Edge(choices[int(k)], src, dst) for (src, dst), k in zip(PAIRS, picks)])

    def format_genotype(self, genotype: Genotype) -> str:
        return format_nb201(genotype)

    def parse_genotype(self, text: str) -> Genotype:
        return parse_nb201(text)

    def ground_truth(self, genotype: Genotype) -> dict[str, float]:
        """True test accuracies (%) of the cell after the benchmark's 200-epoch training:
        ``true_test_acc`` (CIFAR-10), ``true_test_acc_cifar100``, ``true_test_acc_imagenet16_120``."""
        accs = lookup(format_nb201(genotype))
        return {TRUTH_KEYS[name]: acc for name, acc in accs.items()}
