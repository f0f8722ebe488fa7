"""From run records to table rows: load record files and folders, group by searcher x space x preset,
and summarise each group over its seeds (mean, sample std, bootstrap CI), beside the published rows."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nasbench.errors import UserError
from nasbench.metrics import stats
from nasbench.metrics.collapse import skip_count
from nasbench.published import PUBLISHED, PublishedRow
from nasbench.registry import SPACES
from nasbench.results import STATUSES, RunRecord

RECORD_NAME = "record.json"
EVAL = "eval"  # searcher name of evaluation records (nasbench eval), whose results are copied into search records
EIG_KEY = "hessian_eig"  # per-epoch dominant Hessian eigenvalue (collapse metrics)
SKIP_KEYS = ("skip_count", "skip_count_normal")  # skips in the derived primary cell (the older records' name)


@dataclass(frozen=True)
class Summary:
    """A quantity over seeds: mean, sample std (NaN for one seed), 95% bootstrap CI, number of seeds."""

    mean: float
    std: float
    ci_low: float
    ci_high: float
    n: int


def summarize(values: list[float | None]) -> Summary | None:
    present = [v for v in values if v is not None and math.isfinite(v)]
    if not present:
        return None
    array = np.asarray(present, dtype=float)  # [seeds]
    low, high = stats.bootstrap_ci(array)
    return Summary(
        float(stats.mean(array)[0]), float(stats.sample_std(array)[0]), float(low[0]), float(high[0]), len(present)
    )


@dataclass
class Row:
    """One line of a table: a measured group of seeds, or a published result."""

    space: str
    searcher: str
    label: str
    source: str  # "measured" or "published"
    preset: str | None = None
    score: Summary | None = None  # test error % (acc spaces) or perplexity (ppl spaces)
    score_from: str = ""  # "test", "search val" (no evaluation was run) or "published"
    true_test_acc: Summary | None = None  # nb201: ground-truth test accuracy %
    params_m: float | None = None
    cost_days: float | None = None  # search cost per run, device-days
    cost_unit: str = ""  # "GPU" or "CPU"
    peak_mem_mib: float | None = None  # largest over seeds
    skip_count: float | None = None  # mean over seeds, the returned genotype's primary cell
    final_eig: float | None = None  # mean over seeds, last epoch's dominant Hessian eigenvalue
    device: str = ""
    note: int | None = None  # footnote number (published rows)
    non_finite: int = 0  # seeds whose final score is NaN or infinite (left out of ``score``)


@dataclass
class Report:
    tables: dict[str, list[Row]]  # space -> rows
    metric: dict[str, str]  # space -> "acc" or "ppl"
    notes: list[str] = field(default_factory=list)  # numbered footnotes, [1] first
    left_out: Counter[str] = field(default_factory=Counter)  # status -> count, for runs not completed
    problems: list[str] = field(default_factory=list)  # unreadable files and empty folders
    evaluations: int = 0  # evaluation records seen; their results are read from the search records
    records: list[RunRecord] = field(default_factory=list)  # the completed records in the tables

    def footnotes(self) -> list[str]:
        lines = [f"[{i}] {text}" for i, text in enumerate(self.notes, start=1)]
        if any(r.score_from == "search val" for rows in self.tables.values() for r in rows):
            lines.append("val: no evaluation was run; the score is the supernet's on the search's own validation split")
        if self.left_out:
            kinds = ", ".join(f"{n} {status}" for status, n in sorted(self.left_out.items()))
            lines.append(f"{sum(self.left_out.values())} run(s) left out, not completed: {kinds}")
        if self.evaluations:
            lines.append(
                f"{self.evaluations} evaluation record(s) not listed on their own: nasbench eval copies "
                "test results into the search record it evaluated"
            )
        diverged = [r for rows in self.tables.values() for r in rows if r.non_finite]
        if diverged:
            groups = ", ".join(f"{r.space} {r.label} ({r.non_finite})" for r in diverged)
            lines.append(f"not finite: final scores that are NaN or infinite, left out of the mean: {groups}")
        lines.extend(f"skipped: {problem}" for problem in self.problems)
        return lines


def find_record_files(paths: list[str | Path]) -> tuple[list[Path], list[str]]:
    """Record files named directly, or found recursively (``record.json``) in folders; and the problems."""
    files: list[Path] = []
    problems: list[str] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.rglob(RECORD_NAME))
            if not found:
                problems.append(f"{path}: no {RECORD_NAME} anywhere under this folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"{path}: no such file or folder; pass run records or folders of runs (nasbench run --out)")
    return files, problems


def load_records(paths: list[str | Path]) -> tuple[list[RunRecord], list[str]]:
    """Every readable record; a damaged or foreign file becomes a problem line and does not stop the rest."""
    files, problems = find_record_files(paths)
    records = []
    for path in files:
        try:
            record = RunRecord.load(path)
        except UserError as exc:
            problems.append(str(exc))
            continue
        shape = _shape_problem(record)
        if shape:
            problems.append(f"{path}: {shape}")
        else:
            records.append(record)
    if not records:
        raise UserError("no run record could be read:\n  " + "\n  ".join(problems or ["(no input)"]))
    return records, problems


def _shape_problem(record: RunRecord) -> str | None:
    """What makes a record that loaded unusable for a table, or None."""
    if record.status not in STATUSES:
        return f"unknown status {record.status!r} (known: {', '.join(STATUSES)})"
    if not isinstance(record.metrics, dict) or not isinstance(record.provenance, dict):
        return "'metrics' and 'provenance' must be objects"
    if not isinstance(record.epochs, list) or not all(isinstance(e, dict) and "epoch" in e for e in record.epochs):
        return "'epochs' must be a list of objects, each with its 'epoch' number"
    numbers = ("search_device_hours", "peak_mem_mib", "val_acc", "val_ppl", "test_acc", "test_ppl")
    wrong = [k for k in numbers if k in record.metrics and not isinstance(record.metrics[k], (int, float))]
    return f"metrics {wrong} must be numbers" if wrong else None


def _lookup(record: RunRecord, key: str) -> Any:
    """A result by name: the record's metrics, an ``eval`` section of them, else the last epoch having it."""
    if key in record.metrics:
        return record.metrics[key]
    evaluation = record.metrics.get("eval")
    if isinstance(evaluation, dict) and key in evaluation:
        return evaluation[key]
    for epoch in reversed(record.epochs):
        if key in epoch:
            return epoch[key]
    return None


