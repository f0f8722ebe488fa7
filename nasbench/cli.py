"""Command line: ``python -m nasbench run|table|compare|...``; flags become a RunConfig, the runner does the rest."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from nasbench import __version__
from nasbench.cli_flags import add_threads_flag, add_training_flags, apply_threads, show_progress
from nasbench.config import RunConfig, config_differences, config_from_dict, parse_set_flags, resolve_config
from nasbench.derive import RULES
from nasbench.errors import UserError
from nasbench.eval.command import add_eval_parser, cmd_eval
from nasbench.listing import cmd_list
from nasbench.loggers import LOGGERS
from nasbench.registry import SEARCHERS, SPACES
from nasbench.report import GROUP_FIELDS
from nasbench.results import RunRecord
from nasbench.rundir import (
    EVAL_KIND,
    RECORD,
    atomic_write_text,
    create_unique_dir,
    find_resumable,
    timestamped_name,
    writing,
)
from nasbench.runner import default_preset, resolve_device, run
from nasbench.signals import interrupt_on_signals
from nasbench.sweep.command import add_sweep_parser, cmd_sweep
from nasbench.tables import COLUMN_NAMES


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nasbench", description="Benchmark suite for neural architecture search.")
    parser.add_argument("--version", action="version", version=f"nasbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="search an architecture and write a run record")
    p.add_argument("--searcher", required=True, help="searcher name (see `nasbench list`)")
    p.add_argument("--space", required=True, help="search space name (see `nasbench list`)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved configuration and exit")
    p.add_argument(
        "--log", nargs="+", default=[], choices=LOGGERS, help="also log each epoch live (extras: tensorboard, wandb)"
    )
    add_training_flags(p, "search")

    d = sub.add_parser("derive", help="a finished search's genotype by DARTS-PT's projection, in a new folder")
    d.add_argument("run_dir", metavar="RUN_DIR", help="the folder of a completed supernet search")
    d.add_argument("--rule", required=True, choices=RULES, help="pt: DARTS-PT's perturbation-based projection")
    d.add_argument("--out", help="folder for the derivation (default: RUN_DIR-derive-RULE beside it)")
    d.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="e.g. pt_interval=2")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    add_threads_flag(d)

    sub.add_parser("list", help="the registered searchers and spaces, their settings, presets and genotypes")
    add_eval_parser(sub)
    add_sweep_parser(sub)

    t = sub.add_parser("table", help="paper-style comparison tables (and plots) from run records")
    t.add_argument("runs", nargs="+", metavar="RUNS", help="record.json files or folders searched for them")
    t.add_argument("--format", default="md", choices=["md", "tex", "csv"], help="output format (default: md)")
    t.add_argument("--out", help="write the table to this file (default: print it)")
    t.add_argument("--columns", help=f"comma-separated columns to show, of: {', '.join(COLUMN_NAMES)}")
    add_group_by(t, "what makes a row")
    t.add_argument(
        "--at-epoch",
        type=int,
        metavar="N",
        help="read every search as if it had stopped after epoch N: the cell derived then, its cost (another budget)",
    )
    t.add_argument("--plots", metavar="DIR", help="also save PNG plots (curves over seeds, alphas, cells) here")
    t.add_argument(
        "--plot-seed", type=int, help="draw the alpha and cell plots of this seed only (default: every seed)"
    )
    c = sub.add_parser("compare", help="does the ranking of methods depend on a setting? two sets of records")
    c.add_argument("a", metavar="A", help="the first set: a folder of runs (or one record.json)")
    c.add_argument("b", metavar="B", help="the second set, which differs from A in some setting")
    c.add_argument(
        "--metric", default="true_test_acc", help="the result compared (default: true_test_acc, the ground truth)"
    )
    add_group_by(c, "what makes a method, as in `table`")
    c.add_argument("--out", help="write the comparison to this markdown file (default: print it)")
    c.add_argument(
        "--plots", metavar="DIR", help="also save a PNG per space here: the methods' means and ranks, B against A"
    )
    return parser


def add_group_by(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--group-by",
        default=GROUP_FIELDS,
        type=lambda text: [g.strip() for g in text.split(",") if g.strip()],
        help=f"{what} (default: all of {','.join(GROUP_FIELDS)}); leave some out to pool",
    )


def cmd_run(args: argparse.Namespace) -> int:
    searcher_cls = SEARCHERS.get(args.searcher)
    space = SPACES.get(args.space)()
    device = resolve_device(args.device)
    preset = default_preset(args.preset, device)
    train_flags = {"epochs": args.epochs} if args.epochs is not None else {}
    asked = resolve_config(
        searcher_cls,
        space,
        searcher=args.searcher,
        preset=preset,
        seed=args.seed,
        device=args.device,
        data=args.data,
        train_flags=train_flags,
        set_pairs=parse_set_flags(args.set),
    )
    if args.dry_run:
        print(json.dumps(asked.to_dict(), indent=1))
        return 0
    if args.resume is not None:
        stem = f"{args.searcher}-{preset}-seed{args.seed}"
        what = f"{args.searcher}/{args.space} run (preset {preset}, seed {args.seed})"
        run_dir = Path(args.resume) if args.resume else find_resumable(Path(args.out) / args.space, stem, what)
        cfg = stored_config(run_dir, args.searcher, searcher_cls, space)
        if args.set or args.epochs is not None:
            refuse_changes(cfg, asked, run_dir)
        print(f"resuming {run_dir} with its stored configuration")
    else:
        cfg = asked
        run_dir = create_unique_dir(
            Path(args.out) / cfg.space, timestamped_name(cfg.searcher, cfg.preset, f"seed{cfg.seed}")
        )
    print(f"nasbench run: {cfg.searcher} on {cfg.space}, preset {cfg.preset}, seed {cfg.seed}, device {device}")
    started = time.perf_counter()
    try:
        with interrupt_on_signals():
            record = run(
                cfg,
                run_dir,
                resume=args.resume is not None,
                download=args.download,
                progress=show_progress(args),
                log_to=args.log,
            )
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; {run_dir}/record.json says so and the checkpoint holds the last complete epoch.\n"
            f"continue with: python -m nasbench run --searcher {cfg.searcher} --space {cfg.space} "
            f"--resume {run_dir}",
            file=sys.stderr,
        )
        return 130
    record_path = run_dir / RECORD
    if record.status != "completed":
        print(f"run {record.status}: {record.error}\nrecord: {record_path}", file=sys.stderr)
        return 1
    print_summary(record, record_path, time.perf_counter() - started)
    if cfg.preset != "paper":
        fetch = " --download" if space.dataset == "cifar10" else ""
        print(
            "the paper's full protocol (GPU, full data set): python -m nasbench run "
            f"--searcher {cfg.searcher} --space {cfg.space} --preset paper --device cuda --data PATH{fetch}"
        )
    return 0


def cmd_derive(args: argparse.Namespace) -> int:
    from nasbench.derive import derived_folder, rederive

    out = Path(args.out) if args.out else derived_folder(Path(args.run_dir), args.rule)
    started = time.perf_counter()
    try:
        with interrupt_on_signals():
            record = rederive(Path(args.run_dir), args.rule, parse_set_flags(args.set), out, show_progress(args))
    except KeyboardInterrupt:
        print(f"\ninterrupted; run the same command again to continue the derivation in {out}", file=sys.stderr)
        return 130
    if record.status != "completed":
        print(f"derivation {record.status}: {record.error}\nrecord: {out / RECORD}", file=sys.stderr)
        return 1
    print_summary(record, out / RECORD, time.perf_counter() - started)
    return 0


def stored_config(run_dir: Path, searcher: str, searcher_cls: Any, space: Any) -> RunConfig:
    """The configuration a run folder's record holds, with a clear error for a folder of another kind."""
    record = RunRecord.load(run_dir / RECORD)
    if record.searcher == EVAL_KIND:
        raise UserError(
            f"{run_dir} holds an evaluation, not a search; continue it with nasbench eval --resume {run_dir}"
        )
    if (record.searcher, record.space) != (searcher, space.name):
        raise UserError(f"{run_dir} holds a {record.searcher} search on {record.space}, not {searcher} on {space.name}")
    return config_from_dict(record.config, searcher_cls, space)


