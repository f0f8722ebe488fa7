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
    add_training_flags(p, "evaluation")


def genotype_source(record_path: str | None, genotype: str | None, space: str | None) -> tuple[str, str, str]:
    """(space name, genotype text, short name for the folder) from a search's record or a genotype."""
    if record_path:
        search = RunRecord.load(Path(record_path))
        if search.status != "completed" or not search.genotype:
            raise UserError(f"{record_path}: the search did not complete (status {search.status}); no genotype")
        if space and space != search.space:
            raise UserError(f"--space {space} disagrees with the record's space {search.space}")
        return search.space, search.genotype, Path(record_path).resolve().parent.name
    if not genotype:
        raise UserError("say what to evaluate: --record PATH/record.json or --genotype NAME (e.g. DARTS_V2)")
    space = space or infer_space(genotype)
    name = genotype if genotype in SPACES.get(space).published else "custom"
    return space, genotype, name


def infer_space(genotype: str) -> str:
    """The one space with an evaluation that publishes ``genotype`` by that name, or can read it as text."""
    spaces = [SPACES.get(name)() for name in SPACES.names()]
    spaces = [s for s in spaces if s.eval_task() is not None]
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


def _task(space: str) -> type[EvalTask]:
    task = SPACES.get(space)().eval_task()
    if task is None:
        with_one = [name for name in SPACES.names() if SPACES.get(name)().eval_task() is not None]
        raise UserError(
            f"the {space} space has no evaluation from scratch (its genotypes are scored by their ground truth); "
            f"spaces with one: {', '.join(with_one)}"
        )
    return task


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
            attach_to_search_record(Path(record.config["search_record"]), record, self.task_cls.metric, self.run_dir)
        return record


def new_evaluation(
    record_path: str | None,
    genotype: str | None,
    space: str | None,
    preset: str,
    seed: int,
    epochs: int | None,
    set_pairs: dict[str, Any],
    device: torch.device,
    out: Path,
) -> Evaluation:
    space_name, genotype_text, name = genotype_source(record_path, genotype, space)
    task_cls = _task(space_name)
    space_obj = SPACES.get(space_name)()
    cfg = resolve_eval_config(task_cls, preset, epochs, set_pairs)
    text = space_obj.format_genotype(space_obj.genotype(genotype_text))
    search = str(Path(record_path).resolve()) if record_path else None
    record = new_eval_record(space_name, cfg, text, search or genotype_text, search, preset, seed, device)
    return Evaluation(task_cls, cfg, record, eval_run_dir(out, space_name, name, preset, seed), resume=False)


def stored_evaluation_of(run_dir: Path) -> Evaluation:
    record = stored_evaluation(run_dir)
    task_cls = _task(record.space)
    return Evaluation(task_cls, task_cls.config_cls(**record.config["eval"]), record, run_dir, resume=True)


def evaluate_genotype(
    source: Any,
    space: str | None,
    preset: str | None,
    seed: int,
    epochs: int | None,
    settings: dict[str, Any],
    device_name: str,
    data: str | None,
    out: Path,
    progress: bool,
) -> RunRecord:
    """The API's ``evaluate``: ``source`` a published name, genotype text, a record path or a ``RunRecord``."""
    device = resolve_device(device_name)
    preset = default_preset(preset, device)
    record_path = None
    if isinstance(source, RunRecord):
        raise UserError("pass the search's record.json path, so that its record can be updated with the result")
    if isinstance(source, Path) or str(source).endswith(".json"):
        record_path, source = str(source), None
    evaluation = new_evaluation(record_path, source, space, preset, seed, epochs, settings, device, out)
    return evaluation.run(device, data, download=False, progress=progress)


def cmd_eval(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    preset = default_preset(args.preset, device)
    if args.resume is not None:
        if args.resume:  # an evaluation folder named: everything else comes from its record
            run_dir = Path(args.resume)
        else:
            space_name, _, name = genotype_source(args.record, args.genotype, args.space)
            what = f"evaluation of {name} on {space_name} (preset {preset}, seed {args.seed})"
            run_dir = find_resumable(Path(args.out) / space_name, f"{EVAL_KIND}-{name}-{preset}-seed{args.seed}", what)
        evaluation = stored_evaluation_of(run_dir)
        print(f"resuming {run_dir} with its stored configuration")
    else:
        sets = parse_set_flags(args.set)
        evaluation = new_evaluation(
            args.record, args.genotype, args.space, preset, args.seed, args.epochs, sets, device, Path(args.out)
        )
    record, run_dir = evaluation.record, evaluation.run_dir
    print(f"nasbench eval: {record.config['source']} on {record.space}, preset {record.preset}, seed {record.seed}")
    try:
        with interrupt_on_signals():
            record = evaluation.run(device, args.data, args.download, show_progress(args))
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: python -m nasbench eval --resume {run_dir}", file=sys.stderr)
        return 130
    if record.status != "completed":
        print(f"evaluation {record.status}: {record.error}\nrecord: {run_dir / RECORD}", file=sys.stderr)
        return 1
    m, metric = record.metrics, evaluation.task_cls.metric
    size = f"params {m['params_m']:.2f}M" + (f", {m['mult_adds_m']:.0f}M multiply-adds" if "mult_adds_m" in m else "")
    print(
        f"{metric} {m[metric]:.2f}; {size}; {m['eval_device_hours']:.4f} device-hours on "
        f"{record.provenance['device_name']}, peak memory {m['eval_peak_mem_mib']:.0f} MiB"
    )
    print(f"record: {run_dir / RECORD}")
    if record.config.get("search_record"):
        print(f"search record updated with {metric}: {record.config['search_record']}")
    return 0