def metric_kind(record: RunRecord) -> str:
    if any(_lookup(record, key) is not None for key in ("val_ppl", "test_ppl")):
        return "ppl"
    return "acc"


def _score(record: RunRecord, kind: str) -> tuple[float | None, str]:
    if kind == "ppl":
        test, val = _lookup(record, "test_ppl"), _lookup(record, "val_ppl")
    else:
        test_acc, val_acc = _lookup(record, "test_acc"), _lookup(record, "val_acc")
        test = None if test_acc is None else 100.0 - test_acc
        val = None if val_acc is None else 100.0 - val_acc
    if test is not None:
        return float(test), "test"
    return (None, "") if val is None else (float(val), "search val")


def _skip_count(record: RunRecord) -> float | None:
    """Skips in the returned genotype's primary cell, counted as the space defines them."""
    if record.genotype is None:
        return None
    try:
        space = SPACES.get(record.space)()
        genotype = space.parse_genotype(record.genotype)
    except Exception:  # a space that is not installed, or a genotype it cannot read: the stored count
        return next((_lookup(record, key) for key in SKIP_KEYS if _lookup(record, key) is not None), None)
    return float(skip_count(genotype, space.skip_ops, space.primary_cell))


def _cost_unit(record: RunRecord) -> str:
    return "GPU" if str(record.provenance.get("device", "cpu")).startswith("cuda") else "CPU"


def _mean(values: list[Any]) -> float | None:
    summary = summarize([None if v is None else float(v) for v in values])
    return None if summary is None else summary.mean