def refuse_changes(stored: RunConfig, asked: RunConfig, run_dir: Path) -> None:
    """--set or --epochs with --resume must agree with the stored run: a resumed run is the same run."""
    changed = config_differences(stored, asked)
    if changed:
        raise UserError(
            f"--resume {run_dir}: the stored run has " + "; ".join(changed) + ". A resumed run keeps its "
            "configuration: leave out --set/--epochs, or start a new run"
        )


def print_summary(record: RunRecord, record_path: Path, wall_seconds: float) -> None:
    metric = {k: v for k, v in record.metrics.items() if k in ("val_acc", "val_ppl")}
    print(f"\nderived genotype:\n  {record.genotype}")
    print(
        f"search cost: {record.metrics['search_device_hours']:.4f} device-hours on {record.provenance['device_name']}, "
        f"peak memory {record.metrics['peak_mem_mib']:.0f} MiB; " + ", ".join(f"{k} {v:.2f}" for k, v in metric.items())
    )
    truth = {k: v for k, v in record.metrics.items() if k.startswith("true_")}
    if truth:
        print("ground truth of the derived cell: " + ", ".join(f"{k} {v:.2f}" for k, v in truth.items()))
    hessian = record.metrics.get("hessian_device_hours", 0.0)
    print(f"wall time {wall_seconds / 60:.1f} min (of which the suite's eigenvalue measurement {hessian * 60:.1f} min)")
    print(f"record: {record_path}")


