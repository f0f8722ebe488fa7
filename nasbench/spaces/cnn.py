"""The DARTS CNN cell space on CIFAR-10 (Liu et al., "DARTS: Differentiable Architecture Search", ICLR 2019).

The search network (sec. 3.1.1): a 3x3 conv stem with 3C channels, then ``layers`` cells; the cells at
1/3 and 2/3 of the depth are reduction cells (stride 2, channels doubled). A cell has two inputs (the
outputs of the two previous cells), four intermediate nodes, and 14 edges, each a mixture of the eight
operations weighted by softmax(alpha); its output concatenates the four nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from nasbench.bounds import AT_LEAST_ONE, Bounds
from nasbench.data.cifar10 import cifar10_search_data
from nasbench.data.streams import SearchData
from nasbench.errors import UserError
from nasbench.genotype import Edge, Genotype, derive_top_k, edge_index, format_darts, parse_darts
from nasbench.spaces.base import ImageClassifier, SearchSpace, Supernet, SupernetOptions
from nasbench.spaces.cnn_cells import N_INPUTS, POOLS, SearchCell
from nasbench.spaces.cnn_network import CnnNetwork
from nasbench.spaces.cnn_op_sets import COLUMN_ORDER, OP_SETS, cell_ops
from nasbench.spaces.mixing import CellSpec
from nasbench.spaces.ops import CNN_OP_NAMES, conv_bn
from nasbench.spaces.separable_conv import recompute_depthwise

CELLS = ("normal", "reduce")


@dataclass(frozen=True)
class CnnConfig:
    """Search-network shape; defaults are the paper's (sec. 3.1.1: 8 cells, 16 initial channels)."""

    channels: int = 16
    layers: int = 8
    nodes: int = 4
    stem_multiplier: int = 3
    # the ops each edge mixes: "darts" (the eight of sec. 3.1.1) or RobustDARTS' reduced spaces "s1"-"s4"
    op_set: str = "darts"

    bounds: ClassVar[dict[str, Bounds]] = {
        "channels": Bounds(2.0),
        "layers": Bounds(3.0),  # the reductions sit at layers // 3 and 2 * layers // 3: fewer, no normal cell
        **dict.fromkeys(("nodes", "stem_multiplier"), AT_LEAST_ONE),
    }

    def check(self) -> None:
        if self.channels % 2:
            raise UserError(f"space channels={self.channels}: use an even number (PC-DARTS and the cells halve it)")
        if self.op_set not in OP_SETS:
            raise UserError(f"space op_set={self.op_set!r}: use one of {', '.join(OP_SETS)}")


class CnnSupernet(ImageClassifier, Supernet):
    def __init__(self, cfg: CnnConfig, num_classes: int, options: SupernetOptions) -> None:
        super().__init__(options.mixer)
        self.checkpoint_cells = options.checkpoint_cells
        k = options.partial_channels
        if k < 1 or cfg.channels % (2 * k):
            raise UserError(
                f"partial_channels K={k} needs the channel count ({cfg.channels}) to be a multiple of 2K; "
                "change space.channels or the searcher's partial_channels"
            )
        self.cfg = cfg
        pairs = tuple(edge_index(N_INPUTS, cfg.nodes))
        specs = {}
        for cell in CELLS:
            ops, allowed = cell_ops(cfg.op_set, cell, len(pairs))
            columns = None if allowed is None else tuple(tuple(ops.index(op) for op in edge) for edge in allowed)
            specs[cell] = CellSpec(ops, pairs, columns)
        c_stem = cfg.stem_multiplier * cfg.channels
        self.stem = conv_bn(3, c_stem, 3, 1, 1, True)
        c_pp, c_p, c = c_stem, c_stem, cfg.channels
        cells, reduction_prev = [], False
        for layer in range(cfg.layers):
            reduction = layer in (cfg.layers // 3, 2 * cfg.layers // 3)
            if reduction:
                c *= 2
            spec = specs["reduce" if reduction else "normal"]
            cells.append(SearchCell(cfg.nodes, c_pp, c_p, c, reduction, reduction_prev, k, spec, options.aux_skip))
            c_pp, c_p, reduction_prev = c_p, cfg.nodes * c, reduction
        self.cells = nn.ModuleList(cells)
        recompute_depthwise(self.cells, options.recompute_depthwise)
        self.classifier = nn.Linear(c_p, num_classes)
        for cell in CELLS:
            self.add_cell_parameters(cell, specs[cell])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, 3, 32, 32] -> logits [B, num_classes]
        mix = {cell: self.mixing(cell) for cell in CELLS}
        out = self.stem(x)
        r0 = r1 = F.relu(out)  # each output feeds the next two cells, which both start with its ReLU
        last = len(self.cells) - 1
        for i, layer in enumerate(self.cells):
            out = self.run_cell(layer, r0, r1, mix["reduce" if layer.reduction else "normal"])
            if i < last:  # the classifier reads the last output itself
                r0, r1 = r1, F.relu(out)
        return self.classifier(F.adaptive_avg_pool2d(out, 1).flatten(1))

    def derive(self, strengths: dict[str, torch.Tensor]) -> Genotype:
        """DARTS' rule (sec. 2.4): per node the two strongest incoming edges, each with its best op but none."""
        ops = {cell: self.cell_specs[cell].ops for cell in CELLS}
        cells = {cell: derive_top_k(strengths[cell], ops[cell], N_INPUTS, self.cfg.nodes, k=2) for cell in CELLS}
        concat = list(range(N_INPUTS, N_INPUTS + self.cfg.nodes))
        return Genotype.of(cells, {cell: concat for cell in CELLS})


