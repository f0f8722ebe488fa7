"""``python -m nasbench eval``: flags -> an EvalConfig and a genotype (from a run record or by name) -> trainer."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nasbench.cli_flags import add_training_flags, show_progress
from nasbench.config import parse_set_flags
from nasbench.errors import UserError
from nasbench.eval.trainer import (
    EvalTask,
    attach_to_search_record,
    eval_run_dir,
    evaluate,
    new_eval_record,
    resolve_eval_config,
)
from nasbench.registry import SPACES
from nasbench.results import RunRecord
from nasbench.rundir import EVAL_KIND, RECORD, find_resumable
from nasbench.runner import default_preset, resolve_device
from nasbench.signals import interrupt_on_signals


def add_eval_parser(sub: Any) -> None:
    p = sub.add_parser("eval", help="train a found (or published) architecture from scratch and test it")
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--record", help="a search's record.json: evaluate its genotype; the record gains test_acc or test_ppl"
    )
    source.add_argument("--genotype", help="a published genotype by name (e.g. DARTS_V2) or genotype text")
    p.add_argument("--space", help="search space of --genotype (default: the one it fits; a record's own)")
    p.add_argument(
        "--dataset",
        help="train and test on this data set: the space's own (the default) or one its cells transfer to "
        "(nasbench list shows each space's; e.g. imagenet for cnn cells, wikitext2 for rnn cells)",
    )
    add_training_flags(p, "evaluation")


@dataclass(frozen=True)
class GenotypeSource:
    """What an evaluation trains: its space, genotype text, short name for the folder, and the method it
    comes from (the search's searcher, or the published genotype's name; "" for other text)."""

    space: str
    text: str
    name: str
    method: str


def genotype_source(
    record_path: str | None, genotype: str | None, space: str | None, dataset: str | None = None
) -> GenotypeSource:
    """The genotype of a search's record, or one given by name or as text (of a space evaluated on ``dataset``,
    where one is named)."""
    if record_path:
        search = RunRecord.load(Path(record_path))
        if search.status != "completed" or not search.genotype:
            raise UserError(f"{record_path}: the search did not complete (status {search.status}); no genotype")
        if space and space != search.space:
            raise UserError(f"--space {space} disagrees with the record's space {search.space}")
        return GenotypeSource(search.space, search.genotype, Path(record_path).resolve().parent.name, search.searcher)
    if not genotype:
        raise UserError("say what to evaluate: --record PATH/record.json or --genotype NAME (e.g. DARTS_V2)")
    space = space or infer_space(genotype, dataset)
    published = genotype in SPACES.get(space).published
    return GenotypeSource(space, genotype, genotype if published else "custom", genotype if published else "")


def infer_space(genotype: str, dataset: str | None) -> str:
    """The one space with an evaluation (on ``dataset``, where named) that publishes ``genotype`` by that name,
    or can read it as text."""
    spaces = [SPACES.get(name)() for name in SPACES.names()]
    known = sorted({d for s in spaces for d in s.eval_tasks()})
    if dataset is not None and dataset not in known:
        raise UserError(f"--dataset {dataset}: no space is evaluated on it; data sets: {', '.join(known)}")
    spaces = [s for s in spaces if s.eval_tasks() and (dataset is None or dataset in s.eval_tasks())]
    named = [s.name for s in spaces if genotype in s.published]
    problems = {}
    if not named:
        problems = {s.name: _parse_problem(s, genotype) for s in spaces}
        named = [name for name, problem in problems.items() if problem is None]
    if len(named) != 1:
        why = "; ".join(f"{name}: {problem}" for name, problem in problems.items() if problem)
        which = f"it fits {', '.join(named)}" if named else f"no space reads it ({why})"
        raise UserError(f"--genotype {genotype!r}: {which}; say which space with --space")
    return named[0]


def _parse_problem(space: Any, text: str) -> str | None:
    try:
        space.parse_genotype(text)
    except UserError as exc:
        return str(exc)
    return None


def stored_evaluation(run_dir: Path) -> RunRecord:
    record = RunRecord.load(run_dir / RECORD)
    if record.searcher != EVAL_KIND:
        raise UserError(
            f"{run_dir} holds a search, not an evaluation; continue it with nasbench run --resume {run_dir}"
        )
    return record


def eval_task(space: str, dataset: str | None) -> type[EvalTask]:
    """The evaluation of ``space``'s genotypes on ``dataset`` (None: the space's own data set)."""
    tasks = SPACES.get(space)().eval_tasks()
    if not tasks:
        with_one = [name for name in SPACES.names() if SPACES.get(name)().eval_tasks()]
        raise UserError(
            f"the {space} space has no evaluation from scratch (its genotypes are scored by their ground truth); "
            f"spaces with one: {', '.join(with_one)}"
        )
    if dataset is None:
        return next(iter(tasks.values()))
    if dataset not in tasks:
        raise UserError(f"--dataset {dataset}: {space} cells are evaluated on {', '.join(tasks)}")
    return tasks[dataset]


def is_transfer(task_cls: type[EvalTask]) -> bool:
    """Whether ``task_cls`` evaluates on another data set than its space's own (a transfer)."""
    return task_cls.dataset in SPACES.get(task_cls.space)().transfer_tasks()


