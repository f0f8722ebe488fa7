"""Rendering only: a Report's rows as markdown (tabulate), LaTeX (booktabs) or CSV (pandas), through one
column spec, with ``--columns`` choosing which, and the pairwise comparison of methods where a space has
ground truth."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from nasbench.errors import UserError
from nasbench.metrics.stats import bootstrap_difference_ci
from nasbench.registry import SPACES
from nasbench.report import Report, Row, Summary

if TYPE_CHECKING:
    from nasbench.eval.trainer import EvalTask

FORMATS = ("md", "tex", "csv")
MISSING = "-"
DATASETS = {
    "true_test_acc": "CIFAR-10",
    "true_test_acc_cifar100": "CIFAR-100",
    "true_test_acc_imagenet16_120": "ImageNet16-120",
}


def _present(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def fmt_number(value: float | None, kind: str) -> str:
    """Sensible digits: percentages 2 decimals, perplexities 1 (3 significant digits past 10^4), days up to 4
    decimals (``<0.0001`` below), memory whole MiB, eigenvalues 3 significant digits."""
    if value is None or not math.isfinite(value):
        return MISSING
    if kind == "ppl":
        return f"{value:.1f}" if abs(value) < 1e4 else f"{value:.3g}"
    if kind == "days":
        if value == 0:
            return "0"
        return (
            "<0.0001" if abs(value) < 1e-4 else f"{value:.4f}".rstrip("0").rstrip(".") if value < 1 else f"{value:.2f}"
        )
    if kind == "mib":
        return f"{value:.0f}"
    if kind == "g":
        return f"{value:.3g}"
    return f"{value:.2f}"


def spread(summary: Summary | None, kind: str, pm: str) -> str:
    if summary is None:
        return MISSING
    text = fmt_number(summary.mean, kind)
    return text + (f" {pm} {fmt_number(summary.std, kind)}" if _present(summary.std) else "")


@dataclass(frozen=True)
class Column:
    name: str  # for --columns
    header: Callable[[str, str], str]  # (space, metric) -> header text
    cell: Callable[[Row, str, str], str]  # (row, metric, plus-minus sign) -> text
    shown: Callable[[list[Row]], bool]  # whether a table of these rows has anything in it
    numeric: bool = True


def _score_kind(metric: str) -> str:
    return "ppl" if metric == "ppl" else "pct"


def _test_cell(row: Row, metric: str, pm: str) -> str:
    text = spread(row.test_score, _score_kind(metric), pm)
    return text if row.eval_preset in (None, "paper") or row.test_score is None else f"{text} ({row.eval_preset} eval)"


def transfer_tasks(space: str) -> list[type[EvalTask]]:
    """The evaluations a space's cells are transferred to (every one but its own data set's)."""
    try:
        return list(SPACES.get(space)().transfer_tasks().values())
    except Exception:  # a space that is not installed here
        return []


def _transfer_header(space: str, metric: str) -> str:
    return "; ".join(task.table_header for task in transfer_tasks(space)) or "transfer"


def _transfer_cell(row: Row, metric: str, pm: str) -> str:
    """Per transfer data set of the space: its results (e.g. top-1 / top-5 error), the evaluation preset where
    it is not the paper's, and how many of the row's seeds' cells were evaluated where not all."""
    parts = []
    for task in transfer_tasks(row.space):
        score = row.transfer.get(task.dataset)
        if score is None or not all(k in score.values for k in task.table_keys):
            parts.append(MISSING)
            continue
        text = " / ".join(spread(score.values[k], task.score_kind, pm) for k in task.table_keys)
        notes = [f"{', '.join(score.presets)} eval"] if score.presets != ("paper",) else []
        if row.source == "measured" and score.n < row.seeds:
            notes.append(f"{score.n} of {row.seeds} seeds")
        parts.append(text + (f" ({'; '.join(notes)})" if notes else ""))
    return "; ".join(parts) or MISSING


def _skips_header(space: str) -> str:
    try:
        cell = str(SPACES.get(space).primary_cell)
    except Exception:  # a space that is not installed here
        cell = "primary"
    return "skips (cell)" if cell == "cell" else f"skips ({cell} cell)"


