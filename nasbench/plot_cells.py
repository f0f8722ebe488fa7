"""Drawings of one run: softmax(alpha) of every edge over epochs, and the derived cells as arc diagrams.
Skip connections (each space's ``skip_ops``) are drawn in red, so that a collapse shows at a glance."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from nasbench.genotype import Genotype  # noqa: E402
from nasbench.registry import SPACES  # noqa: E402
from nasbench.results import RunRecord  # noqa: E402
from nasbench.rundir import writing  # noqa: E402

SKIP_COLOR = "#d62728"
FIXED_COLORS = {"none": "#d9d9d9", "max_pool_3x3": "#9ecae1", "avg_pool_3x3": "#4292c6"}
OTHER_COLORS = ("#2ca02c", "#98df8a", "#ff7f0e", "#ffbb78", "#9467bd", "#c5b0d5", "#8c564b", "#e377c2", "#17becf")
PANEL_COLS = 6


def op_colors(ops: list[str], skip_ops: Sequence[str]) -> dict[str, str]:
    colors, others = {}, iter(OTHER_COLORS * (len(ops) // len(OTHER_COLORS) + 1))
    for op in ops:
        colors[op] = SKIP_COLOR if op in skip_ops else FIXED_COLORS.get(op) or next(others)
    return colors


def space_of(name: str) -> Any | None:
    try:
        return SPACES.get(name)()
    except Exception:  # a space that is not installed here: plots that need it are skipped
        return None


def _genotype(record: RunRecord) -> Genotype | None:
    space = space_of(record.space)
    if space is None or not record.genotype:
        return None
    try:
        return space.parse_genotype(record.genotype)
    except Exception:
        return None


def _edge_titles(record: RunRecord, cell: str, n_edges: int) -> list[str]:
    """ "src→dst" per alpha row (every earlier node feeds every intermediate node), else "edge i"."""
    genotype = _genotype(record)
    if genotype is not None and cell in genotype.cell_names:
        n_inputs = min(edge.dst for edge in genotype.cell(cell))
        pairs = [(src, dst) for dst in range(n_inputs, n_inputs + n_edges) for src in range(dst)][:n_edges]
        if len(pairs) == n_edges:
            return [f"{src}→{dst}" for src, dst in pairs]
    return [f"edge {i}" for i in range(n_edges)]


def plot_alphas(record: RunRecord, ops: list[str], skip_ops: Sequence[str], path: Path) -> Path | None:
    """One stacked-area panel per edge (softmax(alpha) over epochs); the first panel of a cell is the mean
    over its edges. A red panel title: at the last epoch a skip connection is the edge's strongest op, with
    at least twice the uniform weight. None when the record has no architecture weights (random search)."""
    history = [e["arch_weights"] for e in record.epochs if e.get("arch_weights")]
    if not history:
        return None
    cells = list(history[0])
    layout: dict[str, Any] = next((e["arch_layout"] for e in record.epochs if e.get("arch_layout")), {})
    epochs = [e["epoch"] for e in record.epochs if e.get("arch_weights")]
    if len(epochs) == 1:  # a single epoch: draw it as a flat band
        epochs, history = [epochs[0] - 0.5, epochs[0] + 0.5], history * 2
    n_ops = len(history[0][cells[0]][0])
    own = layout.get(cells[0], {}).get("ops")  # the record's own op names (a reduced space has its own)
    names = list(own) if own and len(own) == n_ops else ops if len(ops) == n_ops else [f"op{i}" for i in range(n_ops)]
    colors = op_colors(names, skip_ops)
    blocks = [(cell, math.ceil((len(history[0][cell]) + 1) / PANEL_COLS)) for cell in cells]
    fig, axes = plt.subplots(
        sum(rows for _, rows in blocks),
        PANEL_COLS,
        figsize=(2.3 * PANEL_COLS, 1.9 * sum(r for _, r in blocks)),
        squeeze=False,
    )
    first_row = 0
    for cell, rows in blocks:
        weights = [h[cell] for h in history]  # [epochs][edges][ops]
        n_edges = len(weights[0])
        edges = layout.get(cell, {}).get("edges")
        titles = [
            "mean over edges",
            *([f"{a}→{b}" for a, b in edges] if edges else _edge_titles(record, cell, n_edges)),
        ]
        for panel in range(rows * PANEL_COLS):
            ax = axes[first_row + panel // PANEL_COLS][panel % PANEL_COLS]
            if panel > n_edges:
                ax.axis("off")
                continue
            if panel == 0:
                series = [[sum(w[e][o] for e in range(n_edges)) / n_edges for w in weights] for o in range(n_ops)]
            else:
                series = [[w[panel - 1][o] for w in weights] for o in range(n_ops)]
            # fixed limits, no shared axes: autoscaling dozens of linked panels costs seconds per figure
            ax.set(xlim=(epochs[0], epochs[-1]), ylim=(0, 1), autoscale_on=False)
            ax.stackplot(epochs, series, colors=[colors[n] for n in names], linewidth=0)
            final_best = max(range(n_ops), key=lambda o: series[o][-1])
            collapsed = names[final_best] in skip_ops and series[final_best][-1] >= 2 / n_ops
            ax.set_title(
                f"{cell} {titles[panel]}",
                fontsize=8,
                color=SKIP_COLOR if collapsed else "black",
                fontweight="bold" if collapsed else "normal",
            )
            ax.tick_params(labelsize=7)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.label_outer()
        first_row += rows
    height_in = fig.get_figheight()
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[n]) for n in names]
    fig.legend(
        handles,
        names,
        loc="upper center",
        bbox_to_anchor=(0.5, 1 - 0.42 / height_in),
        ncol=min(len(names), 8),
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(
        f"{record.space} / {record.searcher} ({record.preset}, seed {record.seed}): softmax(alpha) per edge "
        "over epochs\n(red title: a skip connection leads, at twice the uniform weight or more)",
        y=1 - 0.08 / height_in,
        va="top",
        fontsize=10,
    )
    fig.supxlabel("epoch", fontsize=9)
    # fixed margins (tight_layout measures every tick label: seconds for dozens of panels); the top
    # 0.85 inch holds the title and the legend
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.5 / height_in, top=1 - 0.85 / height_in, hspace=0.45)
    return save_figure(fig, path)


NODE_GAP = 1.6  # horizontal distance between consecutive nodes of a cell drawing
ARC_RAD = 0.5  # arc bend; an arc over k gaps rises ARC_RAD / 2 * k * NODE_GAP


def draw_cell(ax: Axes, genotype: Genotype, cell: str, colors: dict[str, str]) -> None:
    """An arc diagram: inputs, intermediate nodes and the output on one line, left to right; each edge an
    arc labelled with its op at its apex (a node's incoming edges alternate above and below the line),
    concatenated nodes joined to the output by grey dashed arcs below."""
    edges = genotype.cell(cell)
    n_inputs = min(edge.dst for edge in edges)
    last = max(edge.dst for edge in edges)
    input_names = (
        ["c_{k-2}", "c_{k-1}"] if n_inputs == 2 else ["in"] if n_inputs == 1 else [f"in{i}" for i in range(n_inputs)]
    )
    spots: dict[int | str, tuple[float, float]] = {node: (NODE_GAP * node, 0.0) for node in range(last + 1)}
    spots["out"] = (NODE_GAP * (last + 1), 0.0)
    concat = set(genotype.concat_of(cell))
    for node, (x, y) in spots.items():
        text = "out" if node == "out" else input_names[node] if isinstance(node, int) and node < n_inputs else node
        fill = "#fff7bc" if node == "out" or node in concat else "#deebf7"
        ax.text(
            x,
            y,
            str(text),
            ha="center",
            va="center",
            fontsize=9,
            zorder=3,
            bbox={"boxstyle": "round", "fc": fill, "ec": "0.3"},
        )
    incoming: dict[int, int] = defaultdict(int)
    for edge in edges:
        side = -1 if incoming[edge.dst] % 2 == 0 else 1  # -1: above the line
        incoming[edge.dst] += 1
        _arc(ax, spots[edge.src], spots[edge.dst], side * ARC_RAD, colors.get(edge.op, "0.2"), edge.op)
    for node in sorted(concat & set(spots)):
        _arc(ax, spots[node], spots["out"], 0.3, "0.65", None)
    height = ARC_RAD / 2 * NODE_GAP * (last + 1) + 0.4
    ax.set(xlim=(-0.8, spots["out"][0] + 0.8), ylim=(-height, height), aspect="equal")
    ax.set_title(f"cell {cell!r} (yellow: nodes concatenated into the output)", fontsize=9)
    ax.axis("off")


def _arc(
    ax: Axes, start: tuple[float, float], end: tuple[float, float], rad: float, color: str, label: str | None
) -> None:
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        zorder=2,
        arrowprops={
            "arrowstyle": "-|>",
            "color": color,
            "lw": 1.6 if label else 0.8,
            "linestyle": "-" if label else "--",
            "connectionstyle": f"arc3,rad={rad}",
            "shrinkA": 11,
            "shrinkB": 11,
        },
    )
    if label:  # the arc's apex: the chord's midpoint moved by rad/2 times the chord's normal
        (x1, y1), (x2, y2) = start, end
        x, y = (x1 + x2) / 2 + rad / 2 * (y2 - y1), (y1 + y2) / 2 - rad / 2 * (x2 - x1)
        ax.text(
            x,
            y,
            label,
            fontsize=7,
            color=color,
            ha="center",
            va="center",
            zorder=4,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
        )


def plot_cells(record: RunRecord, ops: list[str], skip_ops: Sequence[str], path: Path) -> Path | None:
    genotype = _genotype(record)
    if genotype is None:
        return None
    names = genotype.cell_names
    fig, axes = plt.subplots(len(names), 1, figsize=(11, 4.2 * len(names)), squeeze=False)
    colors = op_colors(ops, skip_ops)
    for ax, cell in zip(axes[:, 0], names):
        draw_cell(ax, genotype, cell, colors)
    skips = sum(edge.op in skip_ops for edge in genotype.cell(names[0]))
    fig.suptitle(
        f"{record.space} / {record.searcher} ({record.preset}, seed {record.seed}): derived cells; "
        f"{skips} skip connection(s) in cell {names[0]!r}",
        fontsize=10,
    )
    fig.tight_layout()
    return save_figure(fig, path)


def save_figure(fig: Any, path: Path) -> Path:
    """Save and close ``fig``; a path that cannot be written becomes an error that names it."""
    try:
        with writing(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path
