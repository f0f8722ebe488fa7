"""Genotypes (discrete cells) as values, the derivation rules as pure functions, and the DARTS text form.

A genotype is a set of named cells (``normal`` and ``reduce`` for the CNN space, ``recurrent`` for the
RNN space, ``cell`` for NAS-Bench-201). A cell is a list of edges ``op: src -> dst`` between numbered
nodes: nodes ``0 .. n_inputs-1`` are the cell's inputs, the rest are intermediate nodes in order, and
``concat`` lists the nodes whose outputs make the cell's output.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch

from nasbench.errors import UserError


class Edge(NamedTuple):
    op: str
    src: int
    dst: int


@dataclass(frozen=True)
class Genotype:
    """Cells by name, each a tuple of edges sorted by destination node, and their concat nodes."""

    cells: tuple[tuple[str, tuple[Edge, ...]], ...]
    concat: tuple[tuple[str, tuple[int, ...]], ...]

    @classmethod
    def of(cls, cells: Mapping[str, Sequence[Edge]], concat: Mapping[str, Sequence[int]]) -> Genotype:
        return cls(
            cells=tuple((name, tuple(Edge(*e) for e in edges)) for name, edges in cells.items()),
            concat=tuple((name, tuple(nodes)) for name, nodes in concat.items()),
        )

    def cell(self, name: str) -> tuple[Edge, ...]:
        return dict(self.cells)[name]

    def concat_of(self, name: str) -> tuple[int, ...]:
        return dict(self.concat)[name]

    @property
    def cell_names(self) -> list[str]:
        return [name for name, _ in self.cells]


def edge_index(n_inputs: int, n_nodes: int) -> list[tuple[int, int]]:
    """(src, dst) of every edge of a fully connected cell, in the row order of its alpha matrix.

    Node ``dst`` (from ``n_inputs`` to ``n_inputs + n_nodes - 1``) takes an edge from every earlier node,
    so the CNN cell (2 inputs, 4 nodes) has 2+3+4+5 = 14 edges and the RNN cell (1 input, 8 nodes) 36.
    """
    return [(src, dst) for dst in range(n_inputs, n_inputs + n_nodes) for src in range(dst)]


def derive_top_k(
    weights: torch.Tensor,
    ops: Sequence[str],
    n_inputs: int,
    n_nodes: int,
    k: int,
    excluded: Sequence[str] = ("none",),
) -> tuple[Edge, ...]:
    """The DARTS derivation rule (Liu et al. 2019, sec. 2.4).

    ``weights`` is [n_edges, n_ops], already normalised (softmax over ops, with ``none`` kept in the
    softmax; PC-DARTS passes softmax(alpha) times its edge weight). For each intermediate node keep the
    ``k`` incoming edges whose strongest non-excluded op weighs most, each with that op. Ties keep the
    lower source node.
    """
    pairs = edge_index(n_inputs, n_nodes)
    if weights.shape != (len(pairs), len(ops)):
        raise ValueError(f"weights of shape {tuple(weights.shape)}, expected ({len(pairs)}, {len(ops)})")
    allowed = torch.tensor([op not in excluded for op in ops])
    masked = weights.detach().float().cpu().masked_fill(~allowed, float("-inf"))
    best_weight, best_op = masked.max(dim=1)
    edges: list[Edge] = []
    row = 0
    for dst in range(n_inputs, n_inputs + n_nodes):
        rows = list(range(row, row + dst))
        row += dst
        ranked = sorted(rows, key=lambda r: (-float(best_weight[r]), pairs[r][0]))[:k]
        for r in sorted(ranked, key=lambda r: pairs[r][0]):
            edges.append(Edge(ops[int(best_op[r])], pairs[r][0], dst))
    return tuple(edges)


def format_darts(genotype: Genotype) -> str:
    """The text form of the DARTS reference code: ``Genotype(normal=[('op', src), ...], normal_concat=[...])``.

    Destination nodes are implicit in that form (edges are listed node by node).
    """
    parts = []
    for name, edges in genotype.cells:
        listed = ", ".join(f"('{e.op}', {e.src})" for e in edges)
        concat = ", ".join(str(n) for n in genotype.concat_of(name))
        concat_key = "concat" if len(genotype.cells) == 1 else f"{name}_concat"
        parts.append(f"{name}=[{listed}], {concat_key}=[{concat}]")
    return f"Genotype({', '.join(parts)})"


_RANGE = re.compile(r"range\(\s*(\d+)\s*,\s*(\d+)\s*\)")


def parse_darts(text: str, cell_names: Sequence[str], per_node: int, n_inputs: int) -> Genotype:
    """Parse the DARTS text form (lists or ``range(a, b)`` for concat), rebuilding destination nodes.

    Each intermediate node has ``per_node`` incoming edges listed in order, so edge ``i`` goes into
    node ``n_inputs + i // per_node``.
    """
    body = text.strip()
    match = re.fullmatch(r"Genotype\((.*)\)", body, flags=re.S)
    if not match:
        raise UserError(f"not a genotype: {text!r}; expected Genotype(name=[('op', src), ...], ...)")
    expanded = _RANGE.sub(lambda m: str(list(range(int(m[1]), int(m[2])))), match[1])
    try:
        call = ast.parse(f"f({expanded})", mode="eval").body
        assert isinstance(call, ast.Call)
        fields = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    except (SyntaxError, ValueError, AssertionError) as exc:
        raise UserError(f"cannot parse genotype text {text!r}: {exc}") from None
    cells: dict[str, list[Edge]] = {}
    concat: dict[str, list[int]] = {}
    for name in cell_names:
        concat_key = "concat" if len(cell_names) == 1 else f"{name}_concat"
        if name not in fields or concat_key not in fields:
            raise UserError(f"genotype text {text!r} lacks {name!r} or {concat_key!r}")
        try:
            cells[name] = [
                Edge(str(op), int(src), n_inputs + i // per_node) for i, (op, src) in enumerate(fields[name])
            ]
            concat[name] = [int(n) for n in fields[concat_key]]
        except (TypeError, ValueError):
            raise UserError(f"genotype text {text!r}: {name!r} must be a list of ('op', src) pairs") from None
    return Genotype.of(cells, concat)
