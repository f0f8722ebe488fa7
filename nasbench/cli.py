"""Command line: ``python -m nasbench run|table|list``; flags become a RunConfig and the runner does the rest."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nasbench.cli_flags import add_training_flags
from nasbench.config import config_from_dict, parse_set_flags, resolve_config
from nasbench.errors import UserError
from nasbench.eval.command import add_eval_parser, cmd_eval
from nasbench.registry import SEARCHERS, SPACES
from nasbench.results import RunRecord
from nasbench.runner import RECORD, find_resumable, new_run_dir, resolve_device, run


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nasbench", description="Benchmark suite for neural architecture search.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="search an architecture and write a run record")
    p.add_argument("--searcher", required=True, help="searcher name (see `nasbench list`)")
    p.add_argument("--space", required=True, help="search space name (see `nasbench list`)")
    add_training_flags(p, "search")

    sub.add_parser("list", help="list the registered searchers and search spaces")
    add_eval_parser(sub)

    t = sub.add_parser("table", help="paper-style comparison tables (and plots) from run records")
    t.add_argument("runs", nargs="+", metavar="RUNS", help="record.json files or folders searched for them")
    t.add_argument("--format", default="md", choices=["md", "tex", "csv"], help="output format (default: md)")
    t.add_argument("--out", help="write the table to this file (default: print it)")
    t.add_argument("--plots", metavar="DIR", help="also save PNG plots (alphas, eigenvalue, accuracy, cells) here")
    return parser


def cmd_list() -> int:
    print("searchers:")
    for name in SEARCHERS.names():
        print(f"  {name:10s} {SEARCHERS.get(name).summary}")
    print("spaces:")
    for name in SPACES.names():
        print(f"  {name:10s} {SPACES.get(name).summary}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    searcher_cls = SEARCHERS.get(args.searcher)
    space = SPACES.get(args.space)()
    device = resolve_device(args.device)
    preset = args.preset or ("paper" if device.type == "cuda" else "small")
    if args.resume is not None:
        run_dir = (
            Path(args.resume)
            if args.resume
            else find_resumable(Path(args.out), args.searcher, args.space, preset, args.seed)
        )
        stored = RunRecord.load(run_dir / RECORD).config
        cfg = config_from_dict(stored, searcher_cls, space)
        print(f"resuming {run_dir} with its stored configuration")
    else:
        train_flags = {"epochs": args.epochs} if args.epochs is not None else {}
        cfg = resolve_config(
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
        run_dir = new_run_dir(Path(args.out), cfg)
    print(f"nasbench run: {cfg.searcher} on {cfg.space}, preset {cfg.preset}, seed {cfg.seed}, device {device}")
    try:
        record = run(cfg, run_dir, resume=args.resume is not None, download=args.download, progress=not args.quiet)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted; the record says so and the last epoch's checkpoint is kept in {run_dir}.\n"
            f"continue with: python -m nasbench run --searcher {cfg.searcher} --space {cfg.space} "
            f"--resume {run_dir}",
            file=sys.stderr,
        )
        return 130
    record_path = run_dir / RECORD
    if record.status != "completed":
        print(f"run {record.status}: {record.error}\nrecord: {record_path}", file=sys.stderr)
        return 1
    metric = {k: v for k, v in record.metrics.items() if k in ("val_acc", "val_ppl")}
    print(f"\nderived genotype:\n  {record.genotype}")
    print(
        f"search cost: {record.metrics['search_device_hours']:.4f} device-hours on {record.provenance['device_name']}, "
        f"peak memory {record.metrics['peak_mem_mib']:.0f} MiB; " + ", ".join(f"{k} {v:.2f}" for k, v in metric.items())
    )
    truth = {k: v for k, v in record.metrics.items() if k.startswith("true_")}
    if truth:
        print("ground truth of the derived cell: " + ", ".join(f"{k} {v:.2f}" for k, v in truth.items()))
    print(f"record: {record_path}")
    if cfg.preset != "paper":
        fetch = " --download" if space.dataset == "cifar10" else ""
        print(
            "the paper's full protocol (GPU, full data set): python -m nasbench run "
            f"--searcher {cfg.searcher} --space {cfg.space} --preset paper --device cuda --data PATH{fetch}"
        )
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from nasbench.report import build_report
    from nasbench.tables import render

    report = build_report(args.runs)
    text = render(report, args.format)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"table of {len(report.records)} completed run(s) written to {args.out}")
    else:
        print(text, end="")
    if args.format == "csv" and report.footnotes():
        print("\n".join(report.footnotes()), file=sys.stderr)  # CSV has no room for footnotes
    if args.plots:
        from nasbench.plots import save_plots  # matplotlib only when plots are asked for

        written = save_plots(report, Path(args.plots))
        print(f"{len(written)} plot(s) written to {args.plots}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return cmd_list()
        if args.command == "eval":
            return cmd_eval(args)
        if args.command == "table":
            return cmd_table(args)
        return cmd_run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
