"""Does the ranking of methods depend on a setting? Two sets of search records that differ in some settings
(a budget, a learning rate, a preset, a machine), matched method by method.

What the two sets differ in is read from the records: a setting is *changed* when both sets hold it and
no value of it is common to the two. A method of one set matches the method of the other with the same
searcher and the same value of every other setting that makes a table row (``--group-by``, as in
``nasbench table``); DARTS with and without early stopping are two methods on both sides. Per method the
result is the mean of a metric over its seeds on each side and the difference with a 95 % bootstrap
interval; over the methods, the Spearman correlation of their means with a bootstrap interval over seeds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from nasbench.errors import UserError
from nasbench.metrics import stats
from nasbench.report import (
    GROUP_FIELDS,
    as_number,
    cost_unit,
    deduplicate,
    flat_settings,
    load_records,
    lookup,
    method_label,
)
from nasbench.results import RunRecord
from nasbench.rundir import EVAL_KIND
from nasbench.tables import MIN_SEEDS_PER_SIDE

Identity = dict[str, Any]  # what makes a table row, as setting -> value ("preset", "device" and the settings)


@dataclass(frozen=True)
class MethodEffect:
    """One method under both settings: its metric over seeds on each side, and the difference b - a."""

    name: str
    a: tuple[float, ...]
    b: tuple[float, ...]
    interval: tuple[float, float] | None  # 95 % bootstrap interval of mean(b) - mean(a); None below the seeds

    @property
    def difference(self) -> float:
        return float(np.mean(self.b) - np.mean(self.a))


@dataclass
class SettingEffect:
    """One space's comparison of the two sets."""

    space: str
    metric: str
    changed: list[tuple[str, str, str]]  # setting, its values in a, in b
    methods: list[MethodEffect]
    only_a: list[str]
    only_b: list[str]
    rho: float | None = None  # Spearman correlation of the methods' means (3 or more methods)
    rho_interval: tuple[float, float] | None = None

    def ranks(self, side: str) -> list[float]:
        """Each method's rank by its mean on one side (1 the best; ties share the mean of their ranks)."""
        means = np.array([np.mean(getattr(m, side)) for m in self.methods])
        return list(stats.ranks(means if lower_is_better(self.metric) else -means))


def lower_is_better(metric: str) -> bool:
    return metric.endswith(("ppl", "loss"))


def compare(
    a_path: str | Path, b_path: str | Path, metric: str = "true_test_acc", group_by: Sequence[str] = GROUP_FIELDS
) -> list[SettingEffect]:
    """The comparison of the completed searches under ``a_path`` and ``b_path``, per space both hold."""
    unknown = sorted(set(group_by) - set(GROUP_FIELDS))
    if unknown:
        raise UserError(f"--group-by {', '.join(unknown)}: choose from {', '.join(GROUP_FIELDS)}")
    a, b = _searches(a_path), _searches(b_path)
    spaces = sorted({r.space for r in a} & {r.space for r in b})
    if not spaces:
        raise UserError(
            f"the two sets share no space: {a_path} has {', '.join(sorted({r.space for r in a}))}, "
            f"{b_path} has {', '.join(sorted({r.space for r in b}))}"
        )
    effects = [
        _compare_space([r for r in a if r.space == s], [r for r in b if r.space == s], metric, group_by) for s in spaces
    ]
    if not any(e.methods for e in effects):
        raise UserError(
            f"no method has {metric!r} in both sets: pass --metric with a result the records hold "
            "(true_test_acc on a space with ground truth, val_acc or val_ppl, test_acc after nasbench eval)"
        )
    return effects


def _searches(path: str | Path) -> list[RunRecord]:
    loaded, _ = load_records([path])
    completed = [(p, r) for p, r in loaded if r.searcher != EVAL_KIND and r.status == "completed"]
    if not completed:
        raise UserError(f"{path}: no completed search run among its {len(loaded)} record(s)")
    return deduplicate(completed)[0]


def identity(record: RunRecord, group_by: Sequence[str]) -> Identity:
    out: Identity = {}
    if "preset" in group_by:
        out["preset"] = record.preset
    if "device" in group_by:
        out["device"] = str(record.provenance.get("device_name") or cost_unit(record))
    if "settings" in group_by:
        out.update(flat_settings(record))
    return out


def changed_settings(a: Sequence[Identity], b: Sequence[Identity]) -> list[str]:
    """The settings both sides hold whose values on one side are never among the other's."""
    held = set.intersection(*({k for i in side for k in i} for side in (a, b)))
    return sorted(k for k in held if not {repr(i[k]) for i in a if k in i} & {repr(i[k]) for i in b if k in i})