def eval_preset(task_cls: type[EvalTask], preset: str | None, device: torch.device, method: str) -> str:
    """The preset asked for; else the protocol of the genotype's own method where its paper's differs (on a
    GPU), else the suite's default."""
    chosen = default_preset(preset, device)
    if preset is None and chosen == "paper":
        return task_cls.method_presets.get(method, chosen)
    return chosen


def folder_name(task_cls: type[EvalTask], name: str) -> str:
    """An evaluation folder's stem: the genotype's name, with the data set in front for a transfer."""
    return f"{task_cls.dataset}-{name}" if is_transfer(task_cls) else name


@dataclass
class Evaluation:
    """An evaluation ready to run: its protocol, configuration, record and folder."""

    task_cls: type[EvalTask]
    cfg: Any
    record: RunRecord
    run_dir: Path
    resume: bool

    def run(self, device: torch.device, data: str | None, download: bool, progress: bool) -> RunRecord:
        space = SPACES.get(self.record.space)()
        genotype = space.genotype(self.record.genotype or "")

        def build() -> EvalTask:
            return self.task_cls(genotype, self.cfg, device, self.record.seed, data, download)

        record = evaluate(
            self.record, build, self.cfg.epochs, self.run_dir, device, resume=self.resume, progress=progress
        )
        if record.status == "completed" and record.config.get("search_record"):
            task = self.task_cls
            transfer = task.dataset if is_transfer(task) else None
            attach_to_search_record(Path(record.config["search_record"]), record, task.metric, self.run_dir, transfer)
        return record


def new_evaluation(
    source: GenotypeSource,
    record_path: str | None,
    dataset: str | None,
    preset: str | None,
    seed: int,
    epochs: int | None,
    set_pairs: dict[str, Any],
    device: torch.device,
    out: Path,
) -> Evaluation:
    task_cls = eval_task(source.space, dataset)
    preset = eval_preset(task_cls, preset, device, source.method)
    space_obj = SPACES.get(source.space)()
    cfg = resolve_eval_config(task_cls, preset, epochs, set_pairs)
    text = space_obj.format_genotype(space_obj.genotype(source.text))
    search = str(Path(record_path).resolve()) if record_path else None
    record = new_eval_record(source.space, cfg, text, search or source.text, search, preset, seed, device)
    record.config["dataset"] = task_cls.dataset
    run_dir = eval_run_dir(out, source.space, folder_name(task_cls, source.name), preset, seed)
    return Evaluation(task_cls, cfg, record, run_dir, resume=False)