def _truth_column(key: str, name: str) -> Column:
    return Column(
        name,
        lambda space, metric: f"true test acc {DATASETS[key]} (%)",
        lambda row, metric, pm: spread(row.truth.get(key), "pct", pm),
        lambda rows: any(key in row.truth for row in rows),
    )


COLUMNS: tuple[Column, ...] = (
    Column("method", lambda s, m: "method", lambda r, m, pm: r.label + (f" [{r.note}]" if r.note else ""),
           lambda rows: True, numeric=False),
    Column("source", lambda s, m: "source", lambda r, m, pm: r.source, lambda rows: True, numeric=False),
    Column("preset", lambda s, m: "preset", lambda r, m, pm: r.preset or MISSING, lambda rows: True, numeric=False),
    Column("settings", lambda s, m: "settings", lambda r, m, pm: r.settings or MISSING,
           lambda rows: any(r.settings for r in rows), numeric=False),
    Column("seeds", lambda s, m: "seeds", lambda r, m, pm: str(r.seeds) if r.seeds else MISSING, lambda rows: True),
    Column("test", lambda s, m: "test perplexity" if m == "ppl" else "test error (%)", _test_cell,
           lambda rows: any(r.test_score for r in rows)),
    Column("val", lambda s, m: "search val perplexity" if m == "ppl" else "search val error (%)",
           lambda r, m, pm: spread(r.val_score, _score_kind(m), pm), lambda rows: any(r.val_score for r in rows)),
    _truth_column("true_test_acc", "true_acc"),
    Column("best_val_true_acc", lambda s, m: "true acc, best val epoch (%)",
           lambda r, m, pm: spread(r.best_val_truth, "pct", pm), lambda rows: any(r.best_val_truth for r in rows)),
    _truth_column("true_test_acc_cifar100", "true_acc_c100"),
    _truth_column("true_test_acc_imagenet16_120", "true_acc_in16"),
    Column("transfer", _transfer_header, _transfer_cell, lambda rows: any(r.transfer for r in rows)),
    Column("params", lambda s, m: "params (M)", lambda r, m, pm: fmt_number(r.params_m, "pct"),
           lambda rows: any(_present(r.params_m) for r in rows)),
    Column("cost", lambda s, m: "search cost (days)", lambda r, m, pm: _cost_cell(r),
           lambda rows: any(r.cost_days for r in rows)),
    Column("memory", lambda s, m: "peak mem (MiB)", lambda r, m, pm: fmt_number(r.peak_mem_mib, "mib"),
           lambda rows: any(_present(r.peak_mem_mib) for r in rows)),
    Column("skips", lambda s, m: _skips_header(s), lambda r, m, pm: spread(r.skip_count, "g", pm),
           lambda rows: any(r.skip_count for r in rows)),
    Column("eig", lambda s, m: "final Hessian eig", lambda r, m, pm: spread(r.final_eig, "g", pm),
           lambda rows: any(r.final_eig for r in rows)),
    Column("device", lambda s, m: "device", lambda r, m, pm: r.device or MISSING, lambda rows: True, numeric=False),
)  # fmt: skip
COLUMN_NAMES = tuple(c.name for c in COLUMNS)


def _cost_cell(row: Row) -> str:
    if row.cost_days is None:
        return MISSING
    return f"{fmt_number(row.cost_days.mean, 'days')} {row.cost_unit}"


def columns_for(rows: list[Row], chosen: Sequence[str] | None) -> list[Column]:
    if chosen:
        unknown = [c for c in chosen if c not in COLUMN_NAMES]
        if unknown:
            raise UserError(f"--columns {', '.join(unknown)}: choose from {', '.join(COLUMN_NAMES)}")
        return [c for c in COLUMNS if c.name in chosen]
    return [c for c in COLUMNS if c.shown(rows)]


def space_title(space: str, metric: str, rows: list[Row], pm: str = "±") -> str:
    kind = "perplexity" if metric == "ppl" else "error"
    text = f"{space}: mean {pm} sample std over the seeds of each row; {kind}s lower is better"
    if any(r.truth for r in rows):
        text += (
            "; true test acc: the benchmark's ground truth of the genotype each search returns (its last epoch, or "
            "DARTS-ES's choice), higher is better"
        )
    return text


