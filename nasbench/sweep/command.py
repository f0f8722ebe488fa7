"""``python -m nasbench sweep``: flags -> the grid's cells -> a launcher -> one line per finished cell -> the table."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from nasbench.errors import UserError
from nasbench.sweep.cell import Outcome, cell_state, resolve_cell, should_run
from nasbench.sweep.grid import Cell, expand, parse_grid, parse_names, parse_seeds
from nasbench.sweep.manifest import MANIFEST, update_manifest

LAUNCHERS = ("local", "ray", "slurm")


def add_sweep_parser(sub: Any) -> None:
    p = sub.add_parser("sweep", help="run a grid of searchers x spaces x seeds (x settings), resumably")
    p.add_argument("--searchers", required=True, help="comma-separated searcher names, e.g. darts1,darts2,gdas")
    p.add_argument("--spaces", required=True, help="comma-separated space names, e.g. nb201,cnn")
    p.add_argument("--seeds", default="0", help="seeds: 0-4, 0,2,7 or 0-2,9 (default: 0)")
    p.add_argument("--preset", help="preset of every cell (default: paper on a GPU, small on a CPU)")
    p.add_argument("--epochs", type=int, help="search epochs of every cell (overrides the preset)")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="settings of every cell")
    p.add_argument(
        "--grid", nargs="+", action="extend", default=[], metavar="KEY=V1,V2", help="one cell per value (crossed)"
    )
    p.add_argument("--out", required=True, help="sweep folder: one run folder per cell, and sweep.json")
    p.add_argument("--workers", type=int, help="cells run at once (default: local: cores or GPUs; else cells)")
    p.add_argument("--threads", type=int, help="CPU threads per cell (default: cores / workers)")
    p.add_argument("--device", default="auto", help="cpu | cuda | auto (default)")
    p.add_argument("--retry-failed", action="store_true", help="run failed cells again (from their checkpoints)")
    p.add_argument("--launcher", default="local", choices=LAUNCHERS, help="local (default), ray or slurm")
    p.add_argument("--address", help="ray: the cluster's address (auto, or HOST:PORT); default: a local Ray")
    p.add_argument("--partition", help="slurm: partition")
    p.add_argument("--time", type=int, default=24 * 60, help="slurm: minutes per cell before requeueing (1440)")
    p.add_argument("--gpus-per-task", type=int, default=0, help="slurm: GPUs per cell (default 0)")
    p.add_argument("--mem-gb", type=int, help="slurm: memory per cell in GB")
    p.add_argument(
        "--slurm-param",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="slurm: further sbatch settings as submitit names them, e.g. account=myproj qos=normal",
    )
    p.add_argument("--cluster", help=argparse.SUPPRESS)  # tests: submitit's "local" executor instead of SLURM
    p.add_argument("--quiet", action="store_true", help="no progress bar (there is none off a terminal)")


def cells_from_args(args: argparse.Namespace, preset: str) -> list[Cell]:
    from nasbench.config import parse_set_flags

    return expand(
        parse_names(args.searchers, "searchers"),
        parse_names(args.spaces, "spaces"),
        parse_seeds(args.seeds),
        preset,
        args.epochs,
        parse_set_flags(args.set),
        parse_grid(args.grid),
    )


def validate(cells: list[Cell], device: str) -> None:
    """Every cell's configuration resolves before anything runs; all problems at once, each with its cell."""
    problems = []
    for cell in cells:
        try:
            resolve_cell(cell, device)
        except UserError as exc:
            problems.append(f"{cell.label}: {exc}")
    if problems:
        raise UserError("the sweep has cells that cannot run:\n  " + "\n  ".join(dict.fromkeys(problems)))