def cmd_table(args: argparse.Namespace) -> int:
    from nasbench.report import build_report
    from nasbench.tables import render

    refuse_out_folder(args.out, "the table")
    refuse_plots_file(args.plots)
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    report = build_report(args.runs, group_by=args.group_by, at_epoch=args.at_epoch)
    emit(render(report, args.format, columns), args.out, f"table of {len(report.records)} completed run(s)")
    if args.format == "csv" and report.footnotes():
        print("\n".join(report.footnotes()), file=sys.stderr)  # CSV has no room for footnotes
    if args.plots:
        from nasbench.figures import save_plots  # matplotlib only when plots are asked for

        written = save_plots(report, Path(args.plots), seed=args.plot_seed)
        print(f"{len(written)} plot(s) written to {args.plots}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from nasbench.compare import compare, to_markdown

    refuse_out_folder(args.out, "the comparison")
    refuse_plots_file(args.plots)
    effects = compare(args.a, args.b, args.metric, args.group_by)
    emit(to_markdown(effects, args.a, args.b), args.out, "comparison")
    if args.plots:
        from nasbench.compare_figure import plot_comparison  # matplotlib only when plots are asked for

        paths = [plot_comparison(e, args.a, args.b, Path(args.plots) / f"{e.space}_compare.png") for e in effects]
        print(f"{sum(p is not None for p in paths)} plot(s) written to {args.plots}", file=sys.stderr)
    return 0


def refuse_out_folder(out: str | None, what: str) -> None:
    if out and Path(out).is_dir():
        raise UserError(f"--out {out} is a folder; name the file to write {what} to")


def refuse_plots_file(plots: str | None) -> None:
    if plots and Path(plots).exists() and not Path(plots).is_dir():
        raise UserError(f"--plots {plots} is a file; name a folder to save the plots in")


def emit(text: str, out: str | None, what: str) -> None:
    """``text`` into the file ``out`` (atomically, its folder made), saying so on stderr; else to stdout."""
    if not out:
        print(text, end="")
        return
    path = Path(out)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    print(f"{what} written to {path}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return dispatch(args)
    except BrokenPipeError:  # the reader went away (`nasbench list | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def dispatch(args: argparse.Namespace) -> int:
    try:
        if args.command in ("run", "eval", "derive"):  # a sweep's --threads are per cell, set in its workers
            apply_threads(args.threads)
        if args.command == "list":
            return cmd_list()
        if args.command == "eval":
            return cmd_eval(args)
        if args.command == "table":
            return cmd_table(args)
        if args.command == "compare":
            return cmd_compare(args)
        if args.command == "sweep":
            return cmd_sweep(args)
        if args.command == "derive":
            return cmd_derive(args)
        return cmd_run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