# A percentile bootstrap over two seeds has three distinct resampled means a side: far too narrow to print.
MIN_SEEDS_PER_SIDE = 3


def comparison(rows: list[Row], key: str = "true_test_acc") -> list[tuple[str, str, float, float, float]]:
    """For each pair of measured rows with ``MIN_SEEDS_PER_SIDE`` or more seeds of ground truth: (row a, row b,
    mean(a) - mean(b), 95% bootstrap interval of that difference)."""
    measured = [r for r in rows if r.source == "measured" and key in r.truth and r.truth[key].n >= MIN_SEEDS_PER_SIDE]
    values = {
        id(r): [float(x[key]) for x in (rec.metrics for rec in r.records) if isinstance(x.get(key), (int, float))]
        for r in measured
    }
    names = distinct_names(rows)
    out = []
    for i, a in enumerate(measured):
        for b in measured[i + 1 :]:
            low, high = bootstrap_difference_ci(np.asarray(values[id(a)]), np.asarray(values[id(b)]))
            out.append((names[id(a)], names[id(b)], a.truth[key].mean - b.truth[key].mean, low, high))
    return sorted(out, key=lambda t: -abs(t[2]))


def row_name(row: Row) -> str:
    return row.label + (f" ({row.settings})" if row.settings else "")


def distinct_names(rows: Sequence[Row]) -> dict[int, str]:
    """``row_name`` of each row (by ``id``), with its device added where another row of the same source has the
    same name: measured rows of one method and settings that ran on different machines, which a table keeps
    apart. (A published row beside a measured one of the same method is told apart by its source.)"""
    names = [row_name(r) for r in rows]
    counts = Counter((r.source, name) for r, name in zip(rows, names, strict=True))
    return {
        id(r): f"{name} [{short_device(r.device)}]" if counts[r.source, name] > 1 and r.device else name
        for r, name in zip(rows, names, strict=True)
    }


def to_markdown(report: Report, chosen: Sequence[str] | None = None) -> str:
    parts = []
    for space, rows in report.tables.items():
        metric = report.metric[space]
        cols = columns_for(rows, chosen)
        cells = [[c.cell(r, metric, "±") for c in cols] for r in rows]
        table = tabulate(cells, [c.header(space, metric) for c in cols], tablefmt="github", disable_numparse=True)
        parts.append(f"## {space_title(space, metric, rows)}\n\n{table}\n")
        pairs = comparison(rows)
        if pairs:
            lines = [
                f"- {a} - {b}: {d:+.2f} [{lo:+.2f}, {hi:+.2f}]" + (" *" if lo > 0 or hi < 0 else "")
                for a, b, d, lo, hi in pairs
            ]
            parts.append(
                f"### {space}: differences of mean true test accuracy (CIFAR-10, percentage points), 95 % bootstrap "
                f"intervals over seeds, rows with {MIN_SEEDS_PER_SIDE} or more seeds (* the interval excludes 0; with"
                " few seeds a percentile bootstrap is too narrow, so read * as a hint)\n\n" + "\n".join(lines) + "\n"
            )
    notes = report.footnotes()
    if notes:
        parts.append("\n".join(f"- {line}" for line in notes) + "\n")
    return "\n".join(parts)


_TEX_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\^{}",
}  # fmt: skip
PM_MARK = "\x00"  # stands for the plus-minus sign until escaping is done
NOTE_MARK = re.compile(r" \[(\d+)\]$")


def tex_escape(text: str) -> str:
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in text)


def short_device(name: str) -> str:
    """A device name short enough for a table column: ``NVIDIA H200`` -> ``H200``, a CPU -> its model and threads."""
    name = re.sub(r"^NVIDIA ", "", name)
    cpu = re.match(r"CPU (?:AMD |Intel\(R\) )?(\S+)(?: .*)? \((\d+) threads?\)", name)
    return f"{cpu[1]} CPU, {cpu[2]} thr." if cpu else name


def _tex_cell(text: str) -> str:
    mark = NOTE_MARK.search(text)
    body = tex_escape(NOTE_MARK.sub("", text)).replace(PM_MARK, r"$\pm$")
    return body + (rf"\textsuperscript{{{mark[1]}}}" if mark else "")