def visible_gpus(device: str) -> list[str]:
    """The GPU ids a local sweep spreads its workers over (none for a CPU sweep)."""
    from nasbench.runner import resolve_device

    if resolve_device(device).type != "cuda":
        return []
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed:
        return [g.strip() for g in listed.split(",") if g.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def workers_and_threads(args: argparse.Namespace, todo: int, gpus: list[str]) -> tuple[int, int]:
    """Defaults that never oversubscribe: workers x threads <= cores (a local GPU sweep: one worker per GPU)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    for name in ("workers", "threads"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name} {value}: use 1 or more")
    if args.launcher != "local":
        return args.workers or max(todo, 1), args.threads or 1
    workers = args.workers or (len(gpus) if gpus else max(1, min(todo, cores // (args.threads or 1))))
    threads = args.threads or max(1, cores // workers)
    if workers * threads > cores:
        print(
            f"warning: {workers} workers x {threads} threads > {cores} cores; side-by-side runs will slow each "
            "other down",
            file=sys.stderr,
        )
    return workers, threads


def describe(outcome: Outcome) -> str:
    """One line for a finished cell: its state, score and cost."""
    m = outcome.metrics
    parts = [f"{outcome.state} {outcome.cell.label}"]
    for key, fmt in (("true_test_acc", ".2f"), ("val_acc", ".2f"), ("val_ppl", ".1f")):
        if isinstance(m.get(key), (int, float)):
            parts.append(f"{key} {m[key]:{fmt}}")
    if isinstance(m.get("search_device_hours"), (int, float)):
        parts.append(f"{m['search_device_hours']:.3f} device-h")
    if outcome.message and outcome.state != "completed":
        parts.append(outcome.message)
    return " | ".join(parts)


def make_launcher(args: argparse.Namespace, root: Path, workers: int, threads: int, gpus: list[str]) -> Any:
    if args.launcher == "ray":
        from nasbench.sweep.ray_launcher import RayLauncher

        return RayLauncher(root, args.address, threads, args.device, args.retry_failed)
    if args.launcher == "slurm":
        from nasbench.config import parse_set_flags
        from nasbench.sweep.slurm import SlurmLauncher

        extra = parse_set_flags(args.slurm_param)
        return SlurmLauncher(
            root,
            workers,
            threads,
            args.device,
            args.retry_failed,
            args.partition,
            args.time,
            args.gpus_per_task,
            args.mem_gb,
            extra,
            args.cluster,
        )
    from nasbench.sweep.local import LocalLauncher

    return LocalLauncher(root, workers, threads, gpus, args.device, args.retry_failed)


def cmd_sweep(args: argparse.Namespace) -> int:
    from nasbench.cli_flags import show_progress
    from nasbench.runner import default_preset, resolve_device

    device = resolve_device(args.device)
    preset = default_preset(args.preset, device)
    cells = cells_from_args(args, preset)
    validate(cells, args.device)
    root = Path(args.out)
    states = {cell: cell_state(root, cell) for cell in cells}
    todo = [cell for cell in cells if should_run(states[cell], args.retry_failed)]
    invocation = {k: v for k, v in vars(args).items() if k not in ("command", "quiet", "func")}
    update_manifest(root, states, invocation)
    gpus = visible_gpus(args.device) if args.launcher == "local" else []
    workers, threads = workers_and_threads(args, len(todo), gpus)
    skipped = Counter(states[c] for c in cells if c not in todo)
    note = ", ".join(f"{n} {state}" for state, n in sorted(skipped.items()))
    print(
        f"nasbench sweep: {len(cells)} cells into {root} ({len(todo)} to run"
        + (f"; skipped: {note}" if note else "")
        + f"); launcher {args.launcher}, {workers} worker(s) x {threads} thread(s)"
    )
    from tqdm import tqdm

    bar = tqdm(total=len(todo), desc="cells", disable=not show_progress(args))
    started, finished = time.perf_counter(), [0]
    errors: list[Outcome] = []  # cells that could not run at all (their folders say why not, or nothing)

    def on_done(outcome: Outcome) -> None:
        finished[0] += 1
        if outcome.state == "error":
            errors.append(outcome)
        states[outcome.cell] = cell_state(root, outcome.cell) if outcome.state != "error" else "failed"
        (tqdm.write if not bar.disable else print)(f"[{finished[0]}/{len(todo)}] {describe(outcome)}")
        bar.update(1)
        update_manifest(root, {outcome.cell: states[outcome.cell]})

    interrupted = False
    if todo:
        try:
            make_launcher(args, root, workers, threads, gpus).run(todo, on_done)
        except KeyboardInterrupt:
            interrupted = True
    bar.close()
    states = {cell: cell_state(root, cell) for cell in cells}
    update_manifest(root, states)
    print_table(root, cells)
    counts = Counter(states.values())
    left = sum(n for state, n in counts.items() if state not in ("completed", "failed"))
    print(
        f"cells: {counts.get('completed', 0)} completed, {counts.get('failed', 0)} failed, {left} left "
        f"({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))})"
        + (f", {len(errors)} could not run (see their lines above)" if errors else "")
        + f"; {time.perf_counter() - started:.0f} s; manifest: {root / MANIFEST}"
    )
    if interrupted:
        print("interrupted: run the same command again to resume the unfinished cells", file=sys.stderr)
        return 130
    return 0 if not counts.get("failed") and not errors else 1


def print_table(root: Path, cells: list[Cell]) -> None:
    """The comparison table of the grid's completed cells (the ``table`` command's code)."""
    from nasbench.report import build_report
    from nasbench.tables import render

    folders = [root / cell.folder for cell in cells if (root / cell.folder / "record.json").exists()]
    if not folders:
        return
    try:
        report = build_report(folders)
    except UserError as exc:  # e.g. no cell completed yet
        print(f"(no table: {exc})")
        return
    print("\n" + render(report, "md"), end="")
