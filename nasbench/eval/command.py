"""``python -m nasbench eval``: flags -> an EvalConfig and a genotype (from a run record or by name) -> trainer."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

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
from nasbench.runner import resolve_device
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


def _source(args: argparse.Namespace) -> tuple[str, str, str]:
    """(space name, genotype text, short name for the folder) from --record or --genotype."""
    if args.record:
        search = RunRecord.load(Path(args.record))
        if search.status != "completed" or not search.genotype:
            raise UserError(f"{args.record}: the search did not complete (status {search.status}); no genotype")
        if args.space and args.space != search.space:
            raise UserError(f"--space {args.space} disagrees with the record's space {search.space}")
        return search.space, search.genotype, Path(args.record).resolve().parent.name
    if not args.genotype:
        raise UserError("say what to evaluate: --record PATH/record.json or --genotype NAME (e.g. DARTS_V2)")
    space = args.space or infer_space(args.genotype)
    name = args.genotype if args.genotype in SPACES.get(space).published else "custom"
    return space, args.genotype, name


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


def cmd_eval(args: argparse.Namespace) -> int:
    device = resolve_device(args.device)
    preset = args.preset or ("paper" if device.type == "cuda" else "small")
    if args.resume:  # an evaluation folder named: everything else comes from its record
        run_dir = Path(args.resume)
        record = stored_evaluation(run_dir)
        space_name, name = record.space, run_dir.name
    else:
        space_name, genotype_text, name = _source(args)
    task_cls = _task(space_name)
    space = SPACES.get(space_name)()
    resume = args.resume is not None
    if resume:
        if not args.resume:
            what = f"evaluation of {name} on {space_name} (preset {preset}, seed {args.seed})"
            run_dir = find_resumable(Path(args.out) / space_name, f"{EVAL_KIND}-{name}-{preset}-seed{args.seed}", what)
            record = stored_evaluation(run_dir)
        cfg = task_cls.config_cls(**record.config["eval"])
        print(f"resuming {run_dir} with its stored configuration")
    else:
        cfg = resolve_eval_config(task_cls, preset, args.epochs, parse_set_flags(args.set))
        text = space.format_genotype(space.genotype(genotype_text))
        search = str(Path(args.record).resolve()) if args.record else None
        record = new_eval_record(space_name, cfg, text, search or genotype_text, search, preset, args.seed, device)
        run_dir = eval_run_dir(Path(args.out), space_name, name, preset, args.seed)
    genotype = space.genotype(record.genotype or "")
    print(f"nasbench eval: {record.config['source']} on {space_name}, preset {record.preset}, seed {record.seed}")

    def build() -> EvalTask:
        return task_cls(genotype, cfg, device, record.seed, args.data, args.download)

    try:
        with interrupt_on_signals():
            record = evaluate(record, build, cfg.epochs, run_dir, device, resume=resume, progress=show_progress(args))
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: python -m nasbench eval --resume {run_dir}", file=sys.stderr)
        return 130
    if record.status != "completed":
        print(f"evaluation {record.status}: {record.error}\nrecord: {run_dir / RECORD}", file=sys.stderr)
        return 1
    m, metric = record.metrics, task_cls.metric
    size = f"params {m['params_m']:.2f}M" + (f", {m['mult_adds_m']:.0f}M multiply-adds" if "mult_adds_m" in m else "")
    print(
        f"{metric} {m[metric]:.2f}; {size}; {m['eval_device_hours']:.4f} device-hours on "
        f"{record.provenance['device_name']}, peak memory {m['eval_peak_mem_mib']:.0f} MiB"
    )
    print(f"record: {run_dir / RECORD}")
    if record.config.get("search_record"):
        attach_to_search_record(Path(record.config["search_record"]), record, metric, run_dir)
        print(f"search record updated with {metric}: {record.config['search_record']}")
    return 0
