"""The flags that ``run`` and ``eval`` share: budget, data, device, output, overrides, resume."""

from __future__ import annotations

import argparse
import os
import sys

import torch

from nasbench.errors import UserError
from nasbench.threads import register


def add_training_flags(p: argparse.ArgumentParser, what: str) -> None:
    """Add the shared flags; ``what`` names the job in the help texts ("search", "evaluation")."""
    p.add_argument("--preset", help="paper | small | tiny (default: paper on a GPU, small on a CPU)")
    p.add_argument("--epochs", type=int, help=f"number of {what} epochs (overrides the preset)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", help="data folder (default: the built-in slice shipped with nasbench)")
    p.add_argument("--download", action="store_true", help="download the full data set into --data first")
    p.add_argument("--device", default="auto", help="cpu | cuda | cuda:N | auto (default)")
    p.add_argument("--out", default="runs", help=f"folder for {what} records and checkpoints (default: runs)")
    p.add_argument(
        "--set",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="override any config value, e.g. --set batch_size=32 (an unknown key lists the allowed ones)",
    )
    p.add_argument(
        "--resume",
        nargs="?",
        const="",
        metavar="RUN_DIR",
        help=f"continue an interrupted {what}: the newest unfinished one matching the flags, or RUN_DIR",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar (there is none when output is not a terminal)")
    add_threads_flag(p)


def add_threads_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch (default: an equal share of the cores with the other nasbench runs on this "
        "machine, re-checked at every step)",
    )


def apply_threads(threads: int | None) -> None:
    """``--threads``: torch's intra-op threads, and the OpenMP/MKL variables any child process inherits.
    Without it (and without OMP_NUM_THREADS) the process takes a share of the cores with the other nasbench
    processes on the machine (``nasbench.threads``)."""
    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS")
        register(torch.get_num_threads() if env else None)
        return
    if threads < 1:
        raise UserError(f"--threads {threads}: use 1 or more")
    torch.set_num_threads(threads)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    register(threads)


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars only on a terminal, and not with --quiet."""
    return not args.quiet and sys.stderr.isatty()
