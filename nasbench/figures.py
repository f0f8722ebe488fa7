"""PNG plots of a Report (matplotlib, Agg backend).

Per space, curves over epochs with one line per table row (a method and its settings): the mean over the
row's seeds and a band from its lowest to its highest seed, so that every seed counts and the legend matches
the table. Where the epochs carry ground truth (NAS-Bench-201), the study figure: the true test accuracy of the
derived cell, the share of parameter-free ops and the dominant eigenvalue, side by side. Per run (every seed,
or the one asked for): softmax(alpha) per edge and the derived cells (``plot_cells``).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator, NullFormatter, ScalarFormatter  # noqa: E402

from nasbench.plot_cells import plot_alphas, plot_cells, save_figure, space_of  # noqa: E402
from nasbench.report import EIG_KEY, Report, Row  # noqa: E402
from nasbench.tables import distinct_names  # noqa: E402

DIVERGED = 1e12  # a curve value beyond this (e.g. a perplexity of exp(700)) is drawn as a gap
STYLES = ("-", "--", "-.", ":")
BAND = "line: mean over seeds; band: lowest to highest seed"


def drawable(values: Sequence[float]) -> list[float]:
    """``values`` with the diverged ones (not finite, or beyond ``DIVERGED`` in size) made NaN, which
    matplotlib draws as gaps; one such value would otherwise stretch a log axis past what it can draw."""
    return [v if math.isfinite(v) and abs(v) <= DIVERGED else math.nan for v in values]


def series(row: Row, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int] | None:
    """Epochs, the mean, lowest and highest value over the row's seeds of ``key`` (seeds that lack an epoch
    are left out there), and how many values diverged; None if no run of the row has the key."""
    by_epoch: dict[int, list[float]] = {}
    diverged = 0
    for record in row.records:
        for epoch in record.epochs:
            value = epoch.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                (shown,) = drawable([float(value)])
                diverged += math.isnan(shown)
                if not math.isnan(shown):
                    by_epoch.setdefault(int(epoch["epoch"]), []).append(shown)
    if not by_epoch:
        return None
    xs = np.array(sorted(by_epoch))
    means = np.array([np.mean(by_epoch[x]) for x in xs])
    lows, highs = np.array([min(by_epoch[x]) for x in xs]), np.array([max(by_epoch[x]) for x in xs])
    return xs, means, lows, highs, diverged


def draw_rows(ax: Any, rows: list[Row], key: str, ylabel: str) -> int:
    """A mean line and a band from the lowest to the highest seed per row on ``ax``; returns the number of
    diverged values."""
    diverged, drawn = 0, []
    names = distinct_names(rows)
    for i, row in enumerate(rows):
        found = series(row, key)
        if found is None:
            continue
        xs, mean, low, high, lost = found
        diverged += lost
        color, style = plt.get_cmap("tab10")(i % 10), STYLES[(i // 10) % len(STYLES)]
        seeds = row.seeds
        ax.plot(xs, mean, style, color=color, lw=1.6, label=legend_label(row, names[id(row)]))
        if seeds > 1:
            ax.fill_between(xs, low, high, color=color, alpha=0.12, lw=0)
        drawn.append(mean)
    if drawn and ("perplexity" in ylabel or key == EIG_KEY and _spans_decades(drawn)):
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ScalarFormatter())  # plain numbers, not powers of ten
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set(ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return diverged


def _spans_decades(curves: list[np.ndarray]) -> bool:
    values = np.concatenate(curves)
    positive = values[values > 0]
    return positive.size > 0 and positive.max() / positive.min() > 100


def plot_curves(rows: list[Row], key: str, ylabel: str, title: str, path: Path) -> Path | None:
    """``key`` per epoch: per row, the mean over its seeds and their range; None if no row has it."""
    measured = [r for r in rows if r.source == "measured" and series(r, key) is not None]
    if not measured:
        return None
    fig, ax = plt.subplots(figsize=(9, 4.2))
    diverged = draw_rows(ax, measured, key, ylabel)
    ax.set(
        xlabel="epoch"
        + (f"\n({diverged} diverged values, not finite or above {DIVERGED:.0e}: gaps)" if diverged else "")
    )
    ax.set_title(textwrap.fill(title, 80), fontsize=10)  # the axes, not the figure, set the width: wrap
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title=BAND, title_fontsize=7, frameon=False)
    fig.tight_layout()
    return save_figure(fig, path)


def legend_label(row: Row, name: str) -> str:
    """The row's ``name`` and seeds in at most 110 characters, wrapped at 55 (the table names long settings in
    full)."""
    seeds = f" ({row.seeds} seed{'s' if row.seeds != 1 else ''})"
    return textwrap.fill(textwrap.shorten(name, 110 - len(seeds), placeholder=" ...") + seeds, 55)


def plot_study(rows: list[Row], space: str, path: Path) -> Path | None:
    """The NAS-Bench-201 figure: true test accuracy of each epoch's derived cell, the share of parameter-free
    ops in it, and the dominant eigenvalue, per row (mean and band over seeds)."""
    measured = [r for r in rows if r.source == "measured" and series(r, "true_test_acc") is not None]
    if not measured:
        return None
    panels = [
        ("true_test_acc", "true test acc of the derived cell (%)"),
        ("param_free_share", "parameter-free share of the derived cell"),
        (EIG_KEY, "dominant Hessian eigenvalue"),
    ]
    names = distinct_names(measured)
    lines = max(legend_label(r, names[id(r)]).count("\n") + 1 for r in measured)
    legend_rows = math.ceil(len(measured) / 3) * lines
    height = 4.4 + 0.18 * legend_rows
    fig, axes = plt.subplots(1, 3, figsize=(16, height))
    for ax, (key, label) in zip(axes, panels):
        draw_rows(ax, measured, key, label)
        ax.set_xlabel("epoch")
        ax.set_title(label, fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    bottom = (0.35 + 0.18 * legend_rows) / height
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False, title=BAND, title_fontsize=8)
    fig.suptitle(f"{space}: the searches epoch by epoch (the eigenvalue where measured)", fontsize=11)
    fig.tight_layout(rect=(0, bottom, 1, 0.95))
    return save_figure(fig, path)


def save_plots(report: Report, out_dir: Path, seed: int | None = None) -> list[Path]:
    """Per space: the curves (and the study figure where there is ground truth); per run of every row (or
    only seed ``seed``): its alphas and cells. Plots whose data no record has are not drawn."""
    out_dir = Path(out_dir)
    written: list[Path | None] = []
    for space_name, rows in report.tables.items():
        space = space_of(space_name)
        ops = list(space.ops) if space is not None else []
        skip_ops = space.skip_ops if space is not None else ()
        ppl = report.metric[space_name] == "ppl"
        key, label = ("val_ppl", "search val perplexity") if ppl else ("val_acc", "search val accuracy (%)")
        what = "the supernet's, or the best sample's for random search, on the architecture split"
        written.append(
            plot_curves(rows, key, label, f"{space_name}: {label} ({what})", out_dir / f"{space_name}_{key}.png")
        )
        written.append(
            plot_curves(
                rows,
                EIG_KEY,
                "dominant Hessian eigenvalue",
                f"{space_name}: dominant eigenvalue of the Hessian w.r.t. alpha (rising: collapse)",
                out_dir / f"{space_name}_{EIG_KEY}.png",
            )  # fmt: skip
        )
        written.append(plot_study(rows, space_name, out_dir / f"{space_name}_study.png"))
        for row in (r for r in rows if r.source == "measured"):
            tag = f"_{row.settings}".replace(", ", "_").replace("=", "-") if row.settings else ""
            for record in row.records:
                if seed is not None and record.seed != seed:
                    continue
                stem = f"{space_name}_{row.searcher}{tag}_{row.preset}_seed{record.seed}"
                written.append(plot_alphas(record, ops, skip_ops, out_dir / f"{stem}_alphas.png"))
                written.append(plot_cells(record, ops, skip_ops, out_dir / f"{stem}_cells.png"))
    return [path for path in written if path is not None]