def measured_row(records: list[RunRecord], kind: str) -> Row:
    """The row of one group (same space, searcher, preset and device kind), one record per seed."""
    first = records[0]
    scores = [_score(r, kind) for r in records]
    sources = {source for value, source in scores if value is not None}
    hours = [_lookup(r, "search_device_hours") for r in records]
    peaks = [v for v in (_lookup(r, "peak_mem_mib") for r in records) if v is not None]
    return Row(
        space=first.space,
        searcher=first.searcher,
        label=first.searcher,
        source="measured",
        preset=first.preset,
        # a group mixing evaluated and unevaluated seeds uses only its test scores
        score=summarize([v for v, s in scores if s == ("test" if "test" in sources else "search val")]),
        score_from="test" if "test" in sources else ("search val" if sources else ""),
        true_test_acc=summarize([_lookup(r, "true_test_acc") for r in records]),
        params_m=_mean([_lookup(r, "params_m") or _lookup(r, "eval_params_m") for r in records]),
        cost_days=_mean([None if h is None else h / 24.0 for h in hours]),
        cost_unit=_cost_unit(first),
        peak_mem_mib=max(peaks) if peaks else None,
        skip_count=_mean([_skip_count(r) for r in records]),
        final_eig=_mean([_lookup(r, EIG_KEY) for r in records]),
        device=", ".join(sorted({str(r.provenance.get("device_name", "?")) for r in records})),
        non_finite=sum(value is not None and not math.isfinite(value) for value, _ in scores),
    )


def published_row(pub: PublishedRow, note: int) -> Row:
    def fixed(mean: float | None, std: float | None) -> Summary | None:
        nan = float("nan")
        return None if mean is None else Summary(mean, nan if std is None else std, nan, nan, 0)

    return Row(
        space=pub.space,
        searcher=pub.searcher,
        label=pub.label,
        source="published",
        score=fixed(pub.score, pub.score_std),
        score_from="published" if pub.score is not None else "",
        true_test_acc=fixed(pub.true_test_acc, pub.true_test_acc_std),
        params_m=pub.params_m,
        cost_days=pub.search_gpu_days,
        cost_unit="GPU",
        device=pub.hardware,
        note=note,
    )


def build_report(paths: list[str | Path], published: tuple[PublishedRow, ...] | None = None) -> Report:
    """Load the records under ``paths`` and build one table per space that has a completed run."""
    records, problems = load_records(paths)
    published = PUBLISHED if published is None else published
    searches = [r for r in records if r.searcher != EVAL]
    completed = [r for r in searches if r.status == "completed"]
    left_out = Counter(r.status for r in searches if r.status != "completed")
    if not completed:
        kinds = [f"{n} {status}" for status, n in sorted(left_out.items())]
        kinds += [f"{len(records) - len(searches)} evaluation record(s)"] if len(searches) < len(records) else []
        raise UserError(
            f"no completed search run among the {len(records)} record(s) ({', '.join(kinds)}); nothing to tabulate"
        )
    groups: dict[tuple[str, str, str, str], list[RunRecord]] = defaultdict(list)
    for record in completed:
        groups[(record.space, record.searcher, record.preset, _cost_unit(record))].append(record)
    report = Report({}, {}, left_out=left_out, problems=problems, records=completed)
    report.evaluations = len(records) - len(searches)
    for space in sorted({key[0] for key in groups}):
        keys = sorted(key for key in groups if key[0] == space)
        report.metric[space] = metric_kind(groups[keys[0]][0])
        rows = [published_row(pub, _note(report, pub)) for pub in published if pub.space == space]
        rows += [measured_row(sorted(groups[key], key=lambda r: r.seed), report.metric[space]) for key in keys]
        order = list(dict.fromkeys(row.searcher for row in rows))  # published methods first, in paper order
        rows.sort(key=lambda row: (order.index(row.searcher), row.source != "published", row.preset or ""))
        report.tables[space] = rows
    return report


def _note(report: Report, pub: PublishedRow) -> int:
    text = f"{pub.paper}; {pub.hardware}; search cost {pub.cost_convention}"
    if text not in report.notes:
        report.notes.append(text)
    return report.notes.index(text) + 1
