"""Published results, as data, for the "published" rows printed beside measured ones.

Each row names its paper and table, the hardware, how that paper counted search cost (papers differ: DARTS
counts its four repeated searches, later papers one search), and how it was checked here (``checked``):
against the paper, the authors' code or README, or only against later papers that reprint it.
"""

from __future__ import annotations

from nasbench.published.darts_space import DARTS_SPACE
from nasbench.published.nb201 import NB201
from nasbench.published.ptb import PTB
from nasbench.published.row import PublishedRow

PUBLISHED: tuple[PublishedRow, ...] = (*DARTS_SPACE, *PTB, *NB201)
__all__ = ["PUBLISHED", "PublishedRow"]
