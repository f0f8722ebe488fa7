"""The ops each edge of the DARTS CNN space mixes: DARTS' eight everywhere, or one of RobustDARTS' reduced
spaces S1-S4, where DARTS reliably collapses (Zela et al., "Understanding and Robustifying Differentiable
Architecture Search", ICLR 2020, sec. 4; the op sets as data from automl/RobustDARTS ``src/spaces.py``,
the same in SmoothDARTS, DARTS- and darts-pt).

Edges are in the space's row order: node 2 takes rows 0-1, node 3 rows 2-4, node 4 rows 5-8, node 5 rows 9-13.
"""

from __future__ import annotations

from nasbench.errors import UserError
from nasbench.spaces.ops import CNN_OP_NAMES

OP_SETS = ("darts", "s1", "s2", "s3", "s4")
EXTRA_OPS = ("noise",)  # S4's op: N(0, 1) noise of the input's shape, whatever the input
COLUMN_ORDER = (*CNN_OP_NAMES, *EXTRA_OPS)

_MAX, _AVG, _SKIP = "max_pool_3x3", "avg_pool_3x3", "skip_connect"
_SEP3, _DIL3, _DIL5 = "sep_conv_3x3", "dil_conv_3x3", "dil_conv_5x5"

# S1: two ops per edge, different per edge, normal and reduce cells apart (RobustDARTS sec. 4: the two ops
# with the largest alpha of each edge in a converged DARTS search)
S1 = {
    "normal": (
        (_SKIP, _DIL3),
        (_SKIP, _DIL5),
        (_SKIP, _DIL5),
        (_SKIP, _SEP3),
        (_SKIP, _DIL3),
        (_MAX, _SKIP),
        (_SKIP, _SEP3),
        (_SKIP, _SEP3),
        (_SKIP, _DIL3),
        (_SKIP, _SEP3),
        (_MAX, _SKIP),
        (_SKIP, _DIL3),
        (_DIL3, _DIL5),
        (_DIL3, _DIL5),
    ),
    "reduce": (
        (_MAX, _AVG),
        (_MAX, _DIL3),
        (_MAX, _AVG),
        (_MAX, _AVG),
        (_SKIP, _DIL5),
        (_MAX, _AVG),
        (_MAX, _SEP3),
        (_SKIP, _DIL3),
        (_SKIP, _DIL5),
        (_MAX, _AVG),
        (_MAX, _AVG),
        (_SKIP, _DIL5),
        (_SKIP, _DIL5),
        (_SKIP, _DIL5),
    ),
}
UNIFORM = {
    "s2": (_SKIP, _SEP3),  # a skip against a separable convolution on every edge
    "s3": ("none", _SKIP, _SEP3),  # the same with the zero op
    "s4": ("noise", _SEP3),  # pure noise against a separable convolution
}


def cell_ops(op_set: str, cell: str, n_edges: int) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...] | None]:
    """(the cell's op columns, each edge's allowed ops or None when every edge allows every column)."""
    if op_set == "darts":
        return CNN_OP_NAMES, None
    if op_set in UNIFORM:
        return tuple(op for op in COLUMN_ORDER if op in UNIFORM[op_set]), None
    if op_set == "s1":
        if n_edges != len(S1[cell]):
            raise UserError(f"space op_set=s1 is defined for 4 nodes (14 edges); this cell has {n_edges} edges")
        return tuple(op for op in COLUMN_ORDER if any(op in pair for pair in S1[cell])), S1[cell]
    raise UserError(f"space op_set={op_set!r}: use one of {', '.join(OP_SETS)}")