def stored_evaluation_of(run_dir: Path) -> Evaluation:
    record = stored_evaluation(run_dir)
    task_cls = eval_task(record.space, record.config.get("dataset"))  # older records: the space's own data set
    stored = {**getattr(task_cls.config_cls, "legacy_settings", {}), **record.config["eval"]}
    return Evaluation(task_cls, task_cls.config_cls(**stored), record, run_dir, resume=True)


def evaluate_genotype(
    source: Any,
    space: str | None,
    dataset: str | None,
    preset: str | None,
    seed: int,
    epochs: int | None,
    settings: dict[str, Any],
    device_name: str,
    data: str | None,
    out: Path,
    progress: bool,
) -> RunRecord:
    """The API's ``evaluate``: ``source`` a published name, genotype text or a search's record path."""
    device = resolve_device(device_name)
    record_path = None
    if isinstance(source, RunRecord):
        raise UserError("pass the search's record.json path, so that its record can be updated with the result")
    if isinstance(source, Path) or str(source).endswith(".json"):
        record_path, source = str(source), None
    what = genotype_source(record_path, source, space, dataset)
    evaluation = new_evaluation(what, record_path, dataset, preset, seed, epochs, settings, device, out)
    return evaluation.run(device, data, download=False, progress=progress)


def cmd_eval(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    if args.resume is not None:
        if args.resume:  # an evaluation folder named: everything else comes from its record
            run_dir = Path(args.resume)
        else:
            source = genotype_source(args.record, args.genotype, args.space, args.dataset)
            task_cls = eval_task(source.space, args.dataset)
            preset = eval_preset(task_cls, args.preset, device, source.method)
            what = f"evaluation of {source.name} on {task_cls.label} (preset {preset}, seed {args.seed})"
            stem = f"{EVAL_KIND}-{folder_name(task_cls, source.name)}-{preset}-seed{args.seed}"
            run_dir = find_resumable(Path(args.out) / source.space, stem, what)
        evaluation = stored_evaluation_of(run_dir)
        print(f"resuming {run_dir} with its stored configuration")
    else:
        sets = parse_set_flags(args.set)
        source = genotype_source(args.record, args.genotype, args.space, args.dataset)
        evaluation = new_evaluation(
            source, args.record, args.dataset, args.preset, args.seed, args.epochs, sets, device, Path(args.out)
        )
    record, run_dir, task_cls = evaluation.record, evaluation.run_dir, evaluation.task_cls
    print(
        f"nasbench eval: {record.config['source']} ({record.space}) on {task_cls.label}, preset {record.preset}, "
        f"seed {record.seed}"
    )
    try:
        with interrupt_on_signals():
            record = evaluation.run(device, args.data, args.download, show_progress(args))
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: python -m nasbench eval --resume {run_dir}", file=sys.stderr)
        return 130
    if record.status != "completed":
        print(f"evaluation {record.status}: {record.error}\nrecord: {run_dir / RECORD}", file=sys.stderr)
        return 1
    m, metric = record.metrics, task_cls.metric
    size = f"params {m['params_m']:.2f}M" + (f", {m['mult_adds_m']:.0f}M multiply-adds" if "mult_adds_m" in m else "")
    results = "; ".join(f"{key} {m[key]:.2f}" for key in dict.fromkeys((metric, *task_cls.table_keys)))
    print(
        f"{results}; {size}; {m['eval_device_hours']:.4f} device-hours on "
        f"{record.provenance['device_name']}, peak memory {m['eval_peak_mem_mib']:.0f} MiB"
    )
    print(f"record: {run_dir / RECORD}")
    search = record.config.get("search_record")
    if search and is_transfer(task_cls):
        print(f"search record gains its {task_cls.label} result (metrics.transfer.{task_cls.dataset}): {search}")
    elif search:
        print(f"search record updated with {metric}: {search}")
    return 0