def to_latex(report: Report, chosen: Sequence[str] | None = None) -> str:
    """One ``table`` per space: booktabs rules (``\\usepackage{booktabs}``), short device names, a label, and
    the published rows' footnotes under superscript marks."""
    parts = ["% generated by `python -m nasbench table`; needs \\usepackage{booktabs}"]
    for space, rows in report.tables.items():
        metric = report.metric[space]
        cols = columns_for(rows, chosen)
        body = []
        for row in rows:
            cells = [c.cell(row, metric, PM_MARK) for c in cols]
            cells = [short_device(text) if c.name == "device" else text for c, text in zip(cols, cells)]
            body.append(" & ".join(_tex_cell(text) for text in cells) + r" \\")
        used = sorted({r.note for r in rows if r.note})
        notes = r"\\".join(rf"\textsuperscript{{{n}}}{tex_escape(report.notes[n - 1])}" for n in used)
        parts += [
            r"\begin{table}[t]",
            r"\centering\scriptsize",
            rf"\caption{{{_tex_cell(space_title(space, metric, rows, PM_MARK))}}}",
            rf"\label{{tab:{space}}}",
            r"\begin{tabular}{" + "".join("r" if c.numeric else "l" for c in cols) + "}",
            r"\toprule",
            " & ".join(tex_escape(c.header(space, metric)) for c in cols) + r" \\",
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
            rf"\par\vspace{{2pt}}\tiny {notes}" if notes else "",
            r"\end{table}",
        ]
    return "\n".join(line for line in parts if line) + "\n"


def to_frame(report: Report) -> pd.DataFrame:
    """Every row of every table as numbers (NaN where missing), one line per row; ``metric`` says what each
    score column holds."""

    def part(summary: Summary | None, name: str) -> float:
        return float("nan") if summary is None else float(getattr(summary, name))

    lines = []
    for space, rows in report.tables.items():
        metric = report.metric[space]
        unit = "perplexity" if metric == "ppl" else "error (%)"
        for row in rows:
            line: dict[str, Any] = {
                "space": space, "method": row.label, "searcher": row.searcher, "source": row.source,
                "preset": row.preset, "settings": row.settings, "seeds": row.seeds or None,
                "metric": f"test {unit} (evaluated at the {row.eval_preset} preset); search val {unit}"
                if row.eval_preset else f"search val {unit}",
            }  # fmt: skip
            for prefix, summary in (("test", row.test_score), ("val", row.val_score)):
                for name in ("mean", "std", "ci_low", "ci_high"):
                    line[f"{prefix}_{name}"] = part(summary, name)
            for key in DATASETS:
                line[f"{key}_mean"], line[f"{key}_std"] = (
                    part(row.truth.get(key), "mean"),
                    part(row.truth.get(key), "std"),
                )
                line[f"{key}_ci_low"], line[f"{key}_ci_high"] = (
                    part(row.truth.get(key), "ci_low"),
                    part(row.truth.get(key), "ci_high"),
                )
            for dataset, score in row.transfer.items():
                for key, summary in score.values.items():
                    line[f"{dataset}_{key}_mean"], line[f"{dataset}_{key}_std"] = summary.mean, summary.std
                line[f"{dataset}_eval_preset"], line[f"{dataset}_evaluated"] = ", ".join(score.presets), score.n
            line.update(
                best_val_true_test_acc_mean=part(row.best_val_truth, "mean"), params_m=row.params_m,
                search_cost_days=part(row.cost_days, "mean"), cost_unit=row.cost_unit, peak_mem_mib=row.peak_mem_mib,
                skip_count=part(row.skip_count, "mean"), final_hessian_eig=part(row.final_eig, "mean"),
                device=row.device, reference=report.notes[row.note - 1] if row.note else "",
            )  # fmt: skip
            lines.append(line)
    frame = pd.DataFrame(lines)
    frame["seeds"] = frame["seeds"].astype("Int64")  # whole numbers, blank for published rows
    return frame


def to_csv(report: Report, chosen: Sequence[str] | None = None) -> str:
    return to_frame(report).to_csv(index=False)


def render(report: Report, fmt: str, columns: Sequence[str] | None = None) -> str:
    renderers = {"md": to_markdown, "tex": to_latex, "csv": to_csv}
    if fmt not in renderers:
        raise UserError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    return renderers[fmt](report, columns)
