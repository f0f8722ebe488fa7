"""From run records to table rows.

Records are read from files and folders; a damaged or foreign one is named in a footnote and the rest go on.
A row is a set of completed search runs that ran the same thing: the same space, searcher and preset, the same
resolved settings (budget, optimisers, every ``--set``), on the same device, and evaluated (or not) under the
same evaluation preset. Every column of a row summarises exactly those runs, one run per seed: two records of
the same cell and seed (a rerun, a copied folder) count once, the newest completed one. Rows of one method that
differ in settings name the settings they differ in. ``group_by`` pools rows on purpose, with a footnote.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nasbench.errors import UserError
from nasbench.metrics import stats
from nasbench.metrics.collapse import skip_count
from nasbench.published import PUBLISHED, PublishedRow
from nasbench.registry import SEARCHERS, SPACES
from nasbench.results import STATUSES, RunRecord
from nasbench.rundir import EVAL_KIND, RECORD, RunFolder
from nasbench.runner import stopped_after

EIG_KEY = "hessian_eig"  # per-epoch dominant Hessian eigenvalue (collapse metrics)
SKIP_KEYS = ("skip_count", "skip_count_normal")  # skips in the derived primary cell (the older records' name)
TRUTH_KEYS = ("true_test_acc", "true_test_acc_cifar100", "true_test_acc_imagenet16_120")
GROUP_FIELDS = ("space", "searcher", "preset", "settings", "device", "evaluation")
NUMBER_METRICS = ("search_device_hours", "peak_mem_mib", "val_acc", "val_ppl", "test_acc", "test_ppl")


@dataclass(frozen=True)
class Summary:
    """A quantity over seeds: mean, sample std (NaN for one seed), 95% bootstrap CI (NaN for one seed), n."""

    mean: float
    std: float
    ci_low: float
    ci_high: float
    n: int


def summarize(values: Iterable[float | None]) -> Summary | None:
    present = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not present:
        return None
    array = np.asarray(present, dtype=float)  # [seeds]
    low, high = stats.bootstrap_ci(array) if len(present) > 1 else (np.array([math.nan]), np.array([math.nan]))
    return Summary(
        float(stats.mean(array)[0]), float(stats.sample_std(array)[0]), float(low[0]), float(high[0]), len(present)
    )


@dataclass(frozen=True)
class TransferScore:
    """A row's results on a data set its cells were transferred to (ImageNet, WikiText-2): each numeric result
    over the row's genotypes that were evaluated there, the evaluation presets, and how many genotypes."""

    values: dict[str, Summary]
    presets: tuple[str, ...]
    n: int


@dataclass
class Row:
    """One line of a table: a measured set of runs (one per seed), or a published result."""

    space: str
    searcher: str
    label: str  # the method as a paper names it
    source: str  # "measured" or "published"
    preset: str | None = None
    settings: str = ""  # the settings this row differs in from the method's other rows
    seeds: int = 0
    test_score: Summary | None = None  # test error % (acc spaces) or test perplexity (ppl spaces)
    eval_preset: str | None = None  # the evaluation's preset, when there was one
    val_score: Summary | None = None  # the search's own validation error % or perplexity
    truth: dict[str, Summary] = field(default_factory=dict)  # ground truth of the returned cells (nb201)
    transfer: dict[str, TransferScore] = field(default_factory=dict)  # data set -> its results
    best_val_truth: Summary | None = None  # ground truth of the cells the validation score ranks best
    params_m: float | None = None
    cost_days: Summary | None = None  # search cost per run, device-days
    cost_unit: str = ""  # "GPU" or "CPU"
    peak_mem_mib: float | None = None  # largest over the runs
    skip_count: Summary | None = None  # skips in the returned genotype's primary cell
    final_eig: Summary | None = None  # last measured dominant Hessian eigenvalue
    device: str = ""
    note: int | None = None  # footnote number (published rows)
    non_finite: int = 0  # runs whose final score is NaN or infinite (left out of the scores)
    records: list[RunRecord] = field(default_factory=list)