def _compare_space(a: list[RunRecord], b: list[RunRecord], metric: str, group_by: Sequence[str]) -> SettingEffect:
    ids_a, ids_b = [identity(r, group_by) for r in a], [identity(r, group_by) for r in b]
    changed = changed_settings(ids_a, ids_b)

    def groups(records: list[RunRecord], ids: list[Identity]) -> dict[tuple[Any, ...], list[float]]:
        out: dict[tuple[Any, ...], list[float]] = defaultdict(list)
        for record, ident in sorted(zip(records, ids, strict=True), key=lambda pair: pair[0].seed):
            value = as_number(lookup(record, metric))
            kept = tuple(sorted(((k, v) for k, v in ident.items() if k not in changed), key=lambda kv: kv[0]))
            if value is not None and math.isfinite(value):
                out[(record.searcher, kept)].append(value)
        return out

    ga, gb = groups(a, ids_a), groups(b, ids_b)
    names = _names([*ga, *gb])
    methods = []
    for key in sorted(set(ga) & set(gb), key=lambda k: names[k]):
        enough = min(len(ga[key]), len(gb[key])) >= MIN_SEEDS_PER_SIDE
        interval = stats.bootstrap_difference_ci(gb[key], ga[key]) if enough else None
        methods.append(MethodEffect(names[key], tuple(ga[key]), tuple(gb[key]), interval))
    sign = 1.0 if lower_is_better(metric) else -1.0
    methods.sort(key=lambda m: sign * float(np.mean(m.a)))  # A's best first (ties: by name)
    effect = SettingEffect(
        space=a[0].space,
        metric=metric,
        changed=[(k, _values(ids_a, k), _values(ids_b, k)) for k in changed],
        methods=methods,
        only_a=sorted(names[k] for k in set(ga) - set(gb)),
        only_b=sorted(names[k] for k in set(gb) - set(ga)),
    )
    if len(methods) >= 3:
        means_a, means_b = ([float(np.mean(getattr(m, side))) for m in methods] for side in ("a", "b"))
        effect.rho = stats.spearman(means_a, means_b)
        effect.rho_interval = stats.bootstrap_spearman_ci([m.a for m in methods], [m.b for m in methods])
    return effect


def _names(keys: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], str]:
    """The method's label, with the settings it differs in from the same searcher's other keys."""
    by_searcher: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    for key in keys:
        by_searcher[key[0]].add(key)
    names = {}
    for searcher, same in by_searcher.items():
        settings = [dict(key[1]) for key in same]
        varying = sorted({k for s in settings for k in s if len({s2.get(k) for s2 in settings}) > 1})
        for key, s in zip(same, settings, strict=True):
            detail = ", ".join(f"{k.split('.', 1)[-1]}={s.get(k, '-')}" for k in varying)
            names[key] = method_label(searcher) + (f" ({detail})" if detail else "")
    return names


def _values(ids: Sequence[Identity], key: str) -> str:
    return ", ".join(sorted({str(i[key]) for i in ids if key in i}))


def to_markdown(effects: Sequence[SettingEffect], a_name: str, b_name: str) -> str:
    parts = [f"A: `{a_name}`; B: `{b_name}`\n"]
    for e in effects:
        changed = "; ".join(f"{k.split('.', 1)[-1]} {va} (A) -> {vb} (B)" for k, va, vb in e.changed)
        parts.append(f"## {e.space}: {e.metric}, mean ± sample std over seeds\n")
        parts.append(f"Changed: {changed}.\n" if changed else "The two sets hold the same settings.\n")
        rows = [
            [m.name, f"{len(m.a)} / {len(m.b)}", _spread(m.a), _spread(m.b), _difference(m), f"{ra:g}", f"{rb:g}"]
            for m, ra, rb in zip(e.methods, e.ranks("a"), e.ranks("b"), strict=True)
        ]
        header = ["method", "seeds A / B", "A", "B", "B - A [95 % CI]", "rank A", "rank B"]
        parts.append(tabulate(rows, header, tablefmt="github", disable_numparse=True) + "\n")
        if e.rho is not None and math.isnan(e.rho):
            parts.append("The methods' means are all tied on one side: there is no ranking to correlate.\n")
        elif e.rho is not None and e.rho_interval is not None:
            low, high = e.rho_interval
            parts.append(
                f"Spearman correlation of the {len(e.methods)} methods' means, A against B: {e.rho:+.2f}, 95 % "
                f"bootstrap interval over seeds [{low:+.2f}, {high:+.2f}].\n"
            )
        notes = [
            f"`*`: the interval excludes 0; intervals need {MIN_SEEDS_PER_SIDE} or more seeds a side, and with few "
            "seeds a percentile bootstrap is too narrow: read * as a hint"
        ]
        notes += [f"only in {side}: {', '.join(names)}" for side, names in (("A", e.only_a), ("B", e.only_b)) if names]
        parts.append("\n".join(f"- {n}" for n in notes) + "\n")
    return "\n".join(parts)


def _spread(values: Sequence[float]) -> str:
    std = stats.sample_std(np.asarray(values))[0]
    return f"{np.mean(values):.2f}" + ("" if math.isnan(std) else f" ± {std:.2f}")


def _difference(m: MethodEffect) -> str:
    if m.interval is None:
        return f"{m.difference:+.2f}"
    low, high = m.interval
    return f"{m.difference:+.2f} [{low:+.2f}, {high:+.2f}]" + (" *" if low > 0 or high < 0 else "")
