"""The figure of ``nasbench compare``: each method's mean under one setting against its mean under the other,
with the range over its seeds on both axes and the diagonal where a method would keep its score; beside it
the methods' ranks under the two settings, where a ranking that does not depend on the setting is the
diagonal. Methods crowd where their scores are close, so the scores' panel labels each point with the
method's number only, and the ranks' panel, where points never share a place, gives number and name."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from nasbench.compare import SettingEffect  # noqa: E402
from nasbench.plot_cells import save_figure  # noqa: E402


def draw_comparison(ax: Any, effect: SettingEffect) -> None:
    """One point per method at (mean A, mean B), bars from its lowest to its highest seed on each side."""
    a = [np.asarray(m.a) for m in effect.methods]
    b = [np.asarray(m.b) for m in effect.methods]
    x, y = np.array([v.mean() for v in a]), np.array([v.mean() for v in b])
    xerr = np.array([[m - v.min() for m, v in zip(x, a)], [v.max() - m for m, v in zip(x, a)]])
    yerr = np.array([[m - v.min() for m, v in zip(y, b)], [v.max() - m for m, v in zip(y, b)]])
    ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", ms=4, lw=0.8, capsize=2, color="tab:blue", alpha=0.8)
    for number, (px, py) in enumerate(zip(x, y), start=1):
        ax.annotate(str(number), (px, py), xytext=(3, 3), textcoords="offset points", fontsize=7)
    every = np.concatenate([*a, *b])
    low, high = float(every.min()), float(every.max())
    pad = 0.05 * (high - low or 1.0)
    ax.plot([low - pad, high + pad], [low - pad, high + pad], ls="--", lw=0.8, color="grey", label="the same score")
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(low - pad, high + pad)
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8, frameon=False)


def draw_ranks(ax: Any, effect: SettingEffect) -> None:
    """One point per method at (rank A, rank B), 1 the best, labelled with the method's number and name."""
    x, y = np.asarray(effect.ranks("a")), np.asarray(effect.ranks("b"))
    ax.scatter(x, y, s=16, color="tab:blue")
    for number, (method, px, py) in enumerate(zip(effect.methods, x, y), start=1):
        ax.annotate(f"{number} {method.name}", (px, py), xytext=(3, 3), textcoords="offset points", fontsize=7)
    n = len(effect.methods)
    ax.plot([0.5, n + 0.5], [0.5, n + 0.5], ls="--", lw=0.8, color="grey")
    ax.set_xlim(n + 0.5, 0.5)  # the best at the top right
    ax.set_ylim(n + 0.5, 0.5)
    ax.set_aspect("equal")


def plot_comparison(effect: SettingEffect, a_name: str, b_name: str, path: Path) -> Path | None:
    """The figure of one space's comparison (None when no method is in both sets)."""
    if not effect.methods:
        return None
    fig, (scores, ranks) = plt.subplots(1, 2, figsize=(14, 7.2))
    draw_comparison(scores, effect)
    scores.set_xlabel(
        f"A: {a_name}\nmean {effect.metric} over seeds (bars: lowest to highest seed; numbers: the methods, right)",
        fontsize=8,
    )
    scores.set_ylabel(f"B: {b_name}\nmean {effect.metric} over seeds", fontsize=8)
    draw_ranks(ranks, effect)
    ranks.set_xlabel(f"rank in A (1: the best mean)\n{a_name}", fontsize=8)
    ranks.set_ylabel(f"rank in B\n{b_name}", fontsize=8)
    changed = "; ".join(f"{k.split('.', 1)[-1]} {va} -> {vb}" for k, va, vb in effect.changed) or "no setting"
    ranked = effect.rho is not None and not math.isnan(effect.rho)
    rho = f"; Spearman correlation of the means {effect.rho:+.2f}" if ranked else ""
    if ranked and effect.rho_interval is not None:
        rho += f", 95 % bootstrap interval [{effect.rho_interval[0]:+.2f}, {effect.rho_interval[1]:+.2f}]"
    fig.suptitle(f"{effect.space}: A -> B changes {changed}{rho}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