def _published(text: str) -> Genotype:
    return parse_darts(text, CELLS, per_node=2, n_inputs=N_INPUTS)


PUBLISHED = {
    # Liu et al. 2019, fig. 4 and 5 (first- and second-order search), as released with the paper.
    "DARTS_V1": _published(
        "Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), "
        "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], "
        "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
        "('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
        "('avg_pool_3x3', 0)], reduce_concat=[2, 3, 4, 5])"
    ),
    "DARTS_V2": _published(
        "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), "
        "('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
        "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
        "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
        "('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
    ),
    # Xu et al. 2020 (PC-DARTS), CIFAR-10 cell as released with the paper.
    "PC_DARTS": _published(
        "Genotype(normal=[('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 0), ('dil_conv_3x3', 1), "
        "('sep_conv_5x5', 0), ('sep_conv_3x3', 1), ('avg_pool_3x3', 0), ('dil_conv_3x3', 1)], "
        "normal_concat=range(2, 6), reduce=[('sep_conv_5x5', 1), ('max_pool_3x3', 0), ('sep_conv_5x5', 1), "
        "('sep_conv_5x5', 2), ('sep_conv_3x3', 0), ('sep_conv_3x3', 3), ('sep_conv_3x3', 1), "
        "('sep_conv_3x3', 2)], reduce_concat=range(2, 6))"
    ),
}


class CnnSpace(SearchSpace):
    name = "cnn"
    summary = "DARTS CNN cell space on CIFAR-10: 8 ops, 2 inputs + 4 nodes, 14 edges (Liu et al., ICLR 2019)"
    dataset = "cifar10"
    family = "darts-cifar10"
    metric = "acc"
    ops = CNN_OP_NAMES
    skip_ops = ("skip_connect",)
    param_free_ops = ("none", "skip_connect", *POOLS, "noise")
    primary_cell = "normal"
    inputs_per_node = 2  # sec. 2.4: the two strongest inputs of each node
    derive_excludes = ("none",)
    none_edges = True  # the discrete network computes none as zeros
    config_cls = CnnConfig
    published = PUBLISHED
    presets = {
        "paper": {"train": {}, "space": {}},
        # A 2-core CPU budget on the built-in slice (about 4 minutes): a narrower, shallower supernet,
        # 4 epochs of 20 steps, each epoch scored on the first 640 architecture-split images.
        "small": {
            "train": {
                "epochs": 4,
                "batch_size": 32,
                "steps_per_epoch": 20,
                "eval_batches": 20,
                "hessian_every": 2,  # the eigenvalue costs about a third of an epoch here
            },
            "space": {"channels": 8, "layers": 5},
        },
        # Seconds, for tests: a toy supernet and two steps per epoch.
        "tiny": {
            "train": {"epochs": 2, "batch_size": 8, "steps_per_epoch": 2, "eval_batches": 2},
            "space": {"channels": 4, "layers": 3, "nodes": 2},
        },
    }

    def load_data(
        self, path: str | None, cfg: Any, device: torch.device, seed: int, download: bool = False
    ) -> SearchData:
        return cifar10_search_data(path, cfg.train, device, seed, download)

    def supernet(self, cfg: CnnConfig, data: SearchData, options: SupernetOptions) -> CnnSupernet:
        return CnnSupernet(cfg, data.info["num_classes"], options)

    def network(self, genotype: Genotype, cfg: CnnConfig, data: SearchData) -> CnnNetwork:
        return CnnNetwork(genotype, cfg.channels, cfg.layers, data.info["num_classes"])

    def sample_genotype(self, cfg: CnnConfig, generator: torch.Generator, ops: Sequence[str] | None = None) -> Genotype:
        """Per node two distinct predecessors and for each an op, uniformly from ``ops`` (default: every op but
        ``none``, which a derived cell never holds)."""
        choices = list(ops) if ops is not None else [op for op in CNN_OP_NAMES if op != "none"]
        cells = {}
        for cell in CELLS:
            edges = []
            for dst in range(N_INPUTS, N_INPUTS + cfg.nodes):
                sources = sorted(torch.randperm(dst, generator=generator)[:2].tolist())
                for src in sources:
                    op = choices[int(torch.randint(len(choices), (1,), generator=generator))]
                    edges.append(Edge(op, src, dst))
            cells[cell] = edges
        return Genotype.of(cells, {cell: range(N_INPUTS, N_INPUTS + cfg.nodes) for cell in CELLS})

    def eval_tasks(self) -> dict[str, type]:
        from nasbench.eval.cnn import CnnEvalTask
        from nasbench.eval.imagenet import ImageNetEvalTask

        return {"cifar10": CnnEvalTask, "imagenet": ImageNetEvalTask}

    def format_genotype(self, genotype: Genotype) -> str:
        return format_darts(genotype)

    def parse_genotype(self, text: str) -> Genotype:
        genotype = parse_darts(text, CELLS, per_node=2, n_inputs=N_INPUTS)
        for cell in CELLS:
            unknown = {e.op for e in genotype.cell(cell)} - set(COLUMN_ORDER)
            if unknown:
                raise UserError(f"genotype uses ops outside the cnn space: {sorted(unknown)}")
        return genotype