@dataclass
class Report:
    tables: dict[str, list[Row]]  # space -> rows
    metric: dict[str, str]  # space -> "acc" or "ppl"
    notes: list[str] = field(default_factory=list)  # numbered footnotes of the published rows, [1] first
    remarks: list[str] = field(default_factory=list)  # further footnotes (pooling, duplicates, left out, ...)
    problems: list[str] = field(default_factory=list)  # unreadable files and empty folders
    records: list[RunRecord] = field(default_factory=list)  # the runs in the tables

    def footnotes(self) -> list[str]:
        lines = [f"[{i}] {text}" for i, text in enumerate(self.notes, start=1)]
        return lines + self.remarks + [f"skipped: {problem}" for problem in self.problems]


def find_record_files(paths: Sequence[str | Path]) -> tuple[list[Path], list[str]]:
    """Record files named directly, or found recursively (``record.json``) in folders; and the problems."""
    files: list[Path] = []
    problems: list[str] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.rglob(RECORD))
            if not found:
                problems.append(f"{path}: no {RECORD} anywhere under this folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"{path}: no such file or folder; pass run records or folders of runs (nasbench run --out)")
    return files, problems


def load_records(paths: Sequence[str | Path]) -> tuple[list[tuple[Path, RunRecord]], list[str]]:
    """Every readable, well-formed record with its path; the others become problem lines."""
    files, problems = find_record_files(paths)
    records = []
    for path in files:
        try:
            record = RunRecord.load(path)
        except UserError as exc:
            problems.append(str(exc))
            continue
        shape = shape_problem(record)
        if shape:
            problems.append(f"{path}: {shape}")
        else:
            records.append((path, record))
    if not records:
        raise UserError("no run record could be read:\n  " + "\n  ".join(problems or ["(no input)"]))
    return records, problems


def shape_problem(record: RunRecord) -> str | None:
    """What makes a record that loaded unusable for a table, or None."""
    if record.status not in STATUSES:
        return f"unknown status {record.status!r} (known: {', '.join(STATUSES)})"
    if not all(isinstance(x, str) for x in (record.searcher, record.space, record.preset)):
        return "'searcher', 'space' and 'preset' must be text"
    if not isinstance(record.seed, int) or isinstance(record.seed, bool):
        return "'seed' must be a whole number"
    for name in ("metrics", "provenance", "config"):
        if not isinstance(getattr(record, name), dict):
            return f"'{name}' must be an object"
    if not isinstance(record.epochs, list) or not all(
        isinstance(e, dict) and _is_number(e.get("epoch")) for e in record.epochs
    ):
        return "'epochs' must be a list of objects, each with its 'epoch' number"
    weights_problem = _arch_weights_problem(record.epochs)
    if weights_problem:
        return weights_problem
    wrong = [k for k in NUMBER_METRICS if k in record.metrics and not _is_number(record.metrics[k])]
    if wrong:
        return f"metrics {wrong} must be numbers"
    bad_epochs = [
        e["epoch"] for e in record.epochs for k in ("val_acc", "val_ppl", EIG_KEY) if k in e and not _is_number(e[k])
    ]
    return f"epochs {sorted(set(map(str, bad_epochs)))} hold values that are not numbers" if bad_epochs else None


def _arch_weights_problem(epochs: list[dict[str, Any]]) -> str | None:
    """The architecture weights over epochs must be cell -> edges x ops numbers, the same shape every epoch,
    and a layout, where there is one, an object per cell."""
    shapes = set()
    for e in epochs:
        weights, layout = e.get("arch_weights"), e.get("arch_layout")
        if layout is not None and not (isinstance(layout, dict) and all(isinstance(v, dict) for v in layout.values())):
            return f"epoch {e['epoch']}: 'arch_layout' must be an object of cells, each an object"
        if not weights:
            continue
        if not isinstance(weights, dict) or not all(
            isinstance(rows, list) and rows and all(isinstance(r, list) and r and all(map(_is_number, r)) for r in rows)
            for rows in weights.values()
        ):
            return f"epoch {e['epoch']}: 'arch_weights' must map each cell to rows of numbers (edges x ops)"
        shapes.add(tuple((cell, len(rows), *map(len, rows)) for cell, rows in weights.items()))
    return "'arch_weights' change shape between epochs" if len(shapes) > 1 else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def lookup(record: RunRecord, key: str) -> Any:
    """A result by name: the record's metrics, else the last epoch having it."""
    if key in record.metrics:
        return record.metrics[key]
    for epoch in reversed(record.epochs):
        if key in epoch:
            return epoch[key]
    return None


def as_number(value: Any) -> float | None:
    """A numeric result as a float; None for anything else (missing, a string, a bool)."""
    return float(value) if _is_number(value) else None


def metric_kind(record: RunRecord) -> str:
    try:
        return str(SPACES.get(record.space).metric)
    except Exception:  # a space that is not installed here
        return "ppl" if any(lookup(record, k) is not None for k in ("val_ppl", "test_ppl")) else "acc"


def scores(record: RunRecord, kind: str) -> tuple[float | None, float | None]:
    """(test score, search validation score) in the table's unit: error % (acc) or perplexity (ppl)."""
    if kind == "ppl":
        return as_number(lookup(record, "test_ppl")), as_number(lookup(record, "val_ppl"))
    test, val = as_number(record.metrics.get("test_acc")), as_number(lookup(record, "val_acc"))
    return (None if test is None else 100.0 - test), (None if val is None else 100.0 - val)


def skips(record: RunRecord) -> float | None:
    """Skips in the returned genotype's primary cell, counted as the space defines them."""
    try:
        space = SPACES.get(record.space)()
        genotype = space.parse_genotype(record.genotype or "")
    except Exception:  # a space that is not installed, or a genotype it cannot read: the stored count
        return next((as_number(lookup(record, k)) for k in SKIP_KEYS if lookup(record, k) is not None), None)
    return float(skip_count(genotype, space.skip_ops, space.primary_cell))


def final_eigenvalue(record: RunRecord) -> float | None:
    measured = [e[EIG_KEY] for e in record.epochs if _is_number(e.get(EIG_KEY))]
    return float(measured[-1]) if measured else None


def flat_settings(record: RunRecord) -> dict[str, Any]:
    """``section.key`` -> value of the record's resolved configuration (train, space, searcher) and its data.
    A setting the record does not hold was added to the code after the run: it reads as its default, which
    is what the code did before the setting existed (a new setting's default keeps the old behaviour, or its
    config class names the old behaviour in ``legacy_settings``)."""
    out: dict[str, Any] = {"data": _hashable(record.config.get("data"))}
    defaults = setting_defaults(record.searcher, record.space)
    for section in ("train", "space_config", "searcher_config"):
        values = record.config.get(section, {})
        if isinstance(values, dict):
            values = {**defaults.get(section, {}), **values}
            out.update({f"{section.removesuffix('_config')}.{k}": _hashable(v) for k, v in values.items()})
    return out


@functools.cache
def setting_defaults(searcher: str, space: str) -> dict[str, dict[str, Any]]:
    """Per record section, the defaults of the installed code's settings ({} for what is not installed)."""
    from nasbench.config import TrainConfig

    classes: dict[str, Any] = {"train": TrainConfig}
    for section, registry, name in (("space_config", SPACES, space), ("searcher_config", SEARCHERS, searcher)):
        try:
            classes[section] = registry.get(name).config_cls
        except Exception:  # a searcher or space that is not installed here
            continue
    # every setting has a default; a setting whose default is not what the code did before it existed says so
    return {
        section: {**dataclasses.asdict(cls()), **getattr(cls, "legacy_settings", {})}
        for section, cls in classes.items()
    }


def _hashable(value: Any) -> Any:
    """Lists and objects as tuples, so that settings can key a group."""
    if isinstance(value, dict):
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    return tuple(map(_hashable, value)) if isinstance(value, list) else value


def cost_unit(record: RunRecord) -> str:
    return "GPU" if str(record.provenance.get("device", "cpu")).startswith("cuda") else "CPU"


def group_key(record: RunRecord, group_by: Sequence[str]) -> tuple[Any, ...]:
    values = {
        "space": record.space,
        "searcher": record.searcher,
        "preset": record.preset,
        "settings": tuple(sorted(flat_settings(record).items(), key=lambda kv: kv[0])),
        "device": (cost_unit(record), str(record.provenance.get("device_name", "?"))),
        "evaluation": record.metrics.get("eval_preset")
        if "test_acc" in record.metrics or "test_ppl" in record.metrics
        else None,
    }
    return tuple(values[name] for name in ("space", *[f for f in GROUP_FIELDS[1:] if f in group_by]))


def deduplicate(records: list[tuple[Path, RunRecord]]) -> tuple[list[RunRecord], int]:
    """One record per cell and seed (same space, searcher, preset, settings, device): the newest completed."""
    cells: dict[tuple[Any, ...], list[RunRecord]] = defaultdict(list)
    for _, record in records:
        key = (*group_key(record, GROUP_FIELDS[:-1]), record.seed)
        cells[key].append(record)
    kept = [max(group, key=lambda r: str(r.finished_at or r.started_at)) for group in cells.values()]
    return kept, sum(len(group) - 1 for group in cells.values())


def method_label(searcher: str) -> str:
    try:
        return str(getattr(SEARCHERS.get(searcher), "label", "") or searcher)
    except Exception:  # a searcher that is not installed here
        return searcher


def differing(rows: list[list[RunRecord]]) -> list[str]:
    """For each group of one method, the settings it differs in from the method's other groups."""
    settings = [flat_settings(group[0]) for group in rows]
    keys = sorted({k for s in settings for k in s if len({repr(t.get(k)) for t in settings}) > 1})
    return [", ".join(f"{k.split('.', 1)[-1]}={s.get(k)}" for k in keys) for s in settings]


TransferIndex = dict[tuple[str, str], dict[str, dict[str, Any]]]  # (space, genotype) -> data set -> results


def transfer_index(loaded: Sequence[tuple[Path, RunRecord]]) -> TransferIndex:
    """The completed evaluations on a data set the space's cells transfer to (``config["dataset"]``), by the
    genotype they trained: the newest per genotype and data set."""
    index: TransferIndex = defaultdict(dict)
    evaluations = [r for _, r in loaded if r.searcher == EVAL_KIND and r.status == "completed" and r.genotype]
    for record in sorted(evaluations, key=lambda r: str(r.finished_at or r.started_at)):
        dataset = record.config.get("dataset")
        if isinstance(dataset, str) and dataset in _transfer_datasets(record.space):
            key = (record.space, _canonical(record.space, record.genotype or ""))
            index[key][dataset] = {**record.metrics, "eval_preset": record.preset}
    return index


def _transfer_datasets(space: str) -> set[str]:
    try:
        return set(SPACES.get(space)().transfer_tasks())
    except Exception:  # a space that is not installed here: nothing to show its results with
        return set()


def _canonical(space: str, genotype: Any) -> str:
    """The genotype as its space writes it, so that two spellings of one cell match."""
    if not isinstance(genotype, str):  # a damaged record: matches nothing written by the suite
        return repr(genotype)
    try:
        obj = SPACES.get(space)()
        return str(obj.format_genotype(obj.parse_genotype(genotype)))
    except Exception:  # a space that is not installed, or text it cannot read: compared as written
        return genotype


def transfer_results(record: RunRecord, index: TransferIndex) -> dict[str, dict[str, Any]]:
    """Data set -> results of the search's genotype evaluated elsewhere: what ``nasbench eval --record`` added to
    the record, else an evaluation of the same genotype among the records read."""
    attached = record.metrics.get("transfer")
    found = dict(index.get((record.space, _canonical(record.space, record.genotype or "")), {}))
    return {**found, **(attached if isinstance(attached, dict) else {})}


def summarize_transfer(results: list[dict[str, Any]]) -> TransferScore:
    keys = [k for k in results[0] if all(_is_number(r.get(k)) for r in results)]
    presets = tuple(sorted({str(r.get("eval_preset", "?")) for r in results}))
    return TransferScore({k: s for k in keys if (s := summarize(r[k] for r in results))}, presets, len(results))


def measured_row(records: list[RunRecord], kind: str, settings: str, index: TransferIndex | None = None) -> Row:
    """The row of one group of runs, each column over all of them."""
    first = records[0]
    transfers: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        for dataset, results in transfer_results(record, index or {}).items():
            if isinstance(results, dict):
                transfers[dataset].append(results)
    pairs = [scores(r, kind) for r in records]
    hours = [as_number(lookup(r, "search_device_hours")) for r in records]
    peaks = [v for v in (as_number(lookup(r, "peak_mem_mib")) for r in records) if v is not None]
    params = [as_number(lookup(r, "eval_params_m")) or as_number(lookup(r, "params_m")) for r in records]
    devices = sorted({str(r.provenance.get("device_name", "?")) for r in records})
    return Row(
        space=first.space,
        searcher=first.searcher,
        label=method_label(first.searcher),
        source="measured",
        preset=first.preset,
        settings=settings,
        seeds=len(records),
        test_score=summarize(t for t, _ in pairs),
        eval_preset=first.metrics.get("eval_preset") if any(t is not None for t, _ in pairs) else None,
        val_score=summarize(v for _, v in pairs),
        truth={k: s for k in TRUTH_KEYS if (s := summarize(as_number(lookup(r, k)) for r in records)) is not None},
        transfer={dataset: summarize_transfer(results) for dataset, results in sorted(transfers.items())},
        best_val_truth=summarize(as_number(r.metrics.get("best_val_true_test_acc")) for r in records),
        params_m=s.mean if (s := summarize(params)) else None,
        cost_days=summarize(None if h is None else h / 24.0 for h in hours),
        cost_unit=cost_unit(first),
        peak_mem_mib=max(peaks) if peaks else None,
        skip_count=summarize(skips(r) for r in records),
        final_eig=summarize(final_eigenvalue(r) for r in records),
        device=" / ".join(devices),
        non_finite=sum(any(v is not None and not math.isfinite(v) for v in pair) for pair in pairs),
        records=records,
    )


def published_row(pub: PublishedRow, note: int) -> Row:
    def fixed(mean: float | None, std: float | None) -> Summary | None:
        nan = float("nan")
        return None if mean is None else Summary(mean, nan if std is None else std, nan, nan, 0)

    truth = {
        "true_test_acc": fixed(pub.true_test_acc, pub.true_test_acc_std),
        "true_test_acc_cifar100": fixed(pub.true_test_acc_cifar100, pub.true_test_acc_cifar100_std),
        "true_test_acc_imagenet16_120": fixed(pub.true_test_acc_imagenet16_120, pub.true_test_acc_imagenet16_120_std),
    }
    settings = ", ".join(f"{k.split('.', 1)[-1]}={v}" for k, v in pub.settings.items())
    transfer = {
        dataset: TransferScore(
            {k: Summary(v, math.nan, math.nan, math.nan, 0) for k, v in values.items()}, ("paper",), 0
        )
        for dataset, values in pub.transfer.items()
    }
    return Row(
        space=pub.space,
        searcher=pub.searcher,
        label=pub.label,
        source="published",
        settings=settings,
        test_score=fixed(pub.score, pub.score_std),
        eval_preset="paper" if pub.score is not None else None,
        truth={k: v for k, v in truth.items() if v is not None},
        transfer=transfer,
        params_m=pub.params_m,
        cost_days=fixed(pub.search_gpu_days, None),
        cost_unit="GPU",
        device=pub.hardware,
        note=note,
    )


def build_report(
    paths: Sequence[str | Path],
    published: Sequence[PublishedRow] | None = None,
    group_by: Sequence[str] = GROUP_FIELDS,
    at_epoch: int | None = None,
) -> Report:
    """Load the records under ``paths`` and build one table per space that has a completed search run."""
    loaded, problems = load_records(paths)
    return report_of(loaded, problems, published, group_by, at_epoch)


def report_of(
    loaded: Sequence[tuple[Path, RunRecord]],
    problems: list[str],
    published: Sequence[PublishedRow] | None = None,
    group_by: Sequence[str] = GROUP_FIELDS,
    at_epoch: int | None = None,
) -> Report:
    """The tables of records already read (each with the path of its file); with ``at_epoch``, of the searches
    as if each had stopped after that epoch (``runner.stopped_after``)."""
    unknown = sorted(set(group_by) - set(GROUP_FIELDS))
    if unknown:
        raise UserError(f"--group-by {', '.join(unknown)}: choose from {', '.join(GROUP_FIELDS)}")
    searches = [(p, r) for p, r in loaded if r.searcher != EVAL_KIND]
    completed = [(p, r) for p, r in searches if r.status == "completed"]
    report = Report({}, {}, problems=problems)
    left_out = Counter(
        "stale (its process is gone)" if RunFolder(p.parent).is_stale(r) else r.status
        for p, r in searches
        if r.status != "completed"
    )
    if not completed:
        kinds = [f"{n} {status}" for status, n in sorted(left_out.items())]
        if len(searches) < len(loaded):
            kinds.append(f"{len(loaded) - len(searches)} evaluation record(s)")
        raise UserError(
            f"no completed search run among the {len(loaded)} record(s) ({', '.join(kinds)}); nothing to tabulate"
        )
    if at_epoch is not None:
        completed = _stopped_after(completed, at_epoch, report.problems)
    records, duplicates = deduplicate(completed)
    report.records = records
    index = transfer_index(loaded)
    groups: dict[tuple[Any, ...], list[RunRecord]] = defaultdict(list)
    for record in records:
        groups[group_key(record, group_by)].append(record)
    published = PUBLISHED if published is None else published
    for space in sorted({r.space for r in records}):
        keys = sorted((k for k in groups if k[0] == space), key=repr)
        kind = metric_kind(groups[keys[0]][0])
        report.metric[space] = kind
        by_method: dict[str, list[list[RunRecord]]] = defaultdict(list)
        for key in keys:
            by_method[groups[key][0].searcher].append(sorted(groups[key], key=lambda r: r.seed))
        rows = [published_row(pub, _note(report, pub)) for pub in published if pub.space == space]
        for method_groups in by_method.values():
            rows += [measured_row(g, kind, s, index) for g, s in zip(method_groups, differing(method_groups))]
        order = list(dict.fromkeys(row.searcher for row in rows))  # published methods first, in paper order
        rows.sort(
            key=lambda row: (order.index(row.searcher), row.source != "published", row.preset or "", row.settings)
        )
        report.tables[space] = rows
    _remarks(report, group_by, duplicates, left_out, len(loaded) - len(searches))
    if at_epoch is not None:
        ended = sum("stopped_after_epoch" not in r.metrics for r in records)
        report.remarks.insert(0, _truncation_remark(at_epoch, ended))
    return report


def _stopped_after(
    records: list[tuple[Path, RunRecord]], epoch: int, problems: list[str]
) -> list[tuple[Path, RunRecord]]:
    """``runner.stopped_after`` of each record; one that cannot be read so is named in ``problems``."""
    if epoch < 1:
        raise UserError(f"--at-epoch {epoch}: a search stops after epoch 1 at the earliest")
    out, unreadable = [], []
    for path, record in records:
        try:
            out.append((path, stopped_after(record, epoch, metric_kind(record))))
        except UserError as err:
            unreadable.append(f"{path}: {err}")
    if not out:
        raise UserError(f"--at-epoch {epoch}: no completed run can be read so ({'; '.join(unreadable)})")
    problems.extend(unreadable)
    return out


def _truncation_remark(epoch: int, ended: int) -> str:
    return (
        f"--at-epoch {epoch}: every search read as if it had stopped after epoch {epoch}, with the cell derived "
        f"then (its learning-rate schedules still those of the whole run); {ended} run(s) had ended by then and "
        "read as they ended; evaluation results are left out; published rows are the papers' full budgets"
    )


def _remarks(
    report: Report, group_by: Sequence[str], duplicates: int, left_out: Counter[str], evaluations: int
) -> None:
    pooled = [f for f in GROUP_FIELDS[1:] if f not in group_by]
    if pooled:
        report.remarks.append(f"pooled on purpose (--group-by): rows may mix runs of different {', '.join(pooled)}")
    if duplicates:
        report.remarks.append(
            f"{duplicates} record(s) repeated a seed of the same cell; the newest completed one counts"
        )
    if left_out:
        kinds = ", ".join(f"{n} {status}" for status, n in sorted(left_out.items()))
        report.remarks.append(f"{sum(left_out.values())} run(s) left out, not completed: {kinds}")
    if evaluations:
        report.remarks.append(
            f"{evaluations} evaluation record(s) not listed on their own: nasbench eval copies test results into "
            "the search record it evaluated"
        )
    diverged = [r for rows in report.tables.values() for r in rows if r.non_finite]
    if diverged:
        groups = ", ".join(f"{r.space} {r.searcher} ({r.non_finite})" for r in diverged)
        report.remarks.append(
            f"not finite: runs whose final scores are NaN or infinite, left out of the scores: {groups}"
        )


def _note(report: Report, pub: PublishedRow) -> int:
    text = f"{pub.paper}; {pub.hardware}; search cost {pub.cost_convention}; checked: {pub.checked or 'the paper'}"
    if text not in report.notes:
        report.notes.append(text)
    return report.notes.index(text) + 1
